"""`score_file` into chDB's messages table with a stand-in classifier: scoring twice stores each message once."""

from __future__ import annotations

from riskpulse.streams.worker.score import score_file
from tests.unit.test_score import keyword_engine, sample


def test_scoring_twice_into_the_table_counts_each_message_once(tmp_path, chdb_settings, chdb_store):
    chdb_store.close()  # score_file opens its own session on the same directory
    path = sample(tmp_path)
    for _ in range(2):
        report = score_file(path, chdb_settings, keyword_engine(), batch_size=7)
        assert report.scored == 25
    chdb_store.open()
    counts = chdb_store.query("SELECT sentiment, count() AS n FROM messages FINAL GROUP BY sentiment ORDER BY sentiment")
    assert counts == [{"sentiment": "negative", "n": 12}, {"sentiment": "positive", "n": 13}]
