"""Fault scenarios on the real parts, shared by tests/faults (which assert) and bench/faults.py (which reports).

Each scenario owns its stack: a Kafka broker and a clickhouse-server on free loopback ports under its own
home (it kills or stops them, which a shared stack must not suffer), real `riskpulse worker` and
`riskpulse alerts run` processes, and a real HTTP receiver on 127.0.0.1. It streams real texts, injects one
fault and measures what an on-call engineer asks afterwards:

- produced: records the broker acknowledged; stored: distinct ids in ``messages FINAL``; lost: produced
  ids not stored; duplicated: rows of ``messages FINAL`` beyond one per id plus ids emitted more than once
  on the scored topic (what the alert detector counts);
- alerts expected / delivered / duplicated: planted negative bursts, those heard firing at the receiver,
  and notifications of one alert and status accepted more than once;
- recovery seconds: from the failed part's return until the store holds everything produced before it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from riskpulse.core.schema import Message
from riskpulse.core.settings import Settings
from riskpulse.streams.ingest.producers import kafka_producer
from riskpulse.streams.ops.stack import Stack
from riskpulse.streams.store.backends import ServerStore
from riskpulse.streams.store.migrate import migrate_settings
from riskpulse.streams.topics import ensure_topics
from tests.fixtures.http_receiver import Receiver
from tests.fixtures.models import shared_data
from tests.fixtures.stack import free_ports
from tests.integration.alerts_corpus import Labeled, load_corpus
from tests.integration.pipeline_support import Worker, real_texts, run_settings
from tests.integration.test_alerts import (BURST_TOPIC, LIVE_TOPICS, W, AlertsWorker, Traffic, alert_settings,
                                           alerts_in_store, sleep_to_window_start, write_rules)

STOP_GRACE_S = 10.0   # the workers' RISKPULSE_STOP_GRACE_S in these scenarios


@dataclass
class FaultResult:
    """One row of the fault report."""

    fault: str
    produced: int = 0
    stored: int = 0
    lost: int = 0
    store_duplicated: int = 0
    scored_duplicated: int = 0
    dead_lettered: int = 0
    alerts_expected: int = 0
    alerts_delivered: int = 0
    alerts_duplicated: int = 0
    recovery_s: float | None = None
    notes: dict = field(default_factory=dict)

    @property
    def duplicated(self) -> int:
        return self.store_duplicated + self.scored_duplicated

    def as_json(self) -> dict:
        return {**asdict(self), "duplicated": self.duplicated}


@functools.lru_cache(maxsize=1)
def corpus() -> list[Labeled]:
    """Real tweets with human sentiment and topic (the alert tests' corpus), loaded once per process."""
    return load_corpus(shared_data())


def good_messages(tag: str, n: int, ts: datetime | None = None) -> list[Message]:
    """n real texts with distinct ids over 24 source/channel keys (every raw partition gets some)."""
    ts = ts or datetime.now(timezone.utc)
    texts = real_texts(min(n, 6000))   # the shared sets hold ~6,700 usable texts; beyond, numbered copies
    return [Message(id=f"{tag}-{i:06d}", source="news" if i % 3 else "customer", channel=f"desk-{i % 24}", ts=ts,
                    text=texts[i % len(texts)] if i < len(texts) else f"{texts[i % len(texts)]} (#{i})")
            for i in range(n)]


def as_records(messages: list[Message]) -> list[tuple[bytes, bytes]]:
    return [(m.key, m.to_bytes()) for m in messages]


class Stream(threading.Thread):
    """Records sent in the background at ``rate`` per second by the CLI's producer (idempotent, acks=all):
    it must ride out a broker restart on its own. Keeps where each record landed, and what the
    producer refused (e.g. a record over its max request size) with the error it gave."""

    def __init__(self, settings: Settings, records: list[tuple[bytes, bytes]], rate: float | None = None,
                 topic: str | None = None) -> None:
        super().__init__(daemon=True, name="fault-stream")
        self.settings, self.records, self.rate = settings, records, rate
        self.topic = topic or settings.topic_raw
        self.handed = 0
        self.landed: dict[int, tuple[int, int]] = {}   # record index -> (partition, offset)
        self.refused: dict[int, str] = {}               # record index -> the producer's error
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = kafka_producer(self.settings)
            try:
                start = time.monotonic()
                for i, (key, value) in enumerate(self.records):
                    if self.rate:
                        delay = start + i / self.rate - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                    try:
                        future = producer.send(self.topic, key=key, value=value)
                    except KafkaError as exc:   # refused before sending: too large, no metadata in max_block_ms
                        self.refused[i] = f"{type(exc).__name__}: {exc}"
                        continue
                    future.add_callback(self._landed, i)
                    future.add_errback(self._refused, i)
                    self.handed += 1
                producer.flush(timeout=180)
            finally:
                producer.close(timeout=30)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def _landed(self, i: int, meta) -> None:
        self.landed[i] = (meta.partition, meta.offset)

    def _refused(self, i: int, exc: BaseException) -> None:
        self.refused[i] = f"{type(exc).__name__}: {exc}"

    def finish(self, timeout: float = 300) -> None:
        self.join(timeout)
        assert not self.is_alive(), f"producer still sending after {timeout}s ({self.handed} handed)"
        assert self.error is None, f"producer failed: {self.error!r}"


# --- what the store and the topics hold -------------------------------------------------------------------
def open_store(settings: Settings) -> ServerStore:
    store = ServerStore(settings)
    store.open()
    return store


def stored_counts(settings: Settings) -> dict[str, int]:
    """Rows and distinct ids in messages FINAL (what every dashboard total and the detector's replay count)."""
    store = open_store(settings)
    try:
        (row,) = store.query("SELECT count() AS rows, uniqExact(id) AS ids FROM messages FINAL")
        return row
    finally:
        store.close()


def stored_ids(settings: Settings) -> set[str]:
    store = open_store(settings)
    try:
        return {r["id"] for r in store.query("SELECT id FROM messages FINAL")}
    finally:
        store.close()


def dead_letter_offsets(settings: Settings) -> set[tuple[int, int]]:
    store = open_store(settings)
    try:
        rows = store.query("SELECT `partition` AS p, `offset` AS o FROM dead_letters FINAL WHERE `topic` = %(t)s",
                           {"t": settings.topic_raw})
        return {(r["p"], r["o"]) for r in rows}
    finally:
        store.close()


def topic_ids(settings: Settings, topic: str, where: dict[str, list[str]] | None = None) -> Counter:
    """How often each message id was emitted on ``topic`` (read from the start to its end offsets); ``where``
    collects each id's ``partition@offset`` records."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                             max_partition_fetch_bytes=4 * 1024 * 1024)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        ids: Counter = Counter()
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    message_id = json.loads(r.value)["id"]
                    ids[message_id] += 1
                    if where is not None:
                        where.setdefault(message_id, []).append(f"{r.partition}@{r.offset}")
        return ids
    finally:
        consumer.close()


def wait_stored(settings: Settings, ids: int, workers: list[Worker], timeout: float = 300) -> float:
    """Seconds until messages FINAL holds at least ``ids`` distinct ids (the store may be down for a while)."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout:
        for w in workers:
            w.assert_alive()
        try:
            last = stored_counts(settings)["ids"]
        except Exception as exc:  # noqa: BLE001 - the server is coming back; keep asking
            last = repr(exc)[:200]
        else:
            if last >= ids:
                return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"store holds {last} ids, wanted {ids}, after {timeout}s:\n" +
                         "\n---\n".join(w.tail(30) for w in workers))


