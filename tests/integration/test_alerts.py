"""Alerting against the real parts: Kafka broker and clickhouse-server (fixture ``stack``),
chDB, a real `riskpulse alerts run` worker process, and a real HTTP receiver on 127.0.0.1.

Scored records are produced straight onto the scored topic (real texts and labels from
riskpulse.streams.alerts.corpus), so these tests do not depend on the classifier.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from tests.integration.alerts_corpus import MODEL_VERSION, Labeled, load_corpus, scored
from riskpulse.streams.alerts.detector import Alert
from riskpulse.streams.store.alerts import AlertRepo
from riskpulse.streams.alerts.webhooks import verify
from riskpulse.streams.ingest.producers import kafka_producer
from riskpulse.core.settings import Settings
from riskpulse.streams.store.backends import ServerStore
from riskpulse.streams.topics import ensure_topics
from tests.fixtures.http_receiver import TEST_SECRET, Receiver
from tests.fixtures.models import shared_data
from tests.fixtures.stack import free_ports, settings_env

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-c", "from riskpulse.cli import main; main()"]
W = 3.0  # window seconds: short so the tests stay fast
LIVE_TOPICS = ("Macro", "Earnings", "Stock Commentary")
BURST_TOPIC = "Macro"


@pytest.fixture(scope="module")
def corpus() -> list[Labeled]:
    return load_corpus(shared_data())


def write_rules(path: Path, name: str, urls: list[str], group_wait: float, send_resolved: bool = True) -> Path:
    hooks = "\n".join(f"      - url: {u}" for u in urls)
    path.write_text(f"""rules:
  - name: {name}
    key: [topic]
    window_s: {W}
    grace_s: 0.5
    threshold_z: 4
    min_volume: 20
    min_baseline_windows: 3
    examples: 5
    severity: critical
    webhooks:
{hooks}
    group_wait_s: {group_wait}
    group_interval_s: 2
    repeat_interval_s: 3600
    send_resolved: {str(send_resolved).lower()}
