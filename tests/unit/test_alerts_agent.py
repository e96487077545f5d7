"""The agent's plain parts: watermarks over partitions, ack timing, the service's commits."""

from datetime import datetime, timezone

from riskpulse.streams.alerts.agent import AlertService, PartitionWatermarks, settle_time
from riskpulse.streams.alerts.detector import KeyState
from riskpulse.streams.alerts.rules import Rule, RuleSet
from riskpulse.core.schema import ScoredMessage
from riskpulse.core.settings import Settings
from tests.fakes import FakeClock

RULES = RuleSet(rules=(
    Rule(name="a", key=("topic",), window_s=10, grace_s=1, min_volume=5, min_baseline_windows=2),
    Rule(name="b", key=("topic", "channel"), window_s=30, grace_s=2, min_volume=5, min_baseline_windows=2),
))


def test_slowest_active_partition_sets_the_watermark():
    wm = PartitionWatermarks(idle_s=5)
    wm.see(0, 100.0, now=0)
    wm.see(1, 40.0, now=0)
    assert wm.current(now=1) == 40.0
    wm.see(1, 30.0, now=2)           # out of order within a partition: never goes back
    assert wm.current(now=2) == 40.0
    assert wm.current(now=6) == 40.0     # partition 0 idle, partition 1 still active
    assert wm.current(now=8) == 100.0    # all idle: the latest seen anywhere
    assert PartitionWatermarks(5).current(0) == 0.0


def test_idle_partition_stops_holding_back():
    wm = PartitionWatermarks(idle_s=5)
    wm.see(0, 100.0, now=0)
    wm.see(1, 40.0, now=0)
    wm.see(0, 120.0, now=6)
    assert wm.current(now=6) == 120.0


def test_settle_time_is_the_last_window_close_over_rules():
    assert settle_time(RULES, 12.0) == max(20 + 1, 30 + 2)
    assert settle_time(RULES, 31.0) == max(40 + 1, 60 + 2)


class FlakyRepo:
    def __init__(self, failures=0):
        self.failures = failures
        self.alerts, self.states = [], []

    def load_states(self):
        return {}

    def save_alerts(self, alerts):
        alerts = list(alerts)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("clickhouse down")
        self.alerts += alerts

    def save_states(self, states):
        self.states += list(states)


def _msg(i, ts, topic="Macro", negative=False):
    return ScoredMessage(id=f"m{i}", source="news", channel="c", ts=datetime.fromtimestamp(ts, timezone.utc),
                         text="t", topic=topic, topic_prob=1, sentiment="negative" if negative else "neutral",
                         sentiment_prob=1, model_version="v1")


def test_service_stores_alerts_and_state_and_retries_the_store(monkeypatch):
    monkeypatch.setattr("riskpulse.core.retry.FIRST_S", 0.0)  # retry at once: no backoff sleeps
    repo = FlakyRepo(failures=2)
    service = AlertService(Settings(), RuleSet(rules=RULES.rules[:1]), repo, dispatcher=None)
    batch = []
    for w in range(4):
        for i in range(10):
            batch.append((i % 2, _msg(f"{w}-{i}", 1000 + w * 10 + i, negative=(w == 3 or i == 0))))
    batch.append((0, _msg("x0", 1045)))
    batch.append((1, _msg("x1", 1045)))
    events = service.observe(batch)
    assert [e.kind for e in events] == ["opened"]
    assert [a.alert_id for a in repo.alerts] == [events[0].alert.alert_id]
    assert {(r, k) for r, k, _ in repo.states} == {("a", '{"topic": "Macro"}')}
    assert repo.failures == 0   # the failed writes were retried, not dropped


def test_tick_advances_event_time_only_after_idle():
    repo, clock = FlakyRepo(), FakeClock(500.0)
    service = AlertService(Settings(alert_idle_advance_s=5), RuleSet(rules=RULES.rules[:1]), repo, dispatcher=None,
                           clock=clock)
    service.observe([(0, _msg(1, 1000.0))])
    assert service.tick() == [] and service.detector.watermark == 1000.0
    clock.advance(4)  # quiet, but not for alert_idle_advance_s yet
    assert service.tick() == [] and service.detector.watermark == 1000.0
    clock.advance(16)  # quiet for 20 s
    service.tick()
    assert service.detector.watermark == 1020.0
    assert service.detector.states[("a", '{"topic": "Macro"}')].windows_seen == 1


def test_one_member_gets_every_partition_and_keeps_them():
    from faust.assignor.client_assignment import ClientAssignment

    from riskpulse.streams.alerts.standby import active_member, one_active

    assert active_member({"b-2": False, "a-1": False}) == "a-1"
    assert active_member({"a-1": False, "b-2": True}) == "b-2"      # the one already active keeps the role
    split = {"a-1": ClientAssignment(actives={"scored": [0, 2, 4], "leader": [0]}, standbys={}),
             "b-2": ClientAssignment(actives={"scored": [1, 3, 5]}, standbys={})}
    moved = one_active(split, "b-2")
    assert moved["b-2"].actives == {"scored": [0, 1, 2, 3, 4, 5], "leader": [0]}
    assert moved["a-1"].actives == {}


class StartedDispatcher:
    def __init__(self):
        self.started = self.stopped = 0
        self.events = []

    def start(self):
        self.started += 1

    def stop(self):
        self.stopped += 1

    def submit(self, events):
        self.events += events


class StoredStates(FlakyRepo):
    def load_states(self):
        return {(rule, key): state for rule, key, state in self.states}