def wait_committed(settings: Settings, workers: list[Worker], timeout: float = 300) -> None:
    """Until the worker group has committed every raw offset (then the scored topic is complete too)."""
    from tests.integration.pipeline_support import wait_drained

    wait_drained(settings, workers, timeout)


def audit(result: FaultResult, settings: Settings, produced_ids: set[str],
          sent_twice: frozenset[str] = frozenset()) -> FaultResult:
    """Fill produced/stored/lost/duplicated; ``sent_twice``: ids the producer itself sent as two records
    (they are two scored records by design, reported apart, not as the pipeline counting twice)."""
    counts = stored_counts(settings)
    have = stored_ids(settings)
    where: dict[str, list[str]] = {}
    scored = topic_ids(settings, settings.topic_scored, where)
    result.produced = len(produced_ids)
    result.stored = len(have & produced_ids)
    result.lost = len(produced_ids - have)
    result.store_duplicated = counts["rows"] - counts["ids"]
    result.scored_duplicated = sum(n - 1 for i, n in scored.items() if i not in sent_twice)
    if sent_twice:
        result.notes["ids_sent_twice_on_scored_topic"] = sum(n - 1 for i, n in scored.items() if i in sent_twice)
    result.notes.setdefault("scored_missing", len(have - set(scored)))
    twice = sorted((places for i, places in where.items() if len(places) > 1 and i not in sent_twice), key=str)
    if twice:  # which records: to match against the workers' "stored raw[p]@a-b" lines
        result.notes["scored_duplicates_at"] = twice[:10]
    return result


