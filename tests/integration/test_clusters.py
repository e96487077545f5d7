"""RiskPulse on clusters, on loopback: a 3-node KRaft Kafka (replication factor 3, min.insync.replicas 2)
and a 2-shard × 2-replica ClickHouse 18.16 behind ZooKeeper, started by `riskpulse stack` like the
single-node stack. A broker killed with -9 mid-stream, then a ClickHouse replica killed mid-stream:
every message is stored exactly once, the same worker process carries on, and the dashboard's queries
give the cluster the same answers as one server holding the same rows, and so do the alerts' reads."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from kafka.admin import KafkaAdminClient

from riskpulse.core.clock import from_epoch
from riskpulse.core.schema import Message, ScoredMessage
from riskpulse.core.settings import Settings, node_port
from riskpulse.dashboards import queries
from riskpulse.streams.alerts.detector import Alert, KeyState
from riskpulse.streams.ingest.producers import send_messages
from riskpulse.streams.ops.stack import Stack
from riskpulse.streams.store.alerts import AlertRepo, alert_row
from riskpulse.streams.store.backends import ServerStore
from riskpulse.streams.store.cluster import Cluster
from riskpulse.streams.store.messages import message_row
from riskpulse.streams.store.migrate import migrate, migrate_settings, missing_columns
from riskpulse.streams.topics import ensure_topics
from tests.fixtures.stack import ARTIFACTS, free_ports
from tests.integration.pipeline_support import Worker, real_texts, run_settings, wait_drained

pytestmark = pytest.mark.integration

N = 4000  # streamed messages per test
RATE = 200  # messages/s: the stream lasts ~20 s, so the failure lands in the middle of it (at 400, a worker on
# two loaded cores once stored its first quarter only after the 10-second stream had ended)
NODE_PORTS = 4  # the most nodes of one kind (ClickHouse: 2 shards × 2 replicas)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_base_ports(kinds: int) -> list[int]:
    """Base ports whose node ports (base + 10·k) are all free and all distinct."""
    chosen: list[int] = []
    taken: set[int] = set()
    while len(chosen) < kinds:
        (base,) = free_ports(1)
        ports = {node_port(base, node) for node in range(NODE_PORTS)}
        if ports & taken or not all(_bindable(port) for port in ports):
            continue
        chosen.append(base)
        taken |= ports
    return chosen


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Three Kafka nodes, ZooKeeper and four ClickHouse servers, small heaps (CI has 2 cores)."""
    home = tmp_path_factory.mktemp("clusters")
    kafka, controller, native, http, interserver, zookeeper = cluster_base_ports(6)
    settings = Settings(
        home=home, store="server", kafka_brokers=3, kafka_port=kafka, kafka_controller_port=controller,
        kafka_heap="256m", clickhouse_shards=2, clickhouse_replicas=2, clickhouse_port=native,
        clickhouse_http_port=http, clickhouse_interserver_port=interserver, zookeeper_port=zookeeper,
        chdb_path=home / "chdb",
    )
    stack = Stack(settings)
    try:
        stack.up(timeout=180)
        yield stack
    except BaseException:
        _save_logs(stack, "clusters-up")
        raise
    finally:
        stack.down()


def _save_logs(stack: Stack, label: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{label}-logs.txt").write_text(stack.logs())


def _run(stack: Stack, tmp_path: Path) -> Settings:
    """A fresh run on the clusters: own topics, group and database, all created (replicated)."""
    tag = f"c{uuid.uuid4().hex[:8]}"
    settings = run_settings(stack.settings, tag, tmp_path, clickhouse_database=tag)
    ensure_topics(settings)
    migrate_settings(settings)
    return settings


def _messages(tag: str, n: int) -> list[Message]:
    """n real texts over 12 source/channel keys, one a second over the last n seconds (varied times)."""
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=n)
    return [
        Message(id=f"{tag}-{i:05d}", source=("news", "customer", "social")[i % 3], channel=f"desk-{i % 4}",
                ts=start + timedelta(seconds=i), text=text)
        for i, text in enumerate(real_texts(n))
    ]


class Producer(threading.Thread):
    """`send_messages` at RATE in the background (the idempotent acks=all producer the CLI uses)."""

    def __init__(self, settings: Settings, messages: list[Message]):
        super().__init__(daemon=True)
        self.settings, self.messages = settings, messages
        self.sent: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.sent = send_messages(self.messages, self.settings, rate=RATE)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def finish(self, timeout: float = 180) -> int:
        self.join(timeout)
        assert not self.is_alive(), "producer still sending"
        assert self.error is None, f"producer failed: {self.error!r}"
        return self.sent