""")
    return path


def alert_settings(stack: Settings, tag: str, rules: Path) -> Settings:
    return stack.model_copy(update={
        "topic_raw": f"{tag}.raw", "topic_scored": f"{tag}.scored", "topic_dead_letter": f"{tag}.dead-letter",
        "topic_alerts": f"{tag}.alerts", "topic_control": f"{tag}.control", "consumer_group": f"{tag}-workers",
        "alerts_consumer_group": f"{tag}-alerts", "alerts_web_port": free_ports(1)[0], "rules_file": rules,
        "webhook_secret": TEST_SECRET, "webhook_backoff_s": 0.2, "webhook_retry_horizon_s": 3.0,
        "alert_tick_s": 0.2, "alert_idle_advance_s": 4.0, "worker_session_timeout_s": 6.0,
    })


@dataclass
class AlertsWorker:
    proc: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, settings: Settings, log: Path) -> "AlertsWorker":
        env = {k: v for k, v in os.environ.items() if not k.startswith("RISKPULSE_")}
        env.update(settings_env(settings))
        with log.open("ab") as fh:
            proc = subprocess.Popen([*CLI, "alerts", "run"], env=env, stdout=fh, stderr=subprocess.STDOUT)
        return cls(proc, log)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while "[^Worker]: Ready" not in self.text():
            assert self.proc.poll() is None, f"alerts worker exited {self.proc.returncode}:\n{self.text()[-4000:]}"
            assert time.monotonic() < deadline, f"alerts worker not ready:\n{self.text()[-4000:]}"
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Traffic:
    """Real scored messages on the scored topic: history at compressed event time, then live."""

    def __init__(self, settings: Settings, corpus: list[Labeled], seed: int = 1) -> None:
        self.settings = settings
        self.producer = kafka_producer(settings)
        self.rng = random.Random(seed)
        self.corpus = corpus
        self.by_topic = {t: [c for c in corpus if c.topic == t] for t in LIVE_TOPICS}
        self.negative = [c for c in corpus if c.topic == BURST_TOPIC and c.sentiment == "negative"]
        self.sent: dict[str, int] = {}
        self.burst_ids: set[str] = set()
        self.n = 0

    def send(self, item: Labeled, ts: float) -> str:
        self.n += 1
        msg = scored(item, ts, channel=f"ch{self.n % 7}", suffix=f"-{self.n}")
        self.producer.send(self.settings.topic_scored, key=msg.key, value=msg.model_dump_json().encode())
        self.sent[msg.topic] = self.sent.get(msg.topic, 0) + 1
        return msg.id

    def history(self, count: int, until: float, rate: float = 100.0) -> None:
        """``count`` real messages of every topic, unspiked, event times ending at ``until``."""
        start = until - count / rate
        for i, item in enumerate(self.rng.sample(self.corpus, count)):
            self.send(item, start + i / rate)
        self.producer.flush()

    def live(self, seconds: float, per_topic_per_s: float = 12, burst: bool = False) -> None:
        """Real-time traffic on the live topics; with ``burst``, the burst topic turns all-negative."""
        end = time.time() + seconds
        tick = 0.25
        while time.time() < end:
            now = time.time()
            for topic in LIVE_TOPICS:
                for _ in range(round(per_topic_per_s * tick)):
                    if burst and topic == BURST_TOPIC:
                        self.burst_ids.add(self.send(self.rng.choice(self.negative), now))
                    else:
                        self.send(self.rng.choice(self.by_topic[topic]), now)
            self.producer.flush()
            time.sleep(max(0.0, tick - (time.time() - now)))

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()


def sleep_to_window_start() -> float:
    start = math.ceil(time.time() / W) * W
    time.sleep(start - time.time())
    return start


def alerts_in_store(settings: Settings, rule: str) -> list[Alert]:
    store = ServerStore(settings)
    store.open()
    try:
        return [a for a in AlertRepo(store).recent_alerts(0) if a.rule == rule]
    finally:
        store.close()


def deliveries(settings: Settings, rule: str) -> list[dict]:
    store = ServerStore(settings)
    store.open()
    try:
        return [d for d in AlertRepo(store).deliveries(None) if d["rule"] == rule]
    finally:
        store.close()


def alert_topic_events(settings: Settings) -> list[tuple[int, dict]]:
    consumer = KafkaConsumer(settings.topic_alerts, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    try:
        return [(r.timestamp, json.loads(r.value)) for r in consumer]
    finally:
        consumer.close()


def wait_until(predicate, timeout: float, what: str, worker: AlertsWorker | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tail = worker.text()[-4000:] if worker else ""
            raise AssertionError(f"{what}: not within {timeout}s\n{tail}")
        time.sleep(0.3)


def test_burst_opens_one_alert_with_evidence_delivers_once_and_dead_letters(stack, corpus, http_receiver, tmp_path):
    tag = f"alerts-{uuid.uuid4().hex[:8]}"
    rule = f"spike-{tag}"
    dead_url = f"http://127.0.0.1:{free_ports(1)[0]}/nobody-listens"
    settings = alert_settings(stack, tag, write_rules(tmp_path / "rules.yaml", rule, [http_receiver.url, dead_url], 1))
    ensure_topics(settings)
    http_receiver.respond(500, 500, 500)
    worker = AlertsWorker.start(settings, tmp_path / "alerts.log")
    traffic = Traffic(settings, corpus)
    try:
        worker.wait_ready()
        traffic.history(6000, until=time.time() - 2 * W)      # ~20 unspiked windows of real data
        traffic.live(4 * W)                                   # normal live mix
        burst_start = sleep_to_window_start()
        traffic.live(W, burst=True)                           # one window of negative burst on one topic
        traffic.live(4 * W)                                   # normal again: the alert must resolve
        wait_until(lambda: any(a.status == "resolved" for a in alerts_in_store(settings, rule)), 20,
                   "alert resolved", worker)
        http_receiver.wait_for(lambda r: len(r.accepted) >= 2, timeout=20)
        wait_until(lambda: {d["status"] for d in deliveries(settings, rule) if d["url"] == dead_url} == {"dead"}
                   and len([d for d in deliveries(settings, rule) if d["url"] == dead_url]) == 2, 30,
                   "both notifications to the dead receiver dead-lettered", worker)
    finally:
        traffic.close()
        worker.stop()

    alerts = alerts_in_store(settings, rule)
    assert [a.labels for a in alerts] == [{"topic": BURST_TOPIC}], "exactly one alert, only on the burst topic"
    alert = alerts[0]
    assert alert.status == "resolved" and alert.windows == 1
    assert alert.window_start == burst_start and alert.window_end == burst_start + W
    assert alert.count == alert.negatives >= 20 and alert.share == 1.0
    assert alert.baseline_mean < 0.4 and alert.z >= 4
    assert len(alert.examples) == 5 and {e["id"] for e in alert.examples} <= traffic.burst_ids
    assert alert.model_versions == (MODEL_VERSION,)

    events = alert_topic_events(settings)
    assert [e["event"] for _, e in events] == ["opened", "resolved"]
    opened_ms = events[0][0]
    assert opened_ms / 1000 - burst_start <= W + 5, f"opened {opened_ms / 1000 - burst_start:.1f}s after the burst began"

    # receiver: 500 ×3 then 200 for the firing notification (one webhook-id), then the resolution
    firing = [r for r in http_receiver.requests if r.json["type"] == "riskpulse.alert.firing"]
    assert [r.status for r in firing] == [500, 500, 500, 200]
    assert len({r.headers["webhook-id"] for r in firing}) == 1
    assert all(r.verified for r in http_receiver.requests)
    for r in firing:
        verify(TEST_SECRET, r.headers, r.body)
    kinds = sorted(r.json["type"] for r in http_receiver.accepted.values())
    assert kinds == ["riskpulse.alert.firing", "riskpulse.alert.resolved"]
    accepted_alert = next(r for r in http_receiver.accepted.values() if r.json["type"].endswith("firing")).json["data"]
    assert [a["alert_id"] for a in accepted_alert["alerts"]] == [alert.alert_id]
    assert accepted_alert["alerts"][0]["count"] == alert.count

    rows = deliveries(settings, rule)
    ok_rows = [d for d in rows if d["url"] == http_receiver.url]
    assert sorted((d["status"], d["attempts"]) for d in ok_rows) == [("delivered", 1), ("delivered", 4)]
    dead_rows = [d for d in rows if d["url"] == dead_url]
    assert all(d["status"] == "dead" and d["attempts"] >= 3 for d in dead_rows)   # retried until the 3 s horizon
    assert all("ConnectError" in d["last_error"] for d in dead_rows), [d["last_error"] for d in dead_rows]


def test_worker_killed_between_detection_and_delivery_delivers_after_restart(stack, corpus, http_receiver, tmp_path):
    tag = f"alerts-{uuid.uuid4().hex[:8]}"
    rule = f"spike-{tag}"
    # a long group wait holds the notification back, so the kill lands after detection, before delivery
    settings = alert_settings(stack, tag, write_rules(tmp_path / "rules.yaml", rule, [http_receiver.url], 8))
    ensure_topics(settings)
    worker = AlertsWorker.start(settings, tmp_path / "alerts-1.log")
    traffic = Traffic(settings, corpus, seed=2)
    try:
        worker.wait_ready()
        traffic.history(3000, until=time.time() - 2 * W)
        traffic.live(3 * W)
        sleep_to_window_start()
        traffic.live(W, burst=True)
        traffic.live(W)
        wait_until(lambda: alerts_in_store(settings, rule), 10, "alert detected and stored", worker)
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(10)
        assert http_receiver.requests == [], "nothing may be delivered before the kill in this scenario"
        assert [d["status"] for d in deliveries(settings, rule)] == []
        worker = AlertsWorker.start(settings, tmp_path / "alerts-2.log")
        worker.wait_ready()
        traffic.live(2 * W)
        http_receiver.wait_for(lambda r: len(r.accepted) >= 1, timeout=30)
    finally:
        traffic.close()
        worker.stop()
    alerts = alerts_in_store(settings, rule)
    assert [a.labels for a in alerts] == [{"topic": BURST_TOPIC}], "the restart must not open a second alert"
    # depending on timing the first notification says firing, or already resolved: either way it arrives
    notified = [a["alert_id"] for r in http_receiver.accepted.values() for a in r.json["data"]["alerts"]]
    assert set(notified) == {alerts[0].alert_id}
    assert all(r.verified for r in http_receiver.requests)
    assert len({r.headers["webhook-id"] for r in http_receiver.requests}) == len(http_receiver.accepted)


def test_bad_rules_file_fails_start_naming_line_and_field(stack, tmp_path):
    bad = tmp_path / "bad-rules.yaml"
    bad.write_text("""rules:
  - name: broken
    key: [topic, region]
    window_s: -60
    webhooks:
      - format: slack