# --- one scenario's stack, processes and receiver ---------------------------------------------------------
class FaultRun:
    """A scenario's own broker + clickhouse-server (under ``root``), its processes, and, with ``alerts``, a
    receiver and a rule keyed on topic (3 s windows) so a planted burst opens exactly one alert."""

    def __init__(self, root: Path, tag: str, registry: Path | None = None, *, alerts: bool = False,
                 send_resolved: bool = True, **overrides) -> None:
        self.root, self.tag = root, tag
        self.root.mkdir(parents=True, exist_ok=True)
        kafka, controller, native, http = free_ports(4)
        self.base = Settings(home=root / "home", store="server", kafka_port=kafka, kafka_controller_port=controller,
                             clickhouse_port=native, clickhouse_http_port=http, chdb_path=root / "home" / "chdb",
                             kafka_heap="256m")
        self.stack = Stack(self.base)
        self.receiver: Receiver | None = None
        self.rule = f"spike-{tag}"
        settings = self.base
        if alerts:
            self.receiver = Receiver()
            rules = write_rules(root / "rules.yaml", self.rule, [self.receiver.url], 1)
            if not send_resolved:
                rules.write_text(rules.read_text().replace("send_resolved: true", "send_resolved: false"))
            settings = alert_settings(self.base, tag, rules)
        self.settings = run_settings(settings, tag, registry or root / "registry", stop_grace_s=STOP_GRACE_S,
                                     **overrides)
        self.workers: list[Worker] = []
        self.alert_services: list[AlertsWorker] = []
        self._logs = 0

    def __enter__(self) -> "FaultRun":
        try:
            self.stack.up(timeout=120)
            migrate_settings(self.base)
            ensure_topics(self.settings)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for w in self.workers:
            w.stop(timeout=STOP_GRACE_S + 10)
        for a in self.alert_services:
            a.stop()
        if self.receiver is not None:
            self.receiver.stop()
        self.stack.down()

    @property
    def broker(self):
        return self.stack.kafka[0]

    @property
    def clickhouse(self):
        return self.stack.clickhouse[0]

    def _log(self, name: str) -> Path:
        self._logs += 1
        return self.root / f"{self._logs:02d}-{name}.log"

    def start_worker(self, null_model: bool = True, ready: bool = True) -> Worker:
        worker = Worker.start(self.settings, self._log("worker"), web_port=free_ports(1)[0],
                              args=("--null-model",) if null_model else ())
        self.workers.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    def start_alerts(self) -> AlertsWorker:
        service = AlertsWorker.start(self.settings.model_copy(update={"alerts_web_port": free_ports(1)[0]}),
                                     self._log("alerts"))
        self.alert_services.append(service)
        service.wait_ready()
        deadline = time.monotonic() + 60
        while "alerts service active" not in service.text():
            assert service.proc.poll() is None and time.monotonic() < deadline, service.text()[-3000:]
            time.sleep(0.3)
        return service

    def restart_broker(self, sig: signal.Signals, down_s: float) -> float:
        """Stop the broker with ``sig`` (SIGTERM: a clean shutdown; SIGKILL: none), start it ``down_s`` later;
        returns the monotonic time it answered again."""
        pid = self.broker.pid()
        os.kill(pid, sig)
        self.broker.finish_stop(pid, 60)
        time.sleep(down_s)
        self.broker.start(120)
        return time.monotonic()

    def stop_clickhouse(self) -> None:
        self.clickhouse.stop(30)

    def start_clickhouse(self) -> float:
        self.clickhouse.start(120)
        return time.monotonic()


def dashboard_errors(settings: Settings) -> list[str]:
    """The errors the dashboard's overview shows with these settings (Streamlit AppTest, in this process)."""
    import pytest
    from streamlit.testing.v1 import AppTest

    from tests.fixtures.dashboard import dashboard_process

    app = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
    with pytest.MonkeyPatch.context() as env, dashboard_process(env, settings):
        at = AppTest.from_file(app, default_timeout=60).run()
    return [e.value for e in at.error] + [f"EXCEPTION {e.message}" for e in at.exception]


