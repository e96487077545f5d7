"""`score_file` wiring with a stand-in classifier: rows in, skipped rows counted (CSV out; chDB in tests/local)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from riskpulse.core.settings import Settings
from riskpulse.streams.worker.score import score_file
from tests.fakes import FakeEngine


def keyword_engine() -> FakeEngine:
    """Deterministic stand-in for riskpulse.models.serving.inference.Engine (the real one is in tests/integration)."""
    return FakeEngine("kw-1", topic="Banking", negative_word="slide")


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def sample(tmp_path: Path) -> Path:
    rows = [{"id": f"m-{i}", "ts": "2026-03-01T09:00:00Z", "text": f"shares slide {i}" if i % 2 else f"rally {i}"}
            for i in range(25)]
    rows.insert(5, {"id": "blank", "ts": "2026-03-01T09:00:00Z", "text": "   "})
    rows.insert(9, {"id": "naive", "ts": "2026-03-01T09:00:00", "text": "no time zone"})
    return write_jsonl(tmp_path / "in.jsonl", rows)


def test_scores_into_csv_and_counts_skipped_rows(tmp_path):
    out = tmp_path / "scored.csv"
    report = score_file(sample(tmp_path), settings=Settings(), engine=keyword_engine(), out=out, batch_size=4)
    assert (report.scored, report.skipped, report.model_version) == (25, 2, "kw-1")
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 25 and rows[0].keys() >= {"id", "topic", "sentiment", "model_version", "processed_at"}
    assert {row["sentiment"] for row in rows if "slide" in row["text"]} == {"negative"}
    assert rows[0]["ts"] == "2026-03-01T09:00:00+00:00"
    assert rows[0]["channel"] == "in"


def test_copies_in_a_file_are_scored_as_one_story(tmp_path):
    text = "Regional lender First Harbor Bank suspends withdrawals after a run on deposits, regulators step in"
    rows = [{"id": "first", "ts": "2026-03-01T09:00:00Z", "text": text},
            {"id": "other", "ts": "2026-03-01T09:01:00Z", "text": "Oil prices slid more than 3% after OPEC+ raised output"},
            {"id": "retweet", "ts": "2026-03-01T09:02:00Z", "text": f"RT @wsj: {text} https://t.co/x1"}]
    out = tmp_path / "scored.csv"
    score_file(write_jsonl(tmp_path / "in.jsonl", rows), settings=Settings(), engine=keyword_engine(), out=out)
    with out.open(newline="") as handle:
        assert {row["id"]: row["story_id"] for row in csv.DictReader(handle)} == {
            "first": "first", "other": "other", "retweet": "first"}