""")
    settings = alert_settings(stack, f"bad-{uuid.uuid4().hex[:6]}", bad)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKPULSE_")}
    env.update(settings_env(settings))
    done = subprocess.run([*CLI, "alerts", "run"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"{bad}:3: field rules.0.key.1" in done.stderr, done.stderr
    assert f"{bad}:4: field rules.0.window_s: Input should be greater than 0" in done.stderr
    assert f"{bad}:6: field rules.0.webhooks.0.url: Field required" in done.stderr


def test_test_webhook_command_sends_a_verifiable_signed_sample(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKPULSE_")}
    env["RISKPULSE_WEBHOOK_SECRET"] = TEST_SECRET
    good, wrong = Receiver(), Receiver(secret="whsec_" + "b3RoZXItc2VjcmV0")
    try:
        done = subprocess.run([*CLI, "alerts", "test-webhook", good.url], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        (received,) = good.requests
        assert received.verified and received.json["type"] == "riskpulse.alert.firing"
        refused = subprocess.run([*CLI, "alerts", "test-webhook", wrong.url], env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and "HTTP 401" in refused.stderr
    finally:
        good.stop()
        wrong.stop()


@pytest.mark.parametrize("store_fixture", ["server_store", "chdb_store"])
def test_alert_tables_round_trip_on_both_engines(store_fixture, request):
    """The alerts' SQL (FINAL, argMax, the acks join) on clickhouse-server 18.16 and chDB."""
    from riskpulse.streams.alerts.detector import KeyState

    repo = AlertRepo(request.getfixturevalue(store_fixture))
    base = dict(alert_id="alt_x", rule="r", key=json.dumps({"topic": "Macro"}), labels={"topic": "Macro"},
                severity="warning", opened_at=1_760_000_010.0, updated_at=1_760_000_010.0, window_start=1_760_000_000.0,
                window_end=1_760_000_010.0, count=40, negatives=30, share=0.75, baseline_mean=0.1, baseline_std=0.05,
                z=13.0, peak_z=13.0, windows=1, examples=({"id": "m1", "text": "it's \"bad\"\n"},), model_versions=("v1",))
    repo.save_alerts([Alert(status="open", resolved_at=None, **base)])
    time.sleep(0.01)
    repo.save_alerts([Alert(**{**base, "updated_at": 1_760_000_020.0}, status="resolved", resolved_at=1_760_000_020.0)])
    (back,) = repo.recent_alerts(0)
    assert back == Alert(**{**base, "updated_at": 1_760_000_020.0}, status="resolved", resolved_at=1_760_000_020.0)
    repo.ack("alt_x", "analyst", "seen")
    (listed,) = repo.list_alerts("resolved", 10)
    assert listed["acked_by"] == "analyst" and repo.acked_ids() == {"alt_x"}
    assert repo.list_alerts("open", 10) == []

    state = KeyState(mean=0.1, var=0.01, windows_seen=7, last_window_end=1_760_000_010.0)
    repo.save_states([("r", base["key"], state)])
    time.sleep(0.01)
    repo.save_states([("r", base["key"], KeyState(mean=0.2, windows_seen=8, last_window_end=1_760_000_020.0))])
    assert repo.load_states()[("r", base["key"])].windows_seen == 8

    from riskpulse.core.clock import from_epoch

    row = dict(delivery_id="msg_1", notification_id="ntf_1", group_key="g", rule="r", url="http://x", format="standard",
               body="{}", alert_states=json.dumps({"alt_x": "open"}), status="pending", attempts=0, last_error="",
               created_at=from_epoch(1_760_000_010.0), seq=1, next_attempt_at=1_760_000_010.5)
    repo.save_deliveries([row])
    time.sleep(0.01)
    repo.save_deliveries([{**row, "status": "dead", "attempts": 3, "last_error": "ConnectError: refused"}])
    (dead,) = repo.deliveries("dead")
    assert (dead["attempts"], dead["last_error"]) == (3, "ConnectError: refused")
    assert repo.deliveries("pending") == []
    assert repo.last_notified() == {"g": {"alt_x": "open"}}
    # a later notification of the group without alt_x: receivers still heard alt_x (restart must not re-send it)
    repo.save_deliveries([{**row, "delivery_id": "msg_2", "seq": 2, "alert_states": json.dumps({"alt_y": "open"})}])
    assert repo.last_notified() == {"g": {"alt_x": "open", "alt_y": "open"}}
    assert [d["delivery_id"] for d in repo.deliveries(("pending", "redrive"))] == ["msg_2"]
    assert repo.redrive(url="http://elsewhere") == [] and repo.redrive(ids=["msg_2"]) == []   # not dead
    time.sleep(0.01)
    assert [d["delivery_id"] for d in repo.redrive(url="http://x")] == ["msg_1"]
    assert [d["status"] for d in repo.deliveries(None, ids=["msg_1", "msg_2"])] == ["redrive", "pending"]


