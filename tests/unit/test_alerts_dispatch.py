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
from tests.fakes import FakeAlertRepo, FakeClock

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


def test_alert_opened_and_resolved_within_group_wait_is_heard_firing_first():
    """The issue's replay: open and resolve half a second apart, before the group's first flush."""
    for send_resolved in (False, True):
        g = Grouper(_rules(send_resolved=send_resolved, group_wait_s=1, group_interval_s=20))
        g.add(_alert("a"), 1000.0)
        g.add(_alert("a", "resolved"), 1000.5)
        (first,) = g.due(1001.0)
        assert first.status == "firing"
        (heard,) = first.alerts
        assert (heard.status, heard.resolved_at, heard.window_start, heard.window_end) == ("open", None, 90, 100)
        assert json.loads(render(first, "standard", 1001))["data"]["alerts"][0]["window_end"] == "1970-01-01T00:01:40Z"
        assert g.due(1020.9) == []
        later = g.due(1021.0)
        if send_resolved:
            assert [(n.status, [a.status for a in n.alerts]) for n in later] == [("resolved", ["resolved"])]
        else:
            assert later == []
        assert g.groups == {}


def test_resolved_alert_never_notified_is_owed_firing_after_restore():
    """A restart that finds an alert resolved and never notified announces it firing, then resolved."""
    g = Grouper(_rules(group_wait_s=0))
    heard = {"alt_Macro_b": "open", "alt_Macro_c": "resolved"}   # what the outbox says receivers heard
    for channel in "abc":
        g.add(_alert(channel, "resolved"), 0, notified=heard)
    (first,) = g.due(0)
    assert {a.alert_id: a.status for a in first.alerts} == {"alt_Macro_a": "open", "alt_Macro_b": "resolved"}
    assert first.status == "firing"
    (second,) = g.due(20)
    assert {a.alert_id: a.status for a in second.alerts} == {"alt_Macro_a": "resolved"}
    assert g.due(1000) == [] and g.groups == {}


def _dispatcher(repo, handler, clock, rules=None, **settings):
    s = Settings(webhook_secret=SECRET, webhook_backoff_s=1, webhook_retry_horizon_s=60, **settings)
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return Dispatcher(s, rules or _rules(group_wait_s=0), repo, client=client, clock=clock, rng=random.Random(0))


def test_retries_5xx_then_delivers_once_with_one_id():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(500 if len(calls) <= 3 else 204)

    repo, clock = FakeAlertRepo(), FakeClock(1000.0)
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


def test_dead_letter_at_the_retry_horizon_keeps_last_error():
    attempts_at = []

    def handler(request):
        attempts_at.append(clock())
        raise httpx.ConnectError("connection refused", request=request)

    repo, clock = FakeAlertRepo(), FakeClock(1000.0)
    d = _dispatcher(repo, handler, clock, webhook_backoff_cap_s=8)
    d.submit([AlertEvent("opened", _alert("a"))])
    for _ in range(300):
        d.run_once()
        clock.advance(0.25)
    (row,) = repo.outbox.values()
    assert row["status"] == "dead" and "connection refused" in row["last_error"]
    assert attempts_at[-1] == 1060.0                       # the last try lands on the 60 s horizon
    assert max(b - a for a, b in zip(attempts_at, attempts_at[1:])) <= 8.25   # waits capped
    assert row["attempts"] == len(attempts_at) > 8         # more than the old fixed budget
    assert d.pending == {}


def test_non_retryable_answer_dead_letters_at_once():
    repo, clock = FakeAlertRepo(), FakeClock(1000.0)
    d = _dispatcher(repo, lambda r: httpx.Response(400, text="bad payload"), clock)
    d.submit([AlertEvent("opened", _alert("a"))])
    d.run_once()
    (row,) = repo.outbox.values()
    assert (row["status"], row["attempts"], row["last_error"]) == ("dead", 1, "HTTP 400: bad payload")


def test_restart_resumes_pending_and_unnotified_alerts():
    calls = []
    repo, clock = FakeAlertRepo(), FakeClock(1000.0)
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


def test_restart_does_not_renotify_an_alert_that_left_its_group():
    """Heard firing, resolved quietly (send_resolved false), then a restart: nothing more to say."""
    calls = []
    repo, clock = FakeAlertRepo(), FakeClock(1000.0)
    rules = _rules(group_wait_s=0, send_resolved=False)
    first = _dispatcher(repo, lambda r: calls.append(r) or httpx.Response(200), clock, rules)
    first.submit([AlertEvent("opened", _alert("a")), AlertEvent("opened", _alert("b"))])
    first.run_once()
    first.submit([AlertEvent("resolved", _alert("a", "resolved"))])
    clock.advance(30)
    first.run_once()
    clock.advance(30)
    first.run_once()                                   # b still firing: a later notification without a
    repo.alerts = {"alt_Macro_a": _alert("a", "resolved"), "alt_Macro_b": _alert("b")}
    second = _dispatcher(repo, lambda r: calls.append(r) or httpx.Response(200), clock, rules)
    second.restore()
    for _ in range(5):
        clock.advance(10)
        second.run_once()
    assert len(calls) == 1


def test_store_outage_holds_new_notifications_until_stored(monkeypatch):
    monkeypatch.setattr("riskpulse.core.retry.FIRST_S", 0.0)
    repo, clock = FakeAlertRepo(), FakeClock(1000.0)
    d = _dispatcher(repo, lambda r: httpx.Response(200), clock)
    writes = []
    save = repo.save_deliveries

    def flaky(rows):
        writes.append(len(rows))
        if len(writes) <= 3:
            raise ConnectionError("clickhouse down")
        save(rows)

    repo.save_deliveries = flaky
    d.submit([AlertEvent("opened", _alert("a"))])
    d.run_once()
    (row,) = repo.outbox.values()
    assert row["status"] == "delivered" and writes[:4] == [1, 1, 1, 1]
