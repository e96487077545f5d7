"""The pipeline on real parts: Kafka broker, `riskpulse worker` subprocesses, ClickHouse
server and chDB. 5,000 records, 50 of them malformed → exactly 4,950 scored rows and 50
dead letters, also across a kill -9 and with two workers sharing the partitions."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
import uuid

import pytest

from riskpulse.core.schema import DEAD_LETTER_HEAD_BYTES, MAX_RECORD_BYTES
from riskpulse.core.settings import Settings
from riskpulse.streams.topics import ensure_topics
from tests.integration.pipeline_support import (
    CLI,
    Worker,
    child_env,
    good_messages,
    malformed_records,
    produce_mixed,
    run_settings,
    wait_drained,
)
from tests.fixtures.stack import free_ports

pytestmark = pytest.mark.integration

N_GOOD = 4950


def _tag() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def _topic_count(settings: Settings, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def _assert_results(store_query, settings: Settings, goods, bads: dict[str, list[bytes]], exact_rows: bool) -> None:
    """Exactly the valid ids scored once, exactly the malformed records dead-lettered with reasons."""
    (counts,) = store_query("SELECT count() AS n, uniqExact(id) AS ids FROM messages FINAL")
    assert counts == {"n": N_GOOD, "ids": N_GOOD}
    stored_ids = {r["id"] for r in store_query("SELECT id FROM messages FINAL")}
    assert stored_ids == {m.id for m in goods}
    (scored,) = store_query(
        "SELECT countIf(sentiment IN ('negative', 'neutral', 'positive')) AS labelled, "
        "countIf(topic != '' AND topic_prob > 0 AND sentiment_prob > 0) AS scored, "
        "uniqExact(model_version) AS versions FROM messages FINAL"
    )
    assert scored == {"labelled": N_GOOD, "scored": N_GOOD, "versions": 1}
    if exact_rows:
        (raw,) = store_query("SELECT count() AS n FROM messages")
        assert raw["n"] == N_GOOD, "a clean run must not score any message twice"
    dead = store_query(
        "SELECT reason, `partition` AS p, `offset` AS o, raw_b64 FROM dead_letters FINAL WHERE `topic` = %(t)s",
        {"t": settings.topic_raw},
    )
    assert len(dead) == 50 and len({(d["p"], d["o"]) for d in dead}) == 50
    assert all(d["reason"].strip() for d in dead)
    by_raw = {base64.b64decode(d["raw_b64"]): d["reason"] for d in dead}
    expected = {"bad json": "not valid JSON", "missing text": "Field required", "oversized": "size limit",
                "invalid utf-8": "not valid UTF-8", "wrong types": "schema:"}
    for kind, raws in bads.items():
        for raw in raws:
            if len(raw) > MAX_RECORD_BYTES:  # kept as its head, with the whole record's length and sha256
                head = raw[:DEAD_LETTER_HEAD_BYTES]
                assert head in by_raw, f"{kind} record's head missing from dead letters"
                assert hashlib.sha256(raw).hexdigest() in by_raw[head] and f"of {len(raw)} bytes" in by_raw[head]
                raw = head
            assert raw in by_raw, f"{kind} record missing from dead letters"
            assert expected[kind] in by_raw[raw], (kind, by_raw[raw])


def _all_bad(bads: dict[str, list[bytes]]) -> list[bytes]:
    return [raw for raws in bads.values() for raw in raws]


@pytest.fixture
def run(stack, server_store, quick_registry, tmp_path):
    """Settings of a fresh run (own topics and group) against the session's stack."""
    settings = run_settings(stack, _tag(), quick_registry)
    ensure_topics(settings)
    return settings


def test_server_pipeline_scores_every_valid_message_once(run, server_store, tmp_path):
    tag = run.topic_raw.split(".")[0]
    goods, bads = good_messages(tag, N_GOOD), malformed_records(tag)
    produce_mixed(run, goods, _all_bad(bads))
    worker = Worker.start(run, tmp_path / "worker.log")
    try:
        wait_drained(run, [worker])
    finally:
        assert worker.stop() == 0, worker.tail()
    _assert_results(server_store.query, run, goods, bads, exact_rows=True)
    assert _topic_count(run, run.topic_scored) == N_GOOD
    assert _topic_count(run, run.topic_dead_letter) == 50
    log = worker.text()
    assert "dead letter" in log and "model " in log and f"{run.topic_raw}[" in log


