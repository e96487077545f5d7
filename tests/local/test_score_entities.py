"""`riskpulse score` into chDB stores entity mentions beside the messages, once however often it runs."""

from __future__ import annotations

from riskpulse.streams.worker.score import score_file
from tests.unit.test_score import keyword_engine, write_jsonl

TEXTS = ["JPMorgan shares slide", "$AAPL rally", "Wells Fargo and Goldman Sachs slide", "nothing named"]


def test_scoring_into_the_table_stores_mentions_once(tmp_path, chdb_settings, chdb_store):
    chdb_store.close()  # score_file opens its own session on the same directory
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": f"s-{i}", "ts": "2026-03-01T09:00:00Z", "text": t}
                                              for i, t in enumerate(TEXTS)])
    for _ in range(2):
        assert score_file(path, chdb_settings, keyword_engine(), batch_size=3).scored == len(TEXTS)
    chdb_store.open()
    rows = chdb_store.query(
        "SELECT message_id, entity_id, sentiment FROM entity_mentions FINAL ORDER BY message_id, span_start")
    assert [(r["message_id"], r["entity_id"], r["sentiment"]) for r in rows] == [
        ("s-0", "JPM", "negative"), ("s-1", "AAPL", "positive"), ("s-2", "WFC", "negative"), ("s-2", "GS", "negative"),
    ]
