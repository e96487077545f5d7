"""The pipeline bench's rate after the first batch (a run of few batches is mostly the first one)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("bench_pipeline", Path(__file__).resolve().parents[2] / "bench" / "pipeline.py")
bench_pipeline = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench_pipeline)


def test_the_rate_after_the_first_batch_leaves_out_its_wait_and_work() -> None:
    # three batches of three records, stored at 5 s, 8 s and 11 s: 6 records in the 6 s after the first
    stored = [5.0, 5.01, 5.02, 8.0, 8.01, 8.02, 11.0, 11.01, 11.02]
    assert bench_pipeline.after_first_batch(stored) == pytest.approx(6 / 6.0)
    assert bench_pipeline.after_first_batch([5.0, 5.01, 5.02]) is None  # one batch: no rate after it