def test_standby_service_neither_ticks_nor_notifies_until_active():
    repo, clock = StoredStates(), FakeClock(500.0)
    service = AlertService(Settings(alert_idle_advance_s=5), RuleSet(rules=RULES.rules[:1]), repo, dispatcher=None,
                           clock=clock)
    service.observe([(0, _msg(1, 1000.0))])
    service.deactivate()
    clock.advance(60)
    assert service.tick() == [] and service.detector.watermark == 1000.0   # a standby moves no event time
    repo.states = [("a", '{"topic": "Macro"}', KeyState(windows_seen=7, last_window_end=1010.0))]   # the other's
    dispatcher = StartedDispatcher()
    service.activate(dispatcher)
    assert dispatcher.started == 1 and service.detector.watermark == 1010.0   # state as the store has it now
    assert service.detector.states[("a", '{"topic": "Macro"}')].windows_seen == 7
    service.deactivate()
    assert dispatcher.stopped == 1 and service.dispatcher is None


class StallingRepo(FlakyRepo):
    """A store whose writes take ``stall_s`` of the service's clock (ClickHouse down, then back)."""

    def __init__(self, clock, stall_s):
        super().__init__()
        self.clock, self.stall_s = clock, stall_s

    def save_alerts(self, alerts):
        self.clock.advance(self.stall_s)
        super().save_alerts(alerts)


def test_time_spent_waiting_on_the_store_is_not_quiet_time():
    clock = FakeClock(500.0)
    repo = StallingRepo(clock, stall_s=60.0)
    service = AlertService(Settings(alert_idle_advance_s=5), RuleSet(rules=RULES.rules[:1]), repo, dispatcher=None,
                           clock=clock)
    service.observe([(0, _msg(1, 1000.0)), (1, _msg(2, 1000.0))])  # the commit waits 60 s for the store
    repo.stall_s = 0.0
    assert service.tick() == [] and service.detector.watermark == 1000.0, "the outage must not close windows"
    clock.advance(3)
    service.observe([(0, _msg(3, 1003.0))])  # partition 1 was read 3 s ago, not 63: it still holds event time back
    assert service.detector.watermark == 1000.0
    clock.advance(20)  # now truly quiet
    service.tick()
    assert service.detector.watermark > 1000.0


def test_an_assigned_partition_not_read_yet_holds_event_time_back():
    wm = PartitionWatermarks(idle_s=5)
    wm.expect([0, 1])
    wm.see(0, 100.0, now=30)                     # the first record comes long after the assignment
    assert wm.current(now=31) == -float("inf")   # partition 1 may hold records from before 100
    wm.see(1, 40.0, now=32)
    assert wm.current(now=32) == 40.0
    wm.expect([0, 1, 2])                         # a partition added: the two read keep their times
    wm.see(0, 110.0, now=33)
    assert wm.current(now=34) == -float("inf")
    wm.see(1, 45.0, now=37)
    assert wm.current(now=38.5) == 45.0          # the others arrived for idle_s without partition 2: empty


def test_a_backlog_read_one_partition_after_another_loses_nothing():
    """One worker batch scored a whole backlog, partition by partition: the first partition's records reach the
    alerts service before any of the second's. Their windows must wait for the second partition, or all of its
    records would be dropped as late (issue 14's scenario, with 4,096-message worker batches)."""
    clock = FakeClock(500.0)
    service = AlertService(Settings(alert_idle_advance_s=5), RuleSet(rules=RULES.rules[:1]), FlakyRepo(),
                           dispatcher=None, clock=clock)
    service.expect([0, 1])
    first = [(0, _msg(f"a{i}", 1000 + i)) for i in range(0, 60, 2)]
    second = [(1, _msg(f"b{i}", 1001 + i)) for i in range(0, 60, 2)]
    assert service.observe(first) == [] and service.detector.late == 0
    clock.advance(1)
    service.observe(second)
    assert service.detector.late == 0
    state = service.detector.states[("a", '{"topic": "Macro"}')]
    assert state.windows_seen == 5    # windows 1000..1040 closed (watermark 1058), with both partitions
    clock.advance(20)
    service.tick()                    # quiet: event time follows the clock and closes the last windows
    assert state.windows_seen == 6 and service.detector.late == 0


def test_tick_lets_event_time_move_once_an_empty_partition_goes_idle():
    clock = FakeClock(500.0)
    service = AlertService(Settings(alert_idle_advance_s=5), RuleSet(rules=RULES.rules[:1]), FlakyRepo(),
                           dispatcher=None, clock=clock)
    service.expect([0, 1])
    clock.advance(30)                          # the worker scores its first batch
    service.observe([(0, _msg(i, 1000 + i)) for i in range(30)])
    assert service.detector.watermark == 0.0   # partition 1 not read yet
    clock.advance(5)
    service.tick()
    assert service.detector.watermark == 1029.0


def test_records_after_their_window_closed_are_counted_and_reported(caplog):
    from riskpulse.streams.ops import metrics

    clock = FakeClock(500.0)
    service = AlertService(Settings(alert_idle_advance_s=5), RuleSet(rules=RULES.rules[:1]), FlakyRepo(),
                           dispatcher=None, clock=clock)
    service.observe([(0, _msg(i, 1000 + i)) for i in range(30)])   # event time 1029: windows up to 1010 closed
    before = metrics.ALERT_LATE._value.get()
    with caplog.at_level("WARNING", logger="riskpulse.alerts"):
        service.observe([(0, _msg("old1", 1001)), (0, _msg("old2", 1002)), (0, _msg("new", 1029.5))])
        service.observe([(0, _msg("old3", 1003))])   # within the minute: counted, not warned again
    assert service.detector.late == 3 and metrics.ALERT_LATE._value.get() - before == 3
    warnings = [r.getMessage() for r in caplog.records if "after their windows closed" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("2 scored records"), warnings