# --- alerts: a planted burst heard at the receiver -------------------------------------------------------
class AlertProbe:
    """Planted scored traffic for the run's rule: history first (a baseline), then one negative burst."""

    def __init__(self, run: FaultRun, seed: int = 1) -> None:
        assert run.receiver is not None, "FaultRun(alerts=True) makes the receiver and the rule"
        self.run = run
        self.traffic = Traffic(run.settings, corpus(), seed=seed)
        self.bursts: list[float] = []   # window starts of the planted bursts

    def history(self) -> None:
        self.traffic.history(3000, until=time.time() - 2 * W)

    def burst(self) -> None:
        """Normal live traffic, one all-negative window on the burst topic, normal again (it resolves)."""
        self.traffic.live(2 * W)
        self.bursts.append(sleep_to_window_start())
        self.traffic.live(W, burst=True)
        self.traffic.live(3 * W)

    def backlog(self, end: float) -> None:
        """History, a burst window and quiet windows all in the past (ending at ``end``), sent as fast as the
        producer goes: a service catching up sees the alert open and resolve within the same second."""
        start = math.floor(end / W) * W - 6 * W
        self.traffic.history(3000, until=start - W)
        rng = random.Random(5)
        for offset in range(4):
            window = start + offset * W
            for i in range(36 * 3):
                topic = LIVE_TOPICS[i % len(LIVE_TOPICS)]
                ts = window + rng.random() * W
                if offset == 0 and topic == BURST_TOPIC:
                    self.traffic.send(rng.choice(self.traffic.negative), ts)
                else:
                    self.traffic.send(rng.choice(self.traffic.by_topic[topic]), ts)
        self.traffic.producer.flush()
        self.bursts.append(start)

    def wait_heard(self, timeout: float = 60) -> bool:
        """Until the receiver heard every planted burst's alert firing, then a little longer for duplicates;
        False if it did not within ``timeout`` (the row still gets its counts; the tests assert on them)."""
        try:
            self.run.receiver.wait_for(lambda r: self._firing_heard() >= len(self.bursts), timeout=timeout)
        except AssertionError:
            return False
        time.sleep(2 * W)
        return True

    def _firing(self) -> list[dict]:
        return [a for r in list(self.run.receiver.requests) if r.status == 200 and r.verified
                for a in r.json["data"]["alerts"] if a["status"] == "open"]

    def _firing_heard(self) -> int:
        starts = {self._window_start(a) for a in self._firing()}
        return sum(1 for b in self.bursts if b in starts)

    @staticmethod
    def _window_start(alert: dict) -> float:
        return datetime.fromisoformat(alert["window_start"].replace("Z", "+00:00")).timestamp()

    def record(self, result: FaultResult) -> FaultResult:
        """Expected: one alert per planted burst; delivered: those heard firing with their window's times;
        duplicated: notifications heard twice (see duplicate_notifications)."""
        ok = [r for r in self.run.receiver.requests if r.status == 200 and r.verified]
        heard = Counter((a["alert_id"], a["status"]) for r in ok for a in r.json["data"]["alerts"])
        result.alerts_expected = len(self.bursts)
        result.alerts_delivered = self._firing_heard()
        result.alerts_duplicated = duplicate_notifications(self.run.receiver)
        stored = alerts_in_store(self.run.settings, self.run.rule)
        result.notes["alerts_stored"] = [(a.labels, a.status) for a in stored]
        result.notes["notifications"] = sorted(f"{a}:{s}" for a, s in heard)
        result.notes["unverified_requests"] = sum(1 for r in self.run.receiver.requests if not r.verified)
        return result

    def close(self) -> None:
        self.traffic.close()


def duplicate_notifications(receiver: Receiver) -> int:
    """Notifications a receiver accepted twice: a webhook-id answered 200 again, or a notification of a group
    saying exactly what the group's previous one said (same alerts, same statuses) under a new id. A group's
    later notification that lists an alert again beside a new one is not a duplicate."""
    ok = [r for r in receiver.requests if r.status == 200 and r.verified]
    repeated_ids = len(ok) - len({r.headers["webhook-id"] for r in ok})
    first: dict[str, object] = {}
    for r in ok:
        first.setdefault(r.headers["webhook-id"], r)
    last: dict[str, frozenset] = {}
    same_again = 0
    for r in first.values():
        group = json.dumps(r.json["data"]["labels"], sort_keys=True)
        said = frozenset((a["alert_id"], a["status"]) for a in r.json["data"]["alerts"])
        same_again += last.get(group) == said
        last[group] = said
    return repeated_ids + same_again


# --- the faults -------------------------------------------------------------------------------------------
def broker_restart(root: Path, sig: signal.Signals = signal.SIGKILL, n: int = 6000, rate: float = 400,
                   down_s: float = 10, alerts: bool = True) -> FaultResult:
    """The broker stopped (SIGTERM or kill -9) a third into the stream and started ``down_s`` later; worker,
    alerts service and producer carry on by themselves; then a burst must still reach the receiver."""
    name = f"broker restart ({'kill -9' if sig == signal.SIGKILL else 'SIGTERM'}, {down_s:.0f} s down)"
    result = FaultResult(name)
    tag = f"br{sig.value}"
    with FaultRun(root, tag, alerts=alerts) as run:
        worker = run.start_worker()
        probe = AlertProbe(run) if alerts else None
        try:
            if probe:
                run.start_alerts()
                probe.history()
            messages = good_messages(tag, n)
            stream = Stream(run.settings, as_records(messages), rate)
            stream.start()
            while stream.handed < n // 3:
                time.sleep(0.1)
            back = run.restart_broker(sig, down_s)
            handed = stream.handed
            wait_stored(run.settings, handed, [worker], timeout=300)
            result.recovery_s = round(time.monotonic() - back, 1)
            stream.finish()
            wait_committed(run.settings, [worker])
            if probe:
                probe.burst()
                probe.wait_heard()
                probe.record(result)
            result.notes["worker_restarts"] = worker.text().count("[^Worker]: Ready") - 1
            result.notes["refused_by_producer"] = len(stream.refused)
            audit(result, run.settings, {messages[i].id for i in stream.landed})
            result.produced = len(stream.landed)
        finally:
            if probe:
                probe.close()
    return result


