"""Stories through a real store, run on chDB (tests/local) and on clickhouse-server 18.16 (tests/integration):
a worker restarted mid-stream rebuilds its index from the messages table and goes on with the same story ids,
and a messages table created before stories gains the column with every old row its own story."""

from __future__ import annotations

import json

from riskpulse.core.clock import from_epoch
from riskpulse.core.schema import ScoredMessage
from riskpulse.core.settings import Settings
from riskpulse.streams.enrich.stories import StoryIndex, params_from, restored_index
from riskpulse.streams.store import messages
from riskpulse.streams.store.backends import Store
from riskpulse.streams.store.migrate import migrate
from riskpulse.streams.worker.batching import RawRecord, process_batch
from tests.fakes import FakeEngine
from tests.reprints import Planted, replay

HEADLINES = [
    "Piper Sandler downgrades DocuSign to sell, citing elevated risks amid CEO transition  https://t.co/1EmtywmYpr",
    "Buy Las Vegas Sands as travel to Singapore builds, Wells Fargo says  https://t.co/fLS2w57iCz",
    "Analysts react to Tesla's latest earnings, break down what's next for electric car maker  https://t.co/kwhoE6W06u",
    "The ECB kept rates on hold and signalled patience as euro-zone inflation cooled for a third month",
    "Oil prices slid more than 3% after OPEC+ said it would raise output from next quarter",
    "Regional lender First Harbor Bank suspends withdrawals after a run on deposits, regulators step in",
    "I was charged twice for the same card payment at the supermarket and nobody at the bank answers my calls",
    "Credit Suisse shares hit a record low as investors question the bank's restructuring plan",
]


def stream() -> list[Planted]:
    return replay([(f"o{i}", "news", text) for i, text in enumerate(HEADLINES)], copy_share=0.4, seed=5, mean_delay_s=120)


def records(planted: list[Planted], first_offset: int = 0) -> list[RawRecord]:
    return [
        RawRecord(json.dumps({"id": m.id, "source": m.source, "channel": "wire", "ts": from_epoch(m.ts).isoformat(),
                              "text": m.text}).encode(), "riskpulse.raw", 0, first_offset + n)
        for n, m in enumerate(planted)
    ]


def stored_stories(store: Store) -> dict[str, str]:
    return {r["id"]: r["story_id"] for r in store.query("SELECT id, story_id FROM messages FINAL")}


def check_stories_survive_a_restart(store: Store, settings: Settings) -> None:
    planted = stream()
    half = len(planted) // 2
    expected = StoryIndex(params_from(settings)).assign((m.id, float(int(m.ts)), m.text) for m in planted)
    assert len(set(expected)) < len(planted)  # the stream does hold copies

    before = process_batch(records(planted[:half]), FakeEngine(), store, stories=restored_index(settings, store))
    restarted = restored_index(settings, store)  # a new worker process: only what the store kept
    assert len(restarted) == half
    after = process_batch(records(planted[half:], half), FakeEngine(), store, stories=restarted)
    assert [m.story_id for m in before.scored + after.scored] == expected
    assert stored_stories(store) == {m.id: story for m, story in zip(planted, expected)}

    redelivered = process_batch(records(planted[:half]), FakeEngine(), store, stories=restored_index(settings, store))
    assert [m.story_id for m in redelivered.scored] == expected[:half]



def check_workers_share_stories(store: Store, settings: Settings) -> None:
    """Worker B, started before worker A stored an article, picks up A's story at its next sync."""
    import time

    from riskpulse.streams.enrich.stories import SharedStoryIndex
    from tests.fakes import FakeClock

    clock = FakeClock(time.time())
    worker_b = SharedStoryIndex(restored_index(settings, store), store, sync_s=30, clock=clock)
    planted = stream()
    originals = [m for m in planted if m.kind == "original"]
    process_batch(records(originals), FakeEngine(), store, stories=restored_index(settings, store))  # worker A
    copies = [m for m in planted if m.kind != "original"]
    clock.advance(31)
    got = process_batch(records(copies, len(originals)), FakeEngine(), store, stories=worker_b)
    assert [m.story_id for m in got.scored] == [m.story for m in copies]



def check_a_future_dated_message_does_not_hide_the_rest(store: Store, settings: Settings) -> None:
    import time

    now = time.time()
    broken = messages.message_row(_scored("broken-clock", now)) | {"ts": from_epoch(now + 1e9)}  # stored before ts was checked
    store.write_batch("messages", [messages.message_row(_scored("recent", now - 60)), broken])
    index = restored_index(settings, store)
    assert index.assign([("copy", now, "RT @wsj: " + HEADLINES[0])]) == ["recent"]


OLD_MESSAGES = """
    CREATE TABLE IF NOT EXISTS messages (
        id String, source String, channel String, lang String, ts DateTime('UTC'), text String, meta String,
        topic String, topic_prob Float32, sentiment String, sentiment_prob Float32, model_version String,
        processed_at DateTime('UTC')
    ) ENGINE = ReplacingMergeTree(processed_at) PARTITION BY toYYYYMM(ts) ORDER BY id
"""
OLD_COLUMNS = ("id", "source", "channel", "lang", "ts", "text", "meta", "topic", "topic_prob", "sentiment",
               "sentiment_prob", "model_version", "processed_at")


def check_old_messages_gain_story_ids(store: Store, settings: Settings) -> None:
    store.execute("DROP TABLE IF EXISTS messages")
    store.execute(OLD_MESSAGES)
    old = {column: value for column, value in messages.message_row(_scored("before")).items() if column in OLD_COLUMNS}
    store.write_batch("messages", [old])
    migrate(store, [messages])
    assert stored_stories(store) == {"before": "before"}
    assert restored_index(settings, store).assign([("copy", 1_700_000_060.0, "RT @wsj: " + HEADLINES[0])]) == ["before"]


def _scored(message_id: str, ts: float = 1_700_000_000) -> ScoredMessage:
    return ScoredMessage(id=message_id, source="news", ts=from_epoch(ts), text=HEADLINES[0], topic="Banks",
                         topic_prob=0.9, sentiment="negative", sentiment_prob=0.9, model_version="v0")
