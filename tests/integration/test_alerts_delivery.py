"""Webhook delivery against the real parts: the outbox in clickhouse-server 18.16 (fixture ``stack``),
real HTTP receivers on 127.0.0.1, the `riskpulse alerts` CLI in a subprocess.

The hour-long outage runs on an injected clock: the receiver's port is really closed, then a real
receiver starts on it, while the dispatcher's clock jumps; the outbox is really restored from the
server after a restart in the middle.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections import defaultdict

import pytest
from pydantic import SecretStr

from riskpulse.core.settings import Settings
from riskpulse.streams.alerts.detector import Alert, AlertEvent
from riskpulse.streams.alerts.dispatcher import REDRIVE_CHECK_S, Dispatcher
from riskpulse.streams.alerts.rules import Rule, RuleSet, WebhookTarget
from riskpulse.streams.alerts.webhooks import DEV_SECRET
from riskpulse.streams.store.alerts import AlertRepo
from riskpulse.streams.store.backends import ServerStore
from tests.fakes import FakeClock
from tests.fixtures.http_receiver import TEST_SECRET, Receiver
from tests.fixtures.stack import free_ports, settings_env

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-c", "from riskpulse.cli import main; main()"]


def _rules(urls, **over) -> RuleSet:
    base = dict(name="spike", key=("topic", "channel"), group_by=("topic",), window_s=60, group_wait_s=5,
                group_interval_s=30, repeat_interval_s=100_000, webhooks=tuple(WebhookTarget(url=u) for u in urls))
    return RuleSet(rules=(Rule(**{**base, **over}),))


def _alert(topic: str, channel: str, status: str, at: float) -> Alert:
    return Alert(alert_id=f"alt_{topic}_{channel}", rule="spike", key=json.dumps({"topic": topic, "channel": channel}),
                 labels={"topic": topic, "channel": channel}, severity="critical", status=status, opened_at=at,
                 updated_at=at, resolved_at=None if status == "open" else at, window_start=at - 60, window_end=at,
                 count=50, negatives=45, share=0.9, baseline_mean=0.1, baseline_std=0.05, z=16.0, peak_z=16.0,
                 windows=1, examples=({"id": "m-1", "text": "bank run fears"},), model_versions=("v1",))


def _settings(stack: Settings, **over) -> Settings:
    return stack.model_copy(update={"webhook_secret": SecretStr(TEST_SECRET), "webhook_timeout_s": 2.0, **over})


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKPULSE_")}
    env.update(settings_env(settings))
    env.update(extra)
    return env


def test_receiver_down_for_an_hour_then_up_gets_every_notification_once_in_order(stack, server_store):
    port = free_ports(1)[0]
    down_url = f"http://127.0.0.1:{port}/hook"
    healthy = Receiver()
    settings = _settings(stack)
    rules = _rules([down_url, healthy.url])
    clock = FakeClock(time.time())
    start = clock()
    timeline = {
        0: [("opened", "Macro", "c1", "open"), ("opened", "Earnings", "c1", "open")],
        300: [("opened", "Macro", "c2", "open")],
        900: [("resolved", "Macro", "c1", "resolved")],
        1500: [("opened", "Earnings", "c2", "open"), ("resolved", "Earnings", "c2", "resolved")],  # within group_wait
        2400: [("resolved", "Macro", "c2", "resolved"), ("resolved", "Earnings", "c1", "resolved")],
    }

    def dispatcher() -> Dispatcher:
        store = ServerStore(settings)
        store.open()
        return Dispatcher(settings, rules, AlertRepo(store), clock=clock)

    receiver = None
    d = dispatcher()
    try:
        while clock() <= start + 3600 + 900:
            offset = round(clock() - start)
            for kind, topic, channel, status in timeline.get(offset, []):
                alert = _alert(topic, channel, status, clock())
                AlertRepo(server_store).save_alerts([alert])   # as the alert service stores it before notifying
                d.submit([AlertEvent(kind, alert)])
            if offset == 1800:   # restart mid-outage: pending rows and grouping come back from the server
                d.stop()
                d = dispatcher()
                d.restore()
            if offset == 3600:
                receiver = Receiver(port=port)
            d.run_once()
            clock.advance(15)
    finally:
        d.stop()
        healthy.stop()
        if receiver is not None:
            receiver.stop()

    rows = AlertRepo(server_store).deliveries(None, limit=10_000)
    assert rows and {r["status"] for r in rows} == {"delivered"}, [(r["url"], r["status"]) for r in rows]
    for got, url in ((receiver, down_url), (healthy, healthy.url)):
        made = [r for r in sorted(rows, key=lambda r: r["seq"]) if r["url"] == url]
        ok = [r for r in got.requests if r.status == 200]
        assert all(r.verified for r in got.requests)
        assert sorted(r.headers["webhook-id"] for r in ok) == sorted(r["delivery_id"] for r in made), "each once"
        for topic in ("Macro", "Earnings"):
            order = [r["delivery_id"] for r in made if f'"topic": "{topic}"' in r["group_key"]]
            assert [r.headers["webhook-id"] for r in ok if r.json["data"]["labels"]["topic"] == topic] == order
        heard: dict[str, list[str]] = defaultdict(list)
        for r in ok:
            for a in r.json["data"]["alerts"]:
                if heard[a["alert_id"]][-1:] != [a["status"]]:
                    heard[a["alert_id"]].append(a["status"])
        assert dict(heard) == {a: ["open", "resolved"] for a in
                               ("alt_Macro_c1", "alt_Macro_c2", "alt_Earnings_c1", "alt_Earnings_c2")}
    assert len(receiver.requests) == len(receiver.accepted)   # nothing sent again once accepted


def test_slow_failing_and_rate_limited_receivers_do_not_hold_up_a_healthy_one(stack, server_store):
    """Real threads: a 10 s receiver, one answering 500 then 200, one answering 429 Retry-After: 2."""
    slow, failing, limited, healthy = Receiver(delay_s=10), Receiver(), Receiver(), Receiver()
    failing.respond(500, 500)
    limited.respond(429)
    limited.retry_after = "2"
    receivers = (slow, failing, limited, healthy)
    settings = _settings(stack, webhook_backoff_s=0.2, alert_tick_s=0.05, webhook_timeout_s=15.0)
    d = Dispatcher(settings, _rules([r.url for r in receivers], group_wait_s=0), AlertRepo(server_store))
    d.start()
    try:
        d.submit([AlertEvent("opened", _alert(t, "c1", "open", time.time())) for t in ("Macro", "Earnings", "Rates")])
        healthy.wait_for(lambda r: len(r.accepted) == 3, timeout=8)
        assert slow.requests == [], "the healthy receiver had everything before the slow one answered once"
        limited.wait_for(lambda r: len(r.accepted) == 3, timeout=10)
        failing.wait_for(lambda r: len(r.accepted) == 3, timeout=10)
        slow.wait_for(lambda r: len(r.accepted) == 3, timeout=30)
    finally:
        d.stop()
        for r in receivers:
            r.stop()
    stamps = [int(r.headers["webhook-timestamp"]) for r in limited.requests]
    first_429 = limited.requests[0]
    retried = next(r for r in limited.requests[1:] if r.headers["webhook-id"] == first_429.headers["webhook-id"])
    assert int(retried.headers["webhook-timestamp"]) - stamps[0] >= 2   # Retry-After: 2 honoured
    assert [r.status for r in failing.requests].count(500) == 2
    assert len(slow.requests) == len(slow.accepted) == 3   # 10 s answers fit the 15 s timeout: no retries


def test_redrive_cli_lists_and_queues_dead_deliveries(stack, server_store):
    receiver = Receiver()
    receiver.respond(410)   # not retryable: dead at once
    settings = _settings(stack)
    clock = FakeClock(time.time())
    repo = AlertRepo(server_store)
    d = Dispatcher(settings, _rules([receiver.url], group_wait_s=0), repo, clock=clock)
    try:
        d.submit([AlertEvent("opened", _alert("Macro", "c1", "open", clock()))])
        d.run_once()
        (dead,) = repo.deliveries("dead")

        def cli(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([*CLI, "alerts", "redrive", *args], env=_env(settings), capture_output=True,
                                  text=True, timeout=120)

        listed = cli()
        assert listed.returncode == 0 and dead["delivery_id"] in listed.stdout and "HTTP 410" in listed.stdout
        assert "1 dead deliveries" in listed.stdout
        missing = cli("msg_nope")
        assert missing.returncode == 1 and "msg_nope (no such delivery)" in missing.stderr
        queued = cli("--all", "--url", receiver.url)
        assert queued.returncode == 0 and "queued 1 dead deliveries" in queued.stdout, queued.stderr
        assert [r["status"] for r in repo.deliveries(None)] == ["redrive"]
        clock.advance(REDRIVE_CHECK_S)
        d.run_once()
    finally:
        d.stop()
        receiver.stop()
    assert [r.status for r in receiver.requests] == [410, 200]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {dead["delivery_id"]}
    assert [(r["status"], r["attempts"]) for r in repo.deliveries(None)] == [("delivered", 1)]


def test_secret_is_generated_per_install_and_the_dev_value_is_refused_off_loopback(tmp_path):
    env = _env(Settings(home=tmp_path / "home"))
    first = subprocess.run([*CLI, "alerts", "secret"], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    path = tmp_path / "home" / "secrets" / "webhook_secret"
    assert first.stdout.strip() == path.read_text().strip() and first.stdout.startswith("whsec_")
    assert str(path) in first.stderr and stat.S_IMODE(path.stat().st_mode) == 0o600
    again = subprocess.run([*CLI, "alerts", "secret"], env=env, capture_output=True, text=True, timeout=60)
    assert again.stdout == first.stdout

    local = Receiver(secret=first.stdout.strip())   # a receiver configured with this install's secret
    try:
        sent = subprocess.run([*CLI, "alerts", "test-webhook", local.url], env=env, capture_output=True, text=True,
                              timeout=60)
        assert sent.returncode == 0 and local.requests[0].verified, sent.stderr
    finally:
        local.stop()
    dev = {**env, "RISKPULSE_WEBHOOK_SECRET": DEV_SECRET}
    refused = subprocess.run([*CLI, "alerts", "test-webhook", "http://192.0.2.10/hook"], env=dev,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "development secret" in refused.stderr and "RISKPULSE_WEBHOOK_SECRET" in refused.stderr


def test_alerts_run_refuses_to_start_with_the_dev_secret_and_a_remote_receiver(stack, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: r\n    key: [topic]\n    window_s: 60\n    webhooks:\n"
                     "      - url: https://hooks.bank.example/riskpulse\n")
    env = _env(stack.model_copy(update={"rules_file": rules, "webhook_secret": None}),
               RISKPULSE_WEBHOOK_SECRET=DEV_SECRET)
    done = subprocess.run([*CLI, "alerts", "run"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "https://hooks.bank.example/riskpulse" in done.stderr and "RISKPULSE_WEBHOOK_SECRET" in done.stderr
