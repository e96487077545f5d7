"""`riskpulse score` with the real quick-trained model, into chDB and into a CSV."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from itertools import islice
from pathlib import Path

import pytest

from riskpulse.streams.worker.score import score_file
from riskpulse.core.settings import Settings
from tests.fixtures.stack import settings_env

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "messages.jsonl"
SENTIMENTS = {"negative", "neutral", "positive"}


def sample_file(tmp_path: Path, lines: int) -> Path:
    """The bundled sample's first lines plus one row that cannot become a message."""
    path = tmp_path / "sample.jsonl"
    with SAMPLE.open() as source:
        head = list(islice(source, lines))
    path.write_text("".join(head) + '{"source": "news", "ts": "2026-01-01T00:00:00Z", "text": " "}\n')
    return path


def test_scoring_into_chdb_twice_stores_each_message_once(tmp_path, engine, chdb_settings, chdb_store):
    chdb_store.close()
    path = sample_file(tmp_path, 200)
    first = score_file(path, chdb_settings, engine, batch_size=64)
    second = score_file(path, chdb_settings, engine, batch_size=64)
    assert (first.scored, first.skipped, second.scored) == (200, 1, 200)
    chdb_store.open()
    rows = chdb_store.query(
        "SELECT count() AS n, uniqExact(id) AS ids, groupUniqArray(sentiment) AS sentiments, "
        "groupUniqArray(model_version) AS versions, min(topic_prob) AS low, max(topic_prob) AS high FROM messages FINAL"
    )
    assert rows[0]["n"] == rows[0]["ids"] == 200
    assert set(rows[0]["sentiments"]) <= SENTIMENTS
    assert rows[0]["versions"] == [engine.version]
    assert 0 < rows[0]["low"] <= rows[0]["high"] <= 1


def test_cli_scores_a_file_into_csv(tmp_path, quick_registry):
    settings = Settings(home=tmp_path / "home", registry_dir=quick_registry, device="cpu")
    out = tmp_path / "scored.csv"
    result = subprocess.run(
        [sys.executable, "-c", "from riskpulse.cli import main; main()", "score", str(sample_file(tmp_path, 100)),
         "--out", str(out)],
        env={**os.environ, **settings_env(settings)}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "scored 100 messages (1 rows skipped)" in result.stdout
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 100 and len({row["id"] for row in rows}) == 100
    assert {row["sentiment"] for row in rows} <= SENTIMENTS
    assert all(0 <= float(row["sentiment_prob"]) <= 1 and row["topic"] for row in rows)


def test_cli_refuses_an_unknown_output(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from riskpulse.cli import main; main()", "score", str(SAMPLE), "--out", "x.parquet"],
        env={**os.environ, **settings_env(Settings(home=tmp_path))}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "--out must be 'table' or a .csv path" in result.stderr