def clickhouse_down(root: Path, down_s: float = 60, n: int = 6000, rate: float = 200,
                    alerts: bool = True) -> FaultResult:
    """clickhouse-server stopped a quarter into the stream and started ``down_s`` later. The worker keeps its
    partitions (same process, no restart) and retries; a burst planted during the outage must be delivered
    (detector state and the outbox live in the store)."""
    result = FaultResult(f"ClickHouse down {down_s:.0f} s")
    tag = "chdown"
    with FaultRun(root, tag, alerts=alerts) as run:
        worker = run.start_worker()
        probe = AlertProbe(run, seed=2) if alerts else None
        try:
            if probe:
                run.start_alerts()
                probe.history()
            messages = good_messages(tag, n)
            stream = Stream(run.settings, as_records(messages), rate)
            stream.start()
            while stream.handed < n // 4:
                time.sleep(0.1)
            run.stop_clickhouse()
            down_at = time.monotonic()
            if probe:
                probe.burst()   # detected and notified while the store is gone
            result.notes["dashboard_during_outage"] = [e[:160] for e in dashboard_errors(run.settings)]
            time.sleep(max(0.0, down_s - (time.monotonic() - down_at)))
            worker.assert_alive()
            back = run.start_clickhouse()
            handed = stream.handed
            wait_stored(run.settings, handed, [worker], timeout=300)
            result.recovery_s = round(time.monotonic() - back, 1)
            stream.finish()
            wait_committed(run.settings, [worker])
            if probe:
                probe.wait_heard(timeout=90)
                probe.record(result)
            result.notes["worker_restarts"] = worker.text().count("[^Worker]: Ready") - 1
            result.notes["dashboard_after"] = dashboard_errors(run.settings)
            audit(result, run.settings, {messages[i].id for i in stream.landed})
        finally:
            if probe:
                probe.close()
    return result


HANDOVER = re.compile(r"Revoking|Setting newly assigned|stopping:|[Cc]ommit|wait_empty|Signal received|took over")


def rolling_deploy(root: Path, n: int = 6000, rate: float = 300) -> FaultResult:
    """Two workers in the group; mid-stream one gets SIGTERM (a rolling deploy) and a new one replaces it.
    The stop must take at most RISKPULSE_STOP_GRACE_S; the partitions move; nothing is counted twice."""
    result = FaultResult("worker SIGTERM (rolling deploy, 2 workers)")
    tag = "roll"
    with FaultRun(root, tag) as run:
        first, second = run.start_worker(), run.start_worker()
        messages = good_messages(tag, n)
        stream = Stream(run.settings, as_records(messages), rate)
        stream.start()
        while stream.handed < n // 3:
            time.sleep(0.1)
        asked = time.monotonic()
        handed = stream.handed
        first.proc.send_signal(signal.SIGTERM)
        code = first.proc.wait(STOP_GRACE_S + 20)
        result.notes["stop_s"] = round(time.monotonic() - asked, 1)
        result.notes["stop_exit_code"] = code
        result.notes["stored_by_stopped"] = sorted(first.stored_partitions())
        wait_stored(run.settings, handed, [second], timeout=300)   # the survivor took the partitions over
        result.recovery_s = round(time.monotonic() - asked, 1)
        replacement = run.start_worker()
        stream.finish()
        wait_committed(run.settings, [second, replacement])
        result.notes["stored_by_survivor"] = sorted(second.stored_partitions())
        audit(result, run.settings, {messages[i].id for i in stream.landed})
        if result.scored_duplicated:  # the workers' view of the handovers, for the failure message
            result.notes["handovers"] = {w.log.name: [line[:200] for line in w.text().splitlines() if HANDOVER.search(line)][-12:]
                                         for w in (first, second, replacement)}
    return result


