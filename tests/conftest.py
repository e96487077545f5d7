"""Shared test set-up. Fixtures live beside the part they start, in tests/fixtures/."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = [
    "tests.fixtures.models",
    "tests.fixtures.stack",
    "tests.fixtures.http_receiver",
    "tests.fixtures.dashboard",
]