def test_cli_list_show_ack(stack, server_store):
    repo = AlertRepo(server_store)
    now = time.time()
    alert = Alert(alert_id="alt_cli", rule="r-cli", key=json.dumps({"topic": "Macro"}), labels={"topic": "Macro"},
                  severity="critical", status="open", opened_at=now, updated_at=now, resolved_at=None,
                  window_start=now - 60, window_end=now, count=50, negatives=40, share=0.8, baseline_mean=0.1,
                  baseline_std=0.05, z=14.0, peak_z=14.0, windows=1,
                  examples=({"id": "m-1", "text": "Bank run fears"},), model_versions=("v1",))
    repo.save_alerts([alert])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKPULSE_")}
    env.update(settings_env(stack))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, "alerts", *args], env=env, capture_output=True, text=True, timeout=120)

    listed = cli("list", "--status", "open")
    assert listed.returncode == 0 and "alt_cli" in listed.stdout and "critical" in listed.stdout, listed.stderr
    shown = cli("show", "alt_cli")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["examples"] == [{"id": "m-1", "text": "Bank run fears"}] and detail["z"] == 14.0
    assert cli("ack", "alt_cli", "--by", "analyst", "--note", "looking").returncode == 0
    assert "acked by analyst" in cli("list").stdout
    audited = server_store.query("SELECT user, role, action, target, detail FROM audit")
    assert audited == [{"user": "analyst", "role": "cli", "action": "acknowledge", "target": "alt_cli",
                        "detail": '{"note": "looking"}'}]
    missing = cli("ack", "alt_nope")
    assert missing.returncode == 1 and "no alert alt_nope" in missing.stderr