def backlog_replay(root: Path, n: int = 6000) -> FaultResult:
    """Workers and the alerts service down while raw records and a day's scored traffic (history, a burst,
    quiet windows) pile up; both start and catch up faster than real time. The rule does not send
    resolutions: the burst's alert opens and resolves within the catch-up, and must still be heard firing
    with its window's times."""
    result = FaultResult("backlog replayed after an outage")
    tag = "backlog"
    with FaultRun(root, tag, alerts=True, send_resolved=False) as run:
        probe = AlertProbe(run, seed=3)
        try:
            messages = good_messages(tag, n)
            stream = Stream(run.settings, as_records(messages))
            stream.start()
            probe.backlog(end=time.time() - 2 * W)
            stream.finish()
            back = time.monotonic()
            worker = run.start_worker(ready=False)
            run.start_alerts()
            wait_stored(run.settings, len(stream.landed), [worker], timeout=300)
            result.recovery_s = round(time.monotonic() - back, 1)
            wait_committed(run.settings, [worker])
            probe.wait_heard(timeout=60)
            probe.record(result)
            audit(result, run.settings, {messages[i].id for i in stream.landed})
        finally:
            probe.close()
    return result


# --- hostile records ---------------------------------------------------------------------------------------
ONE_MB_LINE = 1_000_000       # fits kafka-python's max_request_size and the broker's max.message.bytes (1 MiB)
OVER_LIMIT_LINE = 1_100_000   # refused by the producer (MessageSizeTooLargeError): the sender is told, nothing lands


@dataclass(frozen=True)
class Hostile:
    kind: str
    key: bytes
    value: bytes
    expect: str        # "dead" (a dead letter at its offset), "stored" (its id in messages) or "refused" (producer)
    id: str = ""


