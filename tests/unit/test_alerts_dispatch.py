"""Grouping timers and the outbox's retry / dead-letter / restart behaviour, with a fake repo."""

import json
import random

import httpx

from riskpulse.streams.alerts.detector import Alert, AlertEvent
from riskpulse.streams.alerts.dispatcher import Dispatcher
from riskpulse.streams.alerts.notify import Grouper, group_key, render
from riskpulse.streams.alerts.rules import Rule, RuleSet, WebhookTarget
from riskpulse.streams.alerts.webhooks import verify
from riskpulse.core.settings import Settings
from tests.fakes import FakeClock

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL = "http://receiver.test/hook"


def _rules(**over):
    base = dict(name="chan", key=("topic", "channel"), group_by=("topic",), window_s=10, group_wait_s=5,
                group_interval_s=20, repeat_interval_s=100, webhooks=(WebhookTarget(url=URL),))
    base.update(over)
    return RuleSet(rules=(Rule(**base),))


def _alert(channel, status="open", topic="Macro", z=5.0):
    return Alert(alert_id=f"alt_{topic}_{channel}", rule="chan", key=json.dumps({"topic": topic, "channel": channel}),
                 labels={"topic": topic, "channel": channel}, severity="warning", status=status, opened_at=100,
                 updated_at=100, resolved_at=None if status == "open" else 150, window_start=90, window_end=100,
                 count=40, negatives=30, share=0.75, baseline_mean=0.1, baseline_std=0.05, z=z, peak_z=z, windows=1,
                 examples=({"id": "m1", "text": "bad"},), model_versions=("v1",))


def test_storm_over_twenty_channels_is_one_notification():
    g = Grouper(_rules())
    for i in range(20):
        g.add(_alert(f"c{i}"), now=1000 + i * 0.1)
    g.add(_alert("c0", topic="Earnings"), now=1001)
    assert g.due(1004.9) == []
    out = g.due(1005.0)
    assert [(n.group_key, len(n.alerts), n.status) for n in out] == [('chan{"topic": "Macro"}', 20, "firing")]
    out2 = g.due(1006.0)
    assert [(n.group_key, len(n.alerts)) for n in out2] == [('chan{"topic": "Earnings"}', 1)]


def test_group_interval_repeat_resolve_and_ack():
    g = Grouper(_rules())
    g.add(_alert("a"), 0)
    assert len(g.due(5)) == 1
    g.add(_alert("b"), 6)                      # a change: waits for group_interval after the last send
    assert g.due(24) == []
    assert [len(n.alerts) for n in g.due(25)] == [2]
    g.add(_alert("a", z=9.0), 30)              # evidence update: no new notification
    assert g.due(40) == []
    assert g.due(124) == [] and len(g.due(125)) == 1  # repeat_interval after the last send
    assert g.due(300, acked={"alt_Macro_a", "alt_Macro_b"}) == []  # all acknowledged: no repeats
    g.add(_alert("a", "resolved"), 310)
    g.add(_alert("b", "resolved"), 310)
    resolved = g.due(330)
    assert [(n.status, {a.status for a in n.alerts}) for n in resolved] == [("resolved", {"resolved"})]
    assert g.groups == {}


def test_send_resolved_false_stays_quiet_on_resolve():
    g = Grouper(_rules(send_resolved=False))
    g.add(_alert("a"), 0)
    assert len(g.due(5)) == 1
    g.add(_alert("a", "resolved"), 10)
    assert g.due(1000) == [] and g.groups == {}


def test_render_formats():
    g = Grouper(_rules())
    g.add(_alert("a"), 0)
    (n,) = g.due(5)
    body = json.loads(render(n, "standard", 5))
    assert body["type"] == "riskpulse.alert.firing"
    assert body["data"]["labels"] == {"topic": "Macro"}
    assert body["data"]["alerts"][0]["window_end"] == "1970-01-01T00:01:40Z"
    assert "75% negative" in json.loads(render(n, "slack", 5))["text"]


class FakeRepo:
    def __init__(self):
        self.outbox = {}
        self.alerts = {}

    def save_deliveries(self, rows):
        for r in rows:
            self.outbox[r["delivery_id"]] = dict(r)

    def deliveries(self, status=None, limit=1000):
        return [dict(r) for r in self.outbox.values() if status in (None, r["status"])]

    def last_notified(self):
        latest = {}
        for r in sorted(self.outbox.values(), key=lambda r: r["seq"]):
            latest[r["group_key"]] = json.loads(r["alert_states"])
        return latest

    def recent_alerts(self, since):
        return list(self.alerts.values())

    def acked_ids(self):
        return set()


def _dispatcher(repo, handler, clock, **settings):
    s = Settings(webhook_secret=SECRET, webhook_backoff_s=1, webhook_max_attempts=4, **settings)
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return Dispatcher(s, _rules(group_wait_s=0), repo, client=client, clock=clock, rng=random.Random(0))


def test_retries_5xx_then_delivers_once_with_one_id():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(500 if len(calls) <= 3 else 204)

    repo, clock = FakeRepo(), FakeClock(1000.0)
    d = _dispatcher(repo, handler, clock)
    d.submit([AlertEvent("opened", _alert("a"))])
    for _ in range(40):
        d.run_once()
        clock.advance(0.5)
    assert len(calls) == 4
    assert len({c.headers["webhook-id"] for c in calls}) == 1
    for c in calls:
        verify(SECRET, c.headers, c.content, now=float(c.headers["webhook-timestamp"]))
    (row,) = repo.outbox.values()
    assert (row["status"], row["attempts"]) == ("delivered", 4)


def test_dead_letter_after_budget_keeps_last_error():
    def handler(request):
        raise httpx.ConnectError("connection refused", request=request)

    repo, clock = FakeRepo(), FakeClock(1000.0)
    d = _dispatcher(repo, handler, clock)
    d.submit([AlertEvent("opened", _alert("a"))])
    for _ in range(60):
        d.run_once()
        clock.advance(1)
    (row,) = repo.outbox.values()
    assert (row["status"], row["attempts"]) == ("dead", 4)
    assert "connection refused" in row["last_error"]
    assert d.pending == {}


def test_restart_resumes_pending_and_unnotified_alerts():
    calls = []
    repo, clock = FakeRepo(), FakeClock(1000.0)
    # 1) a delivery already in the outbox, 2) an alert detected but never notified
    first = _dispatcher(repo, lambda r: httpx.Response(503), clock)
    first.submit([AlertEvent("opened", _alert("a"))])
    first.run_once()
    assert [r["status"] for r in repo.outbox.values()] == ["pending"]
    repo.alerts["alt_Earnings_x"] = _alert("x", topic="Earnings")
    repo.alerts["alt_Macro_a"] = _alert("a")

    def ok(request):
        calls.append(request)
        return httpx.Response(200)

    second = _dispatcher(repo, ok, clock)
    second.restore()
    for _ in range(10):
        clock.advance(1)
        second.run_once()
    groups = sorted(json.loads(c.content)["data"]["group_key"] for c in calls)
    assert groups == ['chan{"topic": "Earnings"}', 'chan{"topic": "Macro"}']   # Macro not notified twice
    assert {r["status"] for r in repo.outbox.values()} == {"delivered"}
    assert group_key(_rules().rules[0], _alert("a")) == 'chan{"topic": "Macro"}'