def test_two_alert_services_by_mistake_one_delivers_and_the_other_takes_over(stack, corpus, http_receiver, tmp_path):
    """A second `alerts run` in the group stands by (no detection, no webhooks); killed, the active
    one's role passes to it, and the receiver still hears each notification once."""
    tag = f"alerts-{uuid.uuid4().hex[:8]}"
    rule = f"spike-{tag}"
    settings = alert_settings(stack, tag, write_rules(tmp_path / "rules.yaml", rule, [http_receiver.url], 1))
    ensure_topics(settings)
    first = AlertsWorker.start(settings, tmp_path / "alerts-a.log")
    second = None
    traffic = Traffic(settings, corpus, seed=3)
    try:
        first.wait_ready()
        wait_until(lambda: "alerts service active" in first.text(), 30, "first service active", first)
        second = AlertsWorker.start(settings.model_copy(update={"alerts_web_port": free_ports(1)[0]}),
                                    tmp_path / "alerts-b.log")
        second.wait_ready()
        wait_until(lambda: "standing by" in second.text(), 30, "second service standing by", second)
        traffic.history(6000, until=time.time() - 2 * W)
        traffic.live(4 * W)
        sleep_to_window_start()
        traffic.live(W, burst=True)
        traffic.live(4 * W)
        http_receiver.wait_for(lambda r: len(r.accepted) >= 2, timeout=30)
        assert "alerts service active" not in second.text(), "only one service may be active"
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        wait_until(lambda: "alerts service active" in second.text(), 60, "standby took over", second)
        traffic.live(3 * W)
        sleep_to_window_start()
        traffic.live(W, burst=True)
        traffic.live(4 * W)
        http_receiver.wait_for(lambda r: len(r.accepted) >= 4, timeout=40)
        time.sleep(2 * W)   # room for a duplicate to show up, if one were coming
    finally:
        traffic.close()
        first.stop()
        if second is not None:
            second.stop()
    alerts = alerts_in_store(settings, rule)
    assert len(alerts) == 2 and {a.labels["topic"] for a in alerts} == {BURST_TOPIC}
    assert all(r.verified and r.status == 200 for r in http_receiver.requests)
    assert len(http_receiver.requests) == len(http_receiver.accepted) == 4, "each notification once"
    heard = [(a["alert_id"], a["status"]) for r in http_receiver.requests for a in r.json["data"]["alerts"]]
    assert sorted(heard) == sorted((a.alert_id, s) for a in alerts for s in ("open", "resolved"))


