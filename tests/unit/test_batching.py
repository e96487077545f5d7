"""Batch logic of the worker with a fake engine and store: what becomes a row, what a dead letter."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

from riskpulse.streams.store.messages import DEAD_LETTERS_TABLE, MESSAGES_TABLE
from riskpulse.streams.worker.batching import process_batch
from tests.fakes import FakeEngine, FakeStore, good, record

MALFORMED = {
    b"{not json": "not valid JSON",
    json.dumps({"source": "news", "ts": "2026-01-02T00:00:00Z"}).encode(): "text",
    b"\xff\xfe\x00bad": "not valid UTF-8",
    json.dumps({"source": "news", "ts": "2026-01-02T00:00:00Z", "text": 42}).encode(): "text",
    json.dumps({"source": "news", "ts": "2026-01-02T00:00:00Z", "text": "x" * 40_000}).encode(): "larger than",
    json.dumps([1, 2]).encode(): "expected an object",
}


def test_valid_records_are_scored_and_stored_with_their_fields():
    store, engine = FakeStore(), FakeEngine()
    result = process_batch([record(good(i), i) for i in range(5)], engine, store)
    assert [m.id for m in result.scored] == [f"m-{i}" for i in range(5)]
    rows = store.tables[MESSAGES_TABLE]
    assert len(rows) == 5 and DEAD_LETTERS_TABLE not in store.tables
    assert rows[0]["model_version"] == "fake-1" and rows[0]["sentiment"] == "positive"
    assert json.loads(rows[0]["meta"]) == {} and rows[0]["ts"].utcoffset().total_seconds() == 0
    assert engine.calls == [[f"Shares rise on earnings {i}" for i in range(5)]]


def test_malformed_records_become_dead_letters_with_reason_and_original_bytes():
    store = FakeStore()
    raws = list(MALFORMED)
    batch = [record(good(0), 0)] + [record(raw, i + 1, partition=3) for i, raw in enumerate(raws)] + [record(None, 99)]
    result = process_batch(batch, FakeEngine(), store)
    assert [m.id for m in result.scored] == ["m-0"]
    dead = store.tables[DEAD_LETTERS_TABLE]
    assert len(dead) == len(raws) + 1 == len(result.dead)
    for row, raw in zip(dead, raws + [b""]):
        assert base64.b64decode(row["raw_b64"]) == raw
    for row, expected in zip(dead, MALFORMED.values()):
        assert expected in row["reason"], row["reason"]
        assert (row["topic"], row["partition"]) == ("riskpulse.raw", 3)
    assert [row["offset"] for row in dead] == list(range(1, len(raws) + 1)) + [99]


def test_a_text_the_model_rejects_is_dead_lettered_and_the_rest_of_the_batch_still_scores():
    store = FakeStore()
    batch = [record(good(0), 0), record(good(1, "POISON pill"), 1), record(good(2, "Prices fall"), 2)]
    result = process_batch(batch, FakeEngine(), store)
    assert [m.id for m in result.scored] == ["m-0", "m-2"]
    assert result.scored[1].sentiment == "negative"
    (dead,) = store.tables[DEAD_LETTERS_TABLE]
    assert dead["offset"] == 1 and dead["reason"].startswith("classifier:")


def test_a_verdict_outside_the_schema_is_dead_lettered_not_stored():
    """Scored records are built without re-validation, so a classifier's out-of-range verdict must still be caught."""

    class SloppyEngine(FakeEngine):
        def classify(self, texts):
            scores = super().classify(texts)
            return [replace(s, sentiment_prob=1.5) if "odd" in t else replace(s, sentiment="angry") if "mood" in t else s
                    for s, t in zip(scores, texts)]

    store = FakeStore()
    batch = [record(good(0), 0), record(good(1, "odd one"), 1), record(good(2, "bad mood"), 2), record(good(3), 3)]
    result = process_batch(batch, SloppyEngine(), store)
    assert [m.id for m in result.scored] == ["m-0", "m-3"]
    assert [d["offset"] for d in store.tables[DEAD_LETTERS_TABLE]] == [1, 2]
    assert all("outside the schema" in d["reason"] for d in store.tables[DEAD_LETTERS_TABLE])
    assert result.scored[0].story_id == "m-0" and result.scored[0].entities == [] and result.scored[0].pii == []


def test_store_failure_propagates_so_nothing_is_acked():
    store = FakeStore(fail_times=1)
    try:
        process_batch([record(good(0), 0)], FakeEngine(), store)
    except ConnectionError:
        pass
    else:
        raise AssertionError("a failed write must not look like success")
    assert not store.tables[MESSAGES_TABLE]



def test_null_classifier_scores_everything_the_same_and_stages_are_timed() -> None:
    """The benchmark's constant classifier goes through the real batch path; each stage reports its time."""
    from riskpulse.streams.worker.batching import NullClassifier

    store = FakeStore()
    result = process_batch([record(good(i), i) for i in range(5)] + [record(b"{not json", 5)], NullClassifier(), store)
    assert len(store.tables[MESSAGES_TABLE]) == 5 and len(store.tables[DEAD_LETTERS_TABLE]) == 1
    assert {(m.topic, m.sentiment, m.model_version) for m in result.scored} == {("General News | Opinion", "neutral", "null")}
    assert set(result.seconds) == {"parse", "mask", "classify", "entities", "stories", "insert"} and all(s >= 0 for s in result.seconds.values())