def hostile_records(tag: str, n: int = 10_000, seed: int = 11) -> list[Hostile]:
    """``n`` hostile records of every kind an on-call engineer has seen, with what the schema says of each:

    dead letters: text over 32 kB, JSON nested 5,000 deep, meta nested 300 deep (small), invalid UTF-8, raw NUL
    bytes, 1 MB lines, wrong types, not an object, empty value, ts before 1970 or in 2100; stored: text with
    escaped NULs, ts 1970-01-01 (storable; the detector counts it late), pairs of one id with two texts and
    one ts (one row: the id is the producer's idempotency key, the later processed row wins); refused by the
    producer: lines over 1 MiB."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc).isoformat()

    def msg(i: int, **over) -> bytes:
        body = {"id": f"{tag}-h{i:05d}", "source": "news", "channel": "hostile", "ts": now, "text": "Bank shares fall"}
        body.update(over)
        return json.dumps(body).encode()

    makers = [
        ("text over 32 kB", "dead", lambda i: msg(i, text="risk " * rng.randint(7000, 40_000))),
        ("JSON nested 5000 deep", "dead", lambda i: b"[" * 5000 + b"]" * 5000),
        ("meta nested 300 deep", "dead", lambda i: msg(i, meta=json.loads('{"a":' * 300 + "1" + "}" * 300))),
        ("invalid UTF-8", "dead", lambda i: msg(i).replace(b"Bank", b"B\xff\xfenk")),
        ("raw NUL bytes", "dead", lambda i: msg(i).replace(b"Bank", b"B\x00nk")),
        ("wrong types", "dead", lambda i: msg(i, **rng.choice([{"text": 42}, {"ts": "yesterday"}, {"source": 7},
                                                                {"text": ["a"]}, {"meta": "x"}, {"id": 5}]))),
        ("not an object", "dead", lambda i: rng.choice([b"[1, 2]", b'"text"', b"null", b"42"])),
        ("empty value", "dead", lambda i: b""),
        ("ts before 1970", "dead", lambda i: msg(i, ts="1969-12-31T23:59:59Z")),
        ("ts in 2100", "dead", lambda i: msg(i, ts="2100-01-01T00:00:00Z")),
        ("escaped NUL in text", "stored", lambda i: msg(i, text=f"Bank\u0000shares\u0000fall {i}")),
        ("ts 1970-01-01", "stored", lambda i: msg(i, ts="1970-01-01T00:00:10Z", text=f"Old wire item {i}")),
    ]
    out: list[Hostile] = []
    for i in range(n - 30 - 2 * 100):
        kind, expect, make = makers[i % len(makers)]
        value = make(i)
        ident = f"{tag}-h{i:05d}" if expect == "stored" else ""
        out.append(Hostile(kind, f"hostile/k{i % 12}".encode(), value, expect, ident))
    for j in range(100):   # one id, two texts, one ts
        ident = f"{tag}-dup{j:03d}"
        for text in (f"Lender {j} cuts guidance", f"Lender {j} raises guidance"):
            out.append(Hostile("one id, two texts", f"hostile/d{j % 12}".encode(),
                               json.dumps({"id": ident, "source": "news", "channel": "dup", "ts": now, "text": text}).encode(),
                               "stored", ident))
    pad = lambda size: json.dumps({"id": f"{tag}-big", "source": "news", "ts": now, "text": "x" * size}).encode()  # noqa: E731
    for j in range(20):
        out.append(Hostile("1 MB line", b"hostile/big", pad(ONE_MB_LINE - 100)[:ONE_MB_LINE], "dead"))
    for j in range(10):
        out.append(Hostile("line over 1 MiB", b"hostile/big", pad(OVER_LIMIT_LINE), "refused"))
    rng.shuffle(out)
    return out


def _drain_time(run: FaultRun, settings: Settings, records: list[tuple[bytes, bytes]],
                null_model: bool) -> tuple[Stream, Worker, float]:
    """Produce ``records`` as a backlog, then time one worker from Ready until it committed all."""
    stream = Stream(settings, records)
    stream.start()
    stream.finish()
    worker = Worker.start(settings, run._log("worker"), web_port=free_ports(1)[0],
                          args=("--null-model",) if null_model else ())
    run.workers.append(worker)
    worker.wait_ready()
    started = time.monotonic()
    wait_committed(settings, [worker], timeout=600)
    return stream, worker, time.monotonic() - started


def hostile_stream(root: Path, n_good: int = 4000, n_hostile: int = 10_000, clean_baseline: bool = False,
                   registry: Path | None = None) -> FaultResult:
    """Good records with hostile ones mixed in at random; every hostile record must end as the schema says
    (dead letter at its offset, stored under its id, or refused by the producer with its error); good records
    all stored once. With ``clean_baseline``, the same good records alone on their own topics and database
    first, and the good records' throughput of both runs (messages per second from Ready to all committed).
    Workers score with the registry's current model if given, else the null model."""
    null_model = registry is None
    result = FaultResult(f"{n_hostile:,} hostile records in a clean stream ({'null' if null_model else 'real'} model)")
    tag = "hostile"
    with FaultRun(root, tag, registry=registry) as run:
        if clean_baseline:
            clean = run_settings(run.base, "clean", run.settings.registry_dir, stop_grace_s=STOP_GRACE_S,
                                 clickhouse_database="clean")
            ensure_topics(clean)
            migrate_settings(clean)
            _, first, clean_s = _drain_time(run, clean, as_records(good_messages("clean", n_good)), null_model)
            first.stop()
            result.notes["clean_good_msgs_per_s"] = round(n_good / clean_s)
        goods = good_messages(tag, n_good)
        hostile = hostile_records(tag, n_hostile)
        mixed: list[tuple[bytes, bytes]] = as_records(goods)
        order = random.Random(3)
        slots = sorted(order.sample(range(len(goods) + len(hostile)), len(hostile)))
        hostile_at: dict[int, Hostile] = {}
        for slot, record in zip(slots, hostile):
            mixed.insert(slot, (record.key, record.value))
            hostile_at[slot] = record
        stream, worker, mixed_s = _drain_time(run, run.settings, mixed, null_model)
        if clean_baseline:
            result.notes["mixed_good_msgs_per_s"] = round(n_good / mixed_s)
            result.notes["good_throughput_ratio"] = round(result.notes["mixed_good_msgs_per_s"] /
                                                          result.notes["clean_good_msgs_per_s"], 2)
        good_ids = {m.id for m in goods}
        sent_twice = frozenset(r.id for r in hostile if r.kind == "one id, two texts")
        audit(result, run.settings, good_ids, sent_twice)
        dead = dead_letter_offsets(run.settings)
        have = stored_ids(run.settings)
        outcome: Counter = Counter()
        wrong: list[str] = []
        for slot, record in hostile_at.items():
            if slot in stream.refused:
                got = "refused"
            elif slot in stream.landed and stream.landed[slot] in dead:
                got = "dead"
            elif record.id and record.id in have:
                got = "stored"
            else:
                got = "lost"
            outcome[(record.kind, got)] += 1
            if got != record.expect:
                wrong.append(f"{record.kind}: expected {record.expect}, got {got}")
        result.notes["hostile_outcomes"] = {f"{k} -> {g}": c for (k, g), c in sorted(outcome.items())}
        result.notes["hostile_not_as_schema_says"] = Counter(wrong)
        result.notes["refused_errors"] = sorted({e.split(":")[0] for e in stream.refused.values()})
        result.notes["worker_restarts"] = worker.text().count("[^Worker]: Ready") - 1
        landed_hostile = [s for s in hostile_at if s in stream.landed]
        result.produced = len(good_ids) + len(landed_hostile)
        hostile_ids_stored = {r.id for r in hostile_at.values() if r.expect == "stored" and r.id in have}
        result.stored += len(hostile_ids_stored)
        result.dead_lettered = sum(1 for s in landed_hostile if stream.landed[s] in dead)
        result.lost += outcome_total(outcome, "lost")
    return result