def test_backlog_alert_that_opens_and_resolves_at_once_is_still_heard_firing(stack, corpus, http_receiver, tmp_path):
    """The issue's replay: a backlog caught up faster than real time opens and resolves the alert within
    milliseconds, before group_wait; with send_resolved false the receiver once heard nothing."""
    tag = f"alerts-{uuid.uuid4().hex[:8]}"
    rule = f"spike-{tag}"
    settings = alert_settings(stack, tag, write_rules(tmp_path / "rules.yaml", rule, [http_receiver.url], 1,
                                                      send_resolved=False))
    ensure_topics(settings)
    traffic = Traffic(settings, corpus, seed=4)
    burst = math.floor((time.time() - 60) / W) * W
    traffic.history(6000, until=burst)                     # ~20 unspiked windows, all in the past
    for window in range(5):                                # the burst window, then four normal ones
        start = burst + window * W
        for topic in LIVE_TOPICS:
            pool = traffic.negative if window == 0 and topic == BURST_TOPIC else traffic.by_topic[topic]
            for i in range(36):
                traffic.send(traffic.rng.choice(pool), start + i * W / 36)
    traffic.close()
    worker = AlertsWorker.start(settings, tmp_path / "alerts.log")
    try:
        worker.wait_ready()
        wait_until(lambda: any(a.status == "resolved" for a in alerts_in_store(settings, rule)), 60,
                   "backlog alert opened and resolved", worker)
        http_receiver.wait_for(lambda r: len(r.accepted) >= 1, timeout=20)
        time.sleep(3)   # a second notification would have had time to arrive
    finally:
        worker.stop()
    (alert,) = alerts_in_store(settings, rule)
    assert alert.resolved_at - alert.opened_at <= W   # resolved on the next window: both in one catch-up
    (heard,) = http_receiver.requests
    assert heard.verified and heard.json["type"] == "riskpulse.alert.firing"
    (sent,) = heard.json["data"]["alerts"]
    assert (sent["alert_id"], sent["status"], sent["resolved_at"]) == (alert.alert_id, "open", None)
    assert (sent["window_start"], sent["window_end"]) == tuple(
        datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z") for t in (burst, burst + W))
