"""The faust scoring agent's wiring, run with ``agent.test_context()`` (no broker)."""

from __future__ import annotations

import asyncio
import json
from unittest.mock import AsyncMock

import pytest

from riskpulse.streams.worker.app import build_worker_app
from riskpulse.streams.store.messages import DEAD_LETTERS_TABLE, MESSAGES_TABLE
from riskpulse.core.settings import Settings
from tests.fakes import FakeEngine, FakeStore, good


def _app(store: FakeStore, failing_sends: int = 0, before_publish=None):
    settings = Settings(batch_max_size=3, batch_max_wait_s=0.05, web_port=6099)
    app, scorer = build_worker_app(settings, FakeEngine(), store)
    app.finalize()
    app.conf.store = "memory://"
    app.flow_control.resume()
    sent: list[tuple[str, dict]] = []
    failures = [failing_sends]

    async def publish(topic_name, records, delivered=None):
        if before_publish is not None:
            await before_publish(topic_name, records)
        if failures[0]:
            failures[0] -= 1
            raise ConnectionError("broker unreachable")
        sent.extend((topic_name, json.loads(value)) for _, value in records)

    scorer.publisher.publish = AsyncMock(side_effect=publish)
    return app, scorer.agent, sent, settings


async def _wait_for(condition, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.timeout(60)
def test_agent_stores_then_emits_scored_and_dead_letters():
    store = FakeStore()
    app, agent, sent, settings = _app(store)

    async def run():
        async with agent.test_context() as ctx:
            for i, raw in enumerate([good(0), b"{oops", good(1), good(2)]):
                await ctx.put(raw, key=b"news/wire")
            await _wait_for(lambda: len(sent) == 4)

    asyncio.run(run())
    assert sorted(r["id"] for r in store.tables[MESSAGES_TABLE]) == ["m-0", "m-1", "m-2"]
    (dead,) = store.tables[DEAD_LETTERS_TABLE]
    assert "not valid JSON" in dead["reason"]
    scored = [v for t, v in sent if t == settings.topic_scored]
    assert sorted(v["id"] for v in scored) == ["m-0", "m-1", "m-2"]
    assert all(v["model_version"] == "fake-1" for v in scored)
    assert [v["reason"] for t, v in sent if t == settings.topic_dead_letter] == [dead["reason"]]


@pytest.mark.timeout(60)
def test_agent_retries_a_failed_write_and_emits_only_after_it_is_stored(monkeypatch):
    monkeypatch.setattr("riskpulse.core.retry.FIRST_S", 0.01)  # back off in hundredths, not halves, of a second
    store = FakeStore(fail_times=2)
    app, agent, sent, settings = _app(store)
    sent_before_write: list[int] = []  # what had been emitted when each write (two failing, one storing) began
    write_batch = store.write_batch

    def recording_write(table, rows):
        sent_before_write.append(len(sent))
        return write_batch(table, rows)

    store.write_batch = recording_write

    async def run():
        async with agent.test_context() as ctx:
            await ctx.put(good(7), key=b"news/wire")
            await _wait_for(lambda: len(sent) == 1, timeout=10)

    asyncio.run(run())
    assert sent_before_write == [0, 0, 0], "nothing may be emitted before the batch is stored"
    assert store.writes == 3
    assert [r["id"] for r in store.tables[MESSAGES_TABLE]] == ["m-7"]


@pytest.mark.timeout(60)
def test_agent_retries_emitting_and_acks_only_after_the_scored_records_are_sent():
    store = FakeStore()
    app, agent, sent, settings = _app(store, failing_sends=1)
    acked: list[int] = []

    async def run():
        async with agent.test_context() as ctx:
            event = await ctx.put(good(3), key=b"news/wire")
            await _wait_for(lambda: len(sent) == 1, timeout=10)
            await _wait_for(lambda: event.message.acked)
            acked.append(event.message.offset)

    asyncio.run(run())
    assert [v["id"] for _, v in sent] == ["m-3"] and len(acked) == 1
    assert [r["id"] for r in store.tables[MESSAGES_TABLE]] == ["m-3"]



@pytest.mark.timeout(60)
def test_the_next_batch_is_stored_while_the_previous_one_emits_and_emits_stay_in_order():
    store = FakeStore()
    writes_seen_by_first_emit: list[int] = []

    async def hold_the_first_emit(topic_name, records):
        if not writes_seen_by_first_emit:  # batch 1's emit waits until batch 2 has been stored
            await _wait_for(lambda: store.writes >= 2, timeout=10)
            writes_seen_by_first_emit.append(store.writes)

    app, agent, sent, settings = _app(store, before_publish=hold_the_first_emit)

    async def run():
        async with agent.test_context() as ctx:
            for i in range(6):  # two full batches of 3
                await ctx.put(good(i), key=b"news/wire")
            await _wait_for(lambda: len(sent) == 6, timeout=10)

    asyncio.run(run())
    assert settings.batch_pipeline_depth == 2 and writes_seen_by_first_emit == [2]
    assert [v["id"] for _, v in sent] == [f"m-{i}" for i in range(6)], "emits keep the batches' order"


class _FakeKafkaBatch:
    def __init__(self, capacity: int) -> None:
        self.rows, self.capacity = [], capacity

    def append(self, key, value, timestamp):
        if len(self.rows) >= self.capacity:
            return None
        self.rows.append(value)
        return object()


class _FlakyProducer:
    """aiokafka's producer as Publisher uses it: 2 partitions by key, 2-record batches, sends that can fail."""

    def __init__(self, fail: set[tuple[int, bytes]]) -> None:
        self.fail, self.received = fail, []

    async def partitions_for(self, topic):
        return {0, 1}

    def _partitioner(self, key, all_partitions, available):
        return int(key)

    def create_batch(self):
        return _FakeKafkaBatch(2)

    async def send_batch(self, batch, topic, partition):
        future = asyncio.get_running_loop().create_future()
        if (partition, batch.rows[0]) in self.fail:
            self.fail.discard((partition, batch.rows[0]))
            future.set_exception(ConnectionError("request timed out"))
        else:
            self.received += [(partition, v) for v in batch.rows]
            future.set_result(None)
        return future


def test_a_retried_publish_sends_only_what_the_broker_did_not_acknowledge():
    from riskpulse.streams.worker.agents import Publisher

    producer = _FlakyProducer(fail={(1, b"b3")})
    app = type("App", (), {})()

    async def maybe_start_producer():
        return type("Wrapper", (), {"_ensure_producer": lambda self: producer})()

    app.maybe_start_producer = maybe_start_producer
    records = [(b"0", b"a1"), (b"1", b"b1"), (b"0", b"a2"), (b"1", b"b2"), (b"1", b"b3")]

    async def run():
        delivered: set = set()
        with pytest.raises(ConnectionError):
            await Publisher(app).publish("scored", records, delivered)
        assert delivered == {(0, 0), (1, 0)}   # partition 1's second batch (b3) failed
        await Publisher(app).publish("scored", records, delivered)

    asyncio.run(run())
    assert sorted(producer.received) == [(0, b"a1"), (0, b"a2"), (1, b"b1"), (1, b"b2"), (1, b"b3")]  # each once
