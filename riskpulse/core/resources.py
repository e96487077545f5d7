"""Where the files that ship inside the package are: deploy configs and the bundled sample.

They are package data (``riskpulse.deploy``, ``riskpulse.sample``), so the same lookups work in a
checkout, an editable install and a plain ``pip install``; nothing builds a path from ``__file__``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def deploy_file(*parts: str) -> Path:
    """A file under the packaged ``deploy/`` folder (Kafka and ClickHouse configs, alert rules)."""
    return Path(str(files("riskpulse.deploy").joinpath(*parts)))


def sample_messages() -> Path:
    """The bundled 3,000-message sample the demo replays."""
    return Path(str(files("riskpulse.sample").joinpath("messages.jsonl")))