def outcome_total(outcome: Counter, got: str) -> int:
    return sum(c for (_, g), c in outcome.items() if g == got)


# --- disk full / read-only home ---------------------------------------------------------------------------
@contextlib.contextmanager
def read_only(path: Path) -> Iterator[str]:
    """``path`` made unwritable for this process; yields how. Root ignores mode bits, so as root the directory
    is made immutable (``chattr +i``: even root cannot create, rename or delete in it); otherwise chmod 0555."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True)
        try:
            yield "chattr +i"
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True, capture_output=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield "chmod 0555"
        finally:
            path.chmod(mode)


@contextlib.contextmanager
def small_disk(path: Path, megabytes: int) -> Iterator[bool]:
    """A tmpfs of ``megabytes`` mounted at ``path`` (needs CAP_SYS_ADMIN); yields False where mounting is
    not allowed, and the caller reports the full-disk case as not run."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def stored_versions(settings: Settings) -> dict[str, int]:
    store = open_store(settings)
    try:
        rows = store.query("SELECT model_version AS v, count() AS n FROM messages FINAL GROUP BY model_version")
        return {r["v"]: r["n"] for r in rows}
    finally:
        store.close()


def disk_faults(root: Path, quick_registry: Path, n: int = 600) -> FaultResult:
    """The faust data dir read-only at start: the worker refuses to start, naming the path. The registry on a
    full disk while a retraining writes a new version, and read-only while a version is promoted: each a
    clear error naming the path, and the running worker keeps scoring with the model it has."""
    from riskpulse.models.serving.registry import Registry, RegistryError
    from tests.integration.pipeline_support import CLI, child_env

    result = FaultResult("read-only / full disk (faust data dir, registry)")
    tag = "disk"
    served = Registry(quick_registry).current()
    size_mb = sum(f.stat().st_size for f in Registry(quick_registry).path(served).rglob("*") if f.is_file()) // 2**20 + 3
    registry_root = root / "registry"
    with small_disk(registry_root, size_mb) as full_disk_possible, FaultRun(root, tag, registry=registry_root) as run:
        shutil.copytree(Registry(quick_registry).path(served), registry_root / "versions" / served)
        (registry_root / "versions" / f"{served}-b").symlink_to(registry_root / "versions" / served)
        Registry(registry_root).promote(served)

        datadir = run.settings.home / f"{run.settings.consumer_group}-data"
        with read_only(datadir) as how:
            refused = subprocess.run([*CLI, "worker", "--null-model"], env=child_env(run.settings),
                                     capture_output=True, text=True, timeout=120)
        result.notes["datadir_made_read_only_by"] = how
        result.notes["datadir_exit_code"] = refused.returncode
        result.notes["datadir_error"] = [ln for ln in (refused.stdout + refused.stderr).splitlines() if str(datadir) in ln][-3:]

        worker = run.start_worker(null_model=False)
        first = good_messages(f"{tag}-a", n)
        stream = Stream(run.settings, as_records(first))
        stream.start()
        stream.finish()
        wait_stored(run.settings, n, [worker])

        if full_disk_possible:
            try:
                with Registry(registry_root).write(f"{served}-retrained") as out:   # as a retraining saves one
                    for f in sorted(Registry(registry_root).path(served).iterdir()):
                        if f.is_file():
                            shutil.copyfile(f, out / f.name)
                result.notes["full_disk_error"] = "none: the version was written"
            except RegistryError as exc:
                result.notes["full_disk_error"] = str(exc)
        else:
            result.notes["full_disk_error"] = "not run: mounting a small tmpfs is not allowed here"
        with read_only(registry_root) as how:
            promoted = subprocess.run([*CLI, "models", "promote", f"{served}-b"], env=child_env(run.settings),
                                      capture_output=True, text=True, timeout=120)
        result.notes["registry_made_read_only_by"] = how
        result.notes["promote_exit_code"] = promoted.returncode
        result.notes["promote_error"] = promoted.stderr.strip().splitlines()[-1:] if promoted.stderr.strip() else []
        time.sleep(run.settings.model_reload_check_s + 1)   # a worker that followed a bad pointer would now switch

        second = good_messages(f"{tag}-b", n)
        stream = Stream(run.settings, as_records(second))
        stream.start()
        stream.finish()
        wait_stored(run.settings, 2 * n, [worker])
        wait_committed(run.settings, [worker])
        result.notes["served"] = served
        result.notes["stored_by_version"] = stored_versions(run.settings)
        result.notes["current_after"] = Registry(registry_root).current()
        result.notes["worker_restarts"] = worker.text().count("[^Worker]: Ready") - 1
        audit(result, run.settings, {m.id for m in first + second})
    return result
