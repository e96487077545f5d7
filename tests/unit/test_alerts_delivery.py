"""Webhook delivery over hours: a receiver down for an hour (fake clock), Retry-After, one lane per
receiver (real threads), order per group, and the operator's redrive."""

import collections
import json
import random
import threading
import time

import httpx

from riskpulse.core.settings import Settings
from riskpulse.streams.alerts.detector import Alert, AlertEvent
from riskpulse.streams.alerts.dispatcher import REDRIVE_CHECK_S, Dispatcher
from riskpulse.streams.alerts.rules import Rule, RuleSet, WebhookTarget
from tests.fakes import FakeAlertRepo, FakeClock

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DOWN, UP = "http://down.test/hook", "http://up.test/hook"


def _rules(urls=(DOWN, UP), **over):
    base = dict(name="chan", key=("topic", "channel"), group_by=("topic",), window_s=10, group_wait_s=5,
                group_interval_s=20, repeat_interval_s=100_000, webhooks=tuple(WebhookTarget(url=u) for u in urls))
    return RuleSet(rules=(Rule(**{**base, **over}),))


def _alert(topic, channel, status="open", z=5.0, at=100.0):
    return Alert(alert_id=f"alt_{topic}_{channel}", rule="chan", key=json.dumps({"topic": topic, "channel": channel}),
                 labels={"topic": topic, "channel": channel}, severity="warning", status=status, opened_at=at,
                 updated_at=at, resolved_at=None if status == "open" else at, window_start=at - 10, window_end=at,
                 count=40, negatives=30, share=0.75, baseline_mean=0.1, baseline_std=0.05, z=z, peak_z=z, windows=1,
                 examples=(), model_versions=("v1",))


def _settings(**over):
    return Settings(webhook_secret=SECRET, webhook_backoff_s=2, webhook_backoff_cap_s=300, **over)


class Receivers:
    """Scripted receivers behind one MockTransport; records what each accepted, in arrival order."""

    def __init__(self, clock):
        self.clock = clock
        self.down_until: dict[str, float] = {}
        self.accepted: dict[str, list[dict]] = collections.defaultdict(list)
        self.tries = collections.Counter()

    def __call__(self, request):
        url = str(request.url)
        self.tries[url] += 1
        if self.clock() < self.down_until.get(url, 0):
            raise httpx.ConnectError("connection refused", request=request)
        body = json.loads(request.content)
        self.accepted[url].append({"id": request.headers["webhook-id"], "at": self.clock(), "body": body})
        return httpx.Response(200)


def _dispatcher(repo, clock, receivers, rules=None, **settings):
    client = httpx.Client(transport=httpx.MockTransport(receivers))
    return Dispatcher(_settings(**settings), rules or _rules(), repo, client=client, clock=clock, rng=random.Random(3))


def test_receiver_down_for_an_hour_gets_every_notification_once_in_order():
    """Alerts open, update and resolve across two groups while one receiver is down for an hour;
    the service restarts mid-outage. Afterwards: each notification once, in order per group."""
    clock, repo = FakeClock(10_000.0), FakeAlertRepo()
    receivers = Receivers(clock)
    receivers.down_until[DOWN] = clock() + 3600
    timeline = {
        0: [("opened", "Macro", "c1", "open"), ("opened", "Earnings", "c1", "open")],
        100: [("updated", "Macro", "c1", "open")],
        200: [("opened", "Macro", "c2", "open")],
        600: [("resolved", "Macro", "c1", "resolved")],
        1200: [("resolved", "Earnings", "c1", "resolved"), ("opened", "Earnings", "c2", "open")],
        1201: [("resolved", "Earnings", "c2", "resolved")],    # opens and resolves within group_wait
        2000: [("resolved", "Macro", "c2", "resolved")],
    }
    start = clock()
    d = _dispatcher(repo, clock, receivers)
    while clock() < start + 3600 + 900:
        offset = round(clock() - start)
        for kind, topic, channel, status in timeline.get(offset, []):
            d.submit([AlertEvent(kind, _alert(topic, channel, status, at=clock()))])
        if offset == 1800:  # the alerts service restarts mid-outage: everything comes back from the outbox
            d = _dispatcher(repo, clock, receivers)
            d.restore()
        d.run_once()
        clock.advance(1)

    rows = sorted(repo.outbox.values(), key=lambda r: r["seq"])
    assert {r["status"] for r in rows} == {"delivered"}
    for url in (DOWN, UP):
        got = receivers.accepted[url]
        ids = [g["id"] for g in got]
        assert len(ids) == len(set(ids)), f"{url} accepted a notification twice"
        assert set(ids) == {r["delivery_id"] for r in rows if r["url"] == url}
        for group in ("Macro", "Earnings"):
            made = [r["delivery_id"] for r in rows if r["url"] == url and json.loads(r["group_key"][4:])["topic"] == group]
            assert [g["id"] for g in got if g["body"]["data"]["labels"]["topic"] == group] == made
        heard: dict[str, list[str]] = collections.defaultdict(list)
        for g in got:
            for a in g["body"]["data"]["alerts"]:
                if not heard[a["alert_id"]] or heard[a["alert_id"]][-1] != a["status"]:
                    heard[a["alert_id"]].append(a["status"])
        assert all(statuses == ["open", "resolved"] for statuses in heard.values()), dict(heard)
        assert len(heard) == 4
    # the healthy receiver was never held up; the other caught up within one capped backoff of recovery
    assert max(g["at"] - r["created_at"].timestamp() for g in receivers.accepted[UP]
               for r in rows if r["delivery_id"] == g["id"]) <= 1
    assert min(g["at"] for g in receivers.accepted[DOWN]) <= start + 3600 + 300
    assert receivers.tries[DOWN] < 200   # backoff, not a retry storm