def _stored(store: ServerStore) -> int:
    return store.query("SELECT count() AS n FROM messages")[0]["n"]


def _wait_stored(store: ServerStore, worker: Worker, at_least: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while _stored(store) < at_least:
        worker.assert_alive()
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(0.1)


def _assert_exactly_once(store: ServerStore, messages: list[Message]) -> None:
    (counts,) = store.query("SELECT count() AS n, uniqExact(id) AS ids FROM messages FINAL")
    assert counts == {"n": len(messages), "ids": len(messages)}
    assert {row["id"] for row in store.query("SELECT id FROM messages FINAL")} == {m.id for m in messages}


def _busiest_broker(settings: Settings) -> int:
    """The node id leading most raw partitions (killing it moves the most leadership), once the raw topic and
    faust's assignor topic (the group's own) are seen with 3 replicas each."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        raw, assignor = admin.describe_topics([settings.topic_raw, f"{settings.consumer_group}-__assignor-__leader"])
    finally:
        admin.close()
    for topic in (raw, assignor):
        replicas = {len(p["replica_nodes"]) for p in topic["partitions"]}
        assert replicas == {3}, f"{topic['name']} replicas per partition: {replicas}"
    return Counter(p["leader_id"] for p in raw["partitions"]).most_common(1)[0][0]


def test_kill_9_of_a_broker_mid_stream_loses_and_doubles_nothing_without_a_worker_restart(clusters, tmp_path):
    settings = _run(clusters, tmp_path)
    messages = _messages(settings.clickhouse_database, N)
    store = ServerStore(settings)
    store.open()
    worker = Worker.start(settings, tmp_path / "worker.log", args=("--null-model",))
    victim = None
    try:
        worker.wait_ready()
        producer = Producer(settings, messages)
        producer.start()
        _wait_stored(store, worker, N // 4)
        victim = clusters.kafka[_busiest_broker(settings) - 1]
        assert producer.is_alive(), "the stream ended before the failure"
        os.kill(victim.pid(), signal.SIGKILL)
        killed = time.monotonic()
        left = N - _stored(store)
        assert left > 0, "the worker stored everything before the broker died"
        assert producer.finish() == N
        wait_drained(settings, [worker], timeout=240)
        print(f"broker {victim.name} killed with {left} messages left to store; all stored {time.monotonic() - killed:.1f} s later")
        worker.assert_alive()
        assert worker.text().count("[^Worker]: Ready") == 1, "the worker restarted"
        _assert_exactly_once(store, messages)
    finally:
        store.close()
        worker.stop()
        if victim is not None:
            victim.start(120)  # the next test gets the whole cluster


# --- ClickHouse ----------------------------------------------------------------------------------
TOPICS = ("Macro", "Earnings", "fraud_and_security", "Fed | Central Banks", "Markets")
SENTIMENTS = ("negative", "neutral", "positive")


def _scored_rows(tag: str, n: int) -> list[dict]:
    """n scored messages of varied topics, sentiments, sources and times, then a quarter of them re-scored
    a minute later with another sentiment (the version FINAL must pick on whichever shard holds the id)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    first = [
        ScoredMessage(
            id=f"{tag}-s{i:04d}", source=("news", "customer")[i % 2], channel=f"desk-{i % 5}", ts=now - timedelta(seconds=7 * i),
            text=f"scored message {i} about {TOPICS[i % 5]}", topic=TOPICS[i % 5], topic_prob=0.5 + (i % 50) / 100,
            sentiment=SENTIMENTS[i % 3], sentiment_prob=0.4 + (i % 60) / 100, model_version="v1", processed_at=now,
        )
        for i in range(n)
    ]
    rescored = [
        m.model_copy(update={"sentiment": SENTIMENTS[(i + 1) % 3], "model_version": "v2", "processed_at": now + timedelta(minutes=1)})
        for i, m in enumerate(first) if i % 4 == 0
    ]
    return [message_row(m) for m in first + rescored]


def _alert_rows(tag: str) -> list[tuple[str, list[dict]]]:
    """Alerts (a third re-written resolved, a later version), acks, detector states and webhook deliveries,
    with fixed versions and times so two stores get identical rows."""
    now = int(time.time())
    alerts = [
        Alert(alert_id=f"{tag}-a{i}", rule="spike", key=f"topic={TOPICS[i % 5]}", labels={"topic": TOPICS[i % 5]},
              severity=("low", "high")[i % 2], status="open", opened_at=now - 600 * i, updated_at=now - 60 * i,
              resolved_at=None, window_start=now - 600 * i, window_end=now - 600 * i + 300, count=50 + i, negatives=20 + i,
              share=(20 + i) / (50 + i), baseline_mean=0.1, baseline_std=0.05, z=3.0 + i, peak_z=4.0 + i, windows=1 + i,
              examples=({"id": f"{tag}-m{i}", "text": f"example {i}"},), model_versions=("v1",))
        for i in range(12)
    ]
    resolved = [replace(a, status="resolved", resolved_at=now, updated_at=now) for a in alerts[::3]]
    states = [{"rule": "spike", "key": f"topic={t}", "state": json.dumps(KeyState(mean=0.1 * v, windows_seen=v).to_json()),
               "version": v} for t in TOPICS for v in (1, 2)]
    acks = [{"alert_id": a.alert_id, "acked_by": f"analyst-{i % 2}", "note": "seen", "acked_at": from_epoch(now - i)}
            for i, a in enumerate(alerts[::2])]
    outbox = [
        {"delivery_id": f"{tag}-d{i}", "notification_id": f"{tag}-n{i}", "group_key": f"g{i % 3}", "rule": "spike",
         "url": f"http://127.0.0.1:9/hook{i % 2}", "format": "json", "body": "{}", "status": status,
         "alert_states": json.dumps({alerts[i].alert_id: "open", alerts[i + 1].alert_id: "resolved"}), "attempts": attempts,
         "last_error": "", "created_at": from_epoch(now - 100 + i), "seq": i, "next_attempt_at": float(now),
         "updated_at": from_epoch(now), "version": version}
        for i in range(10) for status, attempts, version in (("pending", 0, 1), (("delivered", "dead")[i % 2], 1 + i % 4, 2))
    ]
    return [
        ("alerts", [{**alert_row(a), "version": 1} for a in alerts] + [{**alert_row(a), "version": 2} for a in resolved]),
        ("alert_state", states), ("alert_acks", acks), ("alert_outbox", outbox),
    ]


def _alerts_answers(store) -> dict[str, object]:
    """Every read alerting and the dashboard make of the alert tables."""
    repo = AlertRepo(store)
    hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    return {
        "overview": repo.overview(hour_ago), "open": repo.list_alerts("open", 50), "all": repo.list_alerts(None, 50),
        "recent": repo.recent_alerts(hour_ago.timestamp() - 7200), "states": repo.load_states(), "acked": repo.acked_ids(),
        "deliveries": repo.deliveries(), "dead": repo.deliveries("dead", url="http://127.0.0.1:9/hook1"),
        "heard": repo.last_notified(),
    }


def _dashboard_answers(store) -> dict[str, object]:
    """Every dashboard query over the stored window (pickers as sets: they count raw rows, unmerged)."""
    first, last = queries.data_bounds(store)
    end = last + timedelta(seconds=1)
    start = end - (end - first) / 2
    key = {"topic": "Macro", "source": "news"}
    return {
        "bounds": (first, last),
        "series_topic": queries.series(store, first, end, 300, "topic"),
        "series_source": queries.series(store, first, end, 60, "source"),
        "sentiments": queries.sentiment_counts(store, first, end),
        "movers": queries.movers(store, start, end, first, min_messages=1),
        "pickers": {column: set(queries.distinct_values(store, column)) for column in queries.FILTER_COLUMNS},
        "explore_all": queries.explore(store, queries.Filters()),
        "explore_negative_news": queries.explore(
            store, queries.Filters(sentiments=("negative",), sources=("news",), min_confidence=0.6, start=start, end=end)),
        "explore_text": queries.explore(store, queries.Filters(text="earnings")),
        "around": queries.messages_around(store, first, end, key=key),
        "key_series": queries.key_series(store, first, end, 600, key=key),
        "label_queue": queries.label_queue(store, "sentiment"),
        **_alerts_answers(store),
    }


def _sync_replicas(settings: Settings, port: int) -> None:
    """Wait until the node on ``port`` has every part its replicas have, for each replicated table."""
    node = ServerStore(settings.model_copy(update={"clickhouse_port": port, "clickhouse_alt_hosts": ""}))
    node.open()
    try:
        for row in node.query("SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE 'Replicated%'"):
            node.execute(f"SYSTEM SYNC REPLICA `{row['name']}`")
    finally:
        node.close()


def test_a_replica_killed_mid_stream_loses_nothing_and_dashboards_match_one_server(clusters, stack, tmp_path):
    settings = _run(clusters, tmp_path)
    tag = settings.clickhouse_database
    messages = _messages(tag, N)
    scored = _scored_rows(tag, 600)
    alert_rows = _alert_rows(tag)
    store = ServerStore(settings)
    store.open()
    entry = clusters.service("clickhouse-s1r1")  # the node the worker and this store connect to first
    worker = Worker.start(settings, tmp_path / "worker.log", args=("--null-model",))
    try:
        worker.wait_ready()
        producer = Producer(settings, messages)
        producer.start()
        _wait_stored(store, worker, N // 4)
        assert producer.is_alive(), "the stream ended before the failure"
        stopped = time.monotonic()
        os.kill(entry.pid(), signal.SIGKILL)  # at once: a graceful stop takes seconds, during which it still serves
        left = N - _stored(store)
        assert left > 0, "the worker stored everything before the replica was down"
        store.write_batch("messages", scored[:450])
        store.write_batch("messages", scored[450:])  # the re-scored versions, in a later insert
        for table, rows in alert_rows:
            store.write_batch(table, rows)
        assert producer.finish() == N
        wait_drained(settings, [worker], timeout=240)
        print(f"{entry.name} killed with {left} messages left to store; all stored {time.monotonic() - stopped:.1f} s later")
        worker.assert_alive()
        assert worker.text().count("[^Worker]: Ready") == 1, "the worker restarted"
        (counts,) = store.query("SELECT count() AS n, uniqExact(id) AS ids FROM messages FINAL")
        assert counts == {"n": N + 600, "ids": N + 600}

        # One server holding the same rows: the streamed ones as the cluster holds them, the scored ones as written.
        single = ServerStore(stack.model_copy(update={"clickhouse_database": tag}))
        single.open()
        try:
            migrate(single)
            streamed = store.query(f"SELECT {', '.join(scored[0])} FROM messages FINAL WHERE id NOT LIKE '%%-s%%'")
            assert len(streamed) == N
            single.write_batch("messages", streamed)
            single.write_batch("messages", scored[:450])
            single.write_batch("messages", scored[450:])
            for table, rows in alert_rows:
                single.write_batch(table, rows)
            labels = [{"message_id": m.id, "task": "sentiment", "label": "negative", "text": m.text, "labeled_by": "qa",
                       "labeled_at": datetime.now(timezone.utc).replace(microsecond=0)} for m in messages[:40]]
            for target in (store, single):
                target.write_batch("labels", labels)
            expected = _dashboard_answers(single)
            assert all(expected[name] for name in ("series_topic", "movers", "explore_negative_news", "key_series",
                                                   "label_queue", "overview", "open", "states", "dead", "heard"))
            assert _dashboard_answers(store) == expected  # one replica of shard 1 still down

            entry.start(120)
            _sync_replicas(settings, entry.port)  # the returned node fetched what it missed
            assert _dashboard_answers(store) == expected  # reads are back on the returned replica
        finally:
            single.close()
    finally:
        store.close()
        worker.stop()
        if entry.pid() is None:
            entry.start(120)


def test_migrate_adds_a_column_to_every_replica_and_the_distributed_table(clusters, tmp_path):
    settings = _run(clusters, tmp_path)
    before = SimpleNamespace(__name__="probe", DDL=["CREATE TABLE IF NOT EXISTS probe (id String, v UInt64) "
                                                    "ENGINE = ReplacingMergeTree(v) ORDER BY id"])
    after = SimpleNamespace(__name__="probe", DDL=["CREATE TABLE IF NOT EXISTS probe (id String, v UInt64, note String) "
                                                   "ENGINE = ReplacingMergeTree(v) ORDER BY id"],
                            ADDED_COLUMNS=[("probe", "note", "String")])
    layout = Cluster(settings.clickhouse_cluster_name, settings.clickhouse_database)
    store = ServerStore(settings)
    store.open()
    try:
        migrate(store, [before], layout)
        store.write_batch("probe", [{"id": f"k{i}", "v": 1} for i in range(100)])
        migrate(store, [after], layout)
        assert missing_columns(store, [after], layout) == []  # nothing left to add: a second run alters nothing
        store.write_batch("probe", [{"id": "k1", "v": 2, "note": "second"}])
        rows = store.query("SELECT id, note FROM probe FINAL WHERE note != '' OR id = 'k2' ORDER BY id")
        assert rows == [{"id": "k1", "note": "second"}, {"id": "k2", "note": ""}]
        assert store.query("SELECT count() AS n FROM probe FINAL") == [{"n": 100}]
        for service in clusters.clickhouse[1:]:  # [0] is ZooKeeper
            node = ServerStore(settings.model_copy(update={"clickhouse_port": service.port, "clickhouse_alt_hosts": ""}))
            node.open()
            try:
                columns = node.query("SELECT table FROM system.columns WHERE database = currentDatabase() "
                                     "AND name = 'note' AND table LIKE 'probe%'")
            finally:
                node.close()
            assert sorted(r["table"] for r in columns) == ["probe", "probe_local"], service.name
    finally:
        store.close()