def test_kill_9_mid_stream_then_restart_loses_and_doubles_nothing(run, server_store, tmp_path):
    tag = run.topic_raw.split(".")[0]
    goods, bads = good_messages(tag, N_GOOD), malformed_records(tag)
    produce_mixed(run, goods, _all_bad(bads))
    first = Worker.start(run, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 300
        while server_store.query("SELECT count() AS n FROM messages")[0]["n"] < 1000:
            first.assert_alive()
            assert time.monotonic() < deadline, first.tail()
            time.sleep(0.05)
        first.kill9()
    finally:
        first.stop()
    stored_at_kill = server_store.query("SELECT uniqExact(id) AS n FROM messages")[0]["n"]
    assert 1000 <= stored_at_kill < N_GOOD, "the kill must land mid-stream"
    second = Worker.start(run, tmp_path / "second.log")
    try:
        wait_drained(run, [second])
    finally:
        assert second.stop() == 0, second.tail()
    _assert_results(server_store.query, run, goods, bads, exact_rows=False)


def test_two_workers_in_one_group_split_partitions_and_score_everything_once(run, server_store, tmp_path):
    tag = run.topic_raw.split(".")[0]
    goods, bads = good_messages(tag, N_GOOD), malformed_records(tag)
    workers = [Worker.start(run, tmp_path / f"w{i}.log", web_port=port) for i, port in enumerate(free_ports(2))]
    try:
        for w in workers:
            w.wait_ready()
        time.sleep(3)  # let the second join's rebalance settle before data arrives
        jsonl = tmp_path / "goods.jsonl"
        jsonl.write_text("".join(m.model_dump_json() + "\n" for m in goods), encoding="utf-8")
        produced = subprocess.run([*CLI, "produce", str(jsonl)], env=child_env(run), capture_output=True, text=True, timeout=300)
        assert produced.returncode == 0, produced.stderr[-3000:]
        assert f"sent {N_GOOD} messages" in produced.stdout
        produce_mixed(run, [], _all_bad(bads))
        wait_drained(run, workers)
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0], [w.tail() for w in workers]
    first, second = (w.stored_partitions() for w in workers)
    assert first and second, f"both workers must get partitions: {first} / {second}"
    assert first.isdisjoint(second), f"a partition was processed by both workers: {first} / {second}"
    assert first | second == set(range(run.raw_partitions))
    _assert_results(server_store.query, run, goods, bads, exact_rows=False)


def test_chdb_pipeline_scores_every_valid_message_once(stack, quick_registry, tmp_path):
    tag = _tag()
    settings = run_settings(stack, tag, quick_registry, store="chdb", chdb_path=tmp_path / "chdb")
    ensure_topics(settings)
    goods, bads = good_messages(tag, N_GOOD), malformed_records(tag)
    produce_mixed(settings, goods, _all_bad(bads))
    worker = Worker.start(settings, tmp_path / "worker.log")
    try:
        wait_drained(settings, [worker])
    finally:
        assert worker.stop() == 0, worker.tail()

    def query(sql, params=None):
        """chDB is one process per directory: read it from a fresh process after the worker left."""
        script = (
            "import json, sys; from riskpulse.core.settings import Settings; from riskpulse.streams.store.backends import open_store; "
            "s = open_store(Settings()); q = json.loads(sys.argv[1]); "
            "print(json.dumps(s.query(q['sql'], q['params']), default=str)); s.close()"
        )
        out = subprocess.run(
            [sys.executable, "-c", script, json.dumps({"sql": sql, "params": params})],
            env=child_env(settings), capture_output=True, text=True, timeout=120,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    _assert_results(query, settings, goods, bads, exact_rows=True)