def test_retry_after_is_honoured():
    clock, repo, tries = FakeClock(1000.0), FakeAlertRepo(), []

    def handler(request):
        tries.append(clock())
        if len(tries) == 1:
            return httpx.Response(429, headers={"retry-after": "120"})
        if len(tries) == 2:
            when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 45))
            return httpx.Response(503, headers={"retry-after": when})
        return httpx.Response(200)

    d = Dispatcher(_settings(), _rules(urls=(UP,), group_wait_s=0), repo,
                   client=httpx.Client(transport=httpx.MockTransport(handler)), clock=clock)
    d.submit([AlertEvent("opened", _alert("Macro", "c1"))])
    for _ in range(300):
        d.run_once()
        clock.advance(1)
    assert tries[1] - tries[0] == 120
    assert 40 <= tries[2] - tries[1] <= 46   # an HTTP date, at whole-second resolution, against the wall clock
    assert [r["status"] for r in repo.outbox.values()] == ["delivered"]


def test_a_failing_group_does_not_hold_up_other_groups_of_the_same_receiver():
    clock, repo = FakeClock(1000.0), FakeAlertRepo()
    sent = []

    def handler(request):
        body = json.loads(request.content)
        sent.append((body["data"]["labels"]["topic"], body["type"]))
        return httpx.Response(500 if body["data"]["labels"]["topic"] == "Macro" else 200)

    d = Dispatcher(_settings(), _rules(urls=(UP,), group_wait_s=0, group_interval_s=1), repo,
                   client=httpx.Client(transport=httpx.MockTransport(handler)), clock=clock, rng=random.Random(1))
    d.submit([AlertEvent("opened", _alert("Macro", "c1")), AlertEvent("opened", _alert("Earnings", "c1"))])
    d.run_once()
    clock.advance(2)
    d.submit([AlertEvent("resolved", _alert("Macro", "c1", "resolved")),
              AlertEvent("resolved", _alert("Earnings", "c1", "resolved"))])
    for _ in range(30):
        d.run_once()
        clock.advance(1)
    assert ("Earnings", "riskpulse.alert.resolved") in sent            # the healthy group went on
    assert ("Macro", "riskpulse.alert.resolved") not in sent           # Macro's resolve waits behind its firing
    assert {r["status"] for r in repo.outbox.values() if "Macro" in r["group_key"]} == {"pending"}


def test_redrive_sends_a_dead_delivery_again_under_its_id():
    clock, repo, answers, got = FakeClock(1000.0), FakeAlertRepo(), [400], []

    def handler(request):
        got.append(request.headers["webhook-id"])
        return httpx.Response(answers.pop(0) if answers else 200)

    d = Dispatcher(_settings(), _rules(urls=(UP,), group_wait_s=0), repo,
                   client=httpx.Client(transport=httpx.MockTransport(handler)), clock=clock)
    d.submit([AlertEvent("opened", _alert("Macro", "c1"))])
    d.run_once()
    (dead,) = repo.deliveries("dead")
    assert [r["delivery_id"] for r in repo.redrive(url=UP)] == [dead["delivery_id"]]
    assert repo.deliveries("redrive") and d.pending == {}
    clock.advance(REDRIVE_CHECK_S)
    d.run_once()
    (row,) = repo.outbox.values()
    assert (row["status"], row["attempts"]) == ("delivered", 1)
    assert got == [dead["delivery_id"]] * 2
    assert repo.redrive() == []   # nothing dead any more


def test_slow_receiver_holds_up_only_its_own_lane():
    """Real threads: one receiver hangs; the other gets all its notifications meanwhile, and the
    hanging one never has two requests of one group in flight."""
    release = threading.Event()
    lock = threading.Lock()
    fast, in_flight, most_per_group = [], collections.Counter(), collections.Counter()

    def handler(request):
        topic = json.loads(request.content)["data"]["labels"]["topic"]
        if request.url.host == "up.test":
            with lock:
                fast.append(topic)
            return httpx.Response(200)
        with lock:
            in_flight[topic] += 1
            most_per_group[topic] = max(most_per_group[topic], in_flight[topic])
        release.wait(10)
        with lock:
            in_flight[topic] -= 1
        return httpx.Response(200)

    repo = FakeAlertRepo()
    d = Dispatcher(_settings(alert_tick_s=0.02, webhook_concurrency=3),
                   _rules(urls=(DOWN, UP), group_wait_s=0, group_interval_s=0), repo,
                   client=httpx.Client(transport=httpx.MockTransport(handler)))
    d.start()
    try:
        topics = [f"T{i}" for i in range(6)]
        d.submit([AlertEvent("opened", _alert(t, "c1")) for t in topics])
        _wait(lambda: len(fast) == 6, "the fast receiver got its six notifications")
        d.submit([AlertEvent("resolved", _alert(t, "c1", "resolved")) for t in topics])
        _wait(lambda: len(fast) == 12, "the fast receiver got the resolutions too")
        with lock:
            assert sum(in_flight.values()) == 3   # the slow lane: three requests hanging, the rest queued
        release.set()
        _wait(lambda: {r["status"] for r in repo.outbox.values()} == {"delivered"}, "the slow receiver caught up")
    finally:
        release.set()
        d.stop()
    assert max(most_per_group.values()) == 1


def _wait(predicate, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.01)
