import json
import math
import random

import pytest

from riskpulse.streams.alerts.detector import Detector, KeyState, Observation, alert_id, effective_std, ewma_update
from riskpulse.streams.alerts.rules import Rule, RuleSet

W = 10.0
MACRO = json.dumps({"topic": "Macro"})


def _rules(**over) -> RuleSet:
    base = dict(name="r", key=("topic",), window_s=W, grace_s=1.0, threshold_z=3.0, min_volume=20,
                min_baseline_windows=3, cooldown_s=0)
    base.update(over)
    return RuleSet(rules=(Rule(**base),))


def _window(det, start, topic="Macro", n=40, neg=4, channel="c", seed=0):
    """n messages spread over one window, ``neg`` of them negative."""
    events = []
    for i in range(n):
        ts = start + (i + 0.5) * W / n
        obs = Observation(id=f"{topic}-{start}-{i}", ts=ts, topic=topic, source="news", channel=channel,
                          negative=i < neg, text=f"text {i}", model_version="v1")
        events += det.observe(obs)
    return events


def _run(det, starts, **kw):
    events = []
    for s in starts:
        events += _window(det, s, **kw)
    return events


def test_ewma_matches_direct_formula():
    xs = [0.1, 0.2, 0.15, 0.3]
    mean, var = xs[0], 0.0
    for x in xs[1:]:
        mean, var = ewma_update(mean, var, x, 0.5)
    # by hand: means 0.15, 0.15, 0.225; variances 0.0025, 0.00125, 0.00625
    assert mean == pytest.approx(0.225)
    assert var == pytest.approx(0.00625)


def test_effective_std_floors():
    rule = _rules().rules[0]
    assert effective_std(rule, 0.1, 0.0, 20) == pytest.approx(math.sqrt(0.09 / 20))
    assert effective_std(rule, 0.0, 0.0, 20) == rule.min_std
    assert effective_std(rule, 0.1, 0.04, 20) == pytest.approx(0.2)


def test_steady_mix_raises_nothing_and_learns_baseline():
    det = Detector(_rules())
    assert _run(det, [i * W for i in range(12)]) == []
    det.advance(13 * W + 2)
    state = det.states[("r", MACRO)]
    assert state.mean == pytest.approx(0.1)
    assert state.windows_seen == 12


def test_burst_opens_once_updates_then_resolves_with_evidence():
    det = Detector(_rules())
    assert _run(det, [i * W for i in range(6)]) == []
    burst = _run(det, [6 * W, 7 * W], neg=30)
    # window 6 closes once an event passes its end + grace (during window 7)
    assert [e.kind for e in burst] == ["opened"]
    alert = burst[0].alert
    assert alert.key == MACRO and alert.labels == {"topic": "Macro"}
    assert (alert.window_start, alert.window_end, alert.count, alert.negatives) == (60.0, 70.0, 40, 30)
    assert alert.share == pytest.approx(0.75) and alert.baseline_mean == pytest.approx(0.1)
    assert alert.z >= 3 and alert.status == "open"
    assert len(alert.examples) == 5 and alert.examples[0]["id"] == "Macro-60.0-0"
    assert alert.model_versions == ("v1",)
    assert alert.alert_id == alert_id("r", MACRO, 60.0)
    after = _run(det, [8 * W, 9 * W])
    assert [e.kind for e in after] == ["updated", "resolved"]
    assert after[0].alert.window_start == 70.0 and after[0].alert.windows == 2
    assert after[1].alert.status == "resolved" and after[1].alert.resolved_at == 90.0
    assert after[1].alert.alert_id == alert.alert_id


def test_other_keys_stay_quiet():
    det = Detector(_rules())
    events = []
    for i in range(10):
        events += _window(det, i * W, topic="Macro", neg=30 if i in (6, 7) else 4)
        events += _window(det, i * W, topic="Earnings", neg=4)
    assert {e.alert.key for e in events} == {MACRO}


def test_min_volume_and_baseline_gate():
    det2 = Detector(_rules())
    assert _run(det2, [0, W], neg=4) == []
    assert _run(det2, [2 * W, 3 * W], n=40, neg=35) == []  # only 2 baseline windows: not judged yet
    det3 = Detector(_rules())
    _run(det3, [i * W for i in range(5)])
    assert _run(det3, [5 * W, 6 * W], n=10, neg=10) == []  # 10 < min_volume


def test_cooldown_suppresses_a_new_episode():
    det = Detector(_rules(cooldown_s=100))
    _run(det, [i * W for i in range(5)])
    first = _run(det, [5 * W, 6 * W, 7 * W], neg=30)
    assert [e.kind for e in first] == ["opened", "updated"]
    ev = _run(det, [8 * W, 9 * W])
    assert [e.kind for e in ev] == ["updated", "resolved"]
    assert _run(det, [10 * W, 11 * W], neg=30) == []  # within cooldown (resolved at 90, until 190)
    det.advance(30 * W)
    _run(det, [30 * W + i * W for i in range(3)])
    again = _run(det, [33 * W, 34 * W], neg=30)
    assert [e.kind for e in again] == ["opened"]
    assert again[0].alert.alert_id != first[0].alert.alert_id


def test_quiet_key_resolves_when_its_messages_stop():
    det = Detector(_rules())
    _run(det, [i * W for i in range(5)])
    opened = _run(det, [5 * W], neg=30) + det.advance(6 * W + 1.5)
    assert [e.kind for e in opened] == ["opened"]
    assert [e.kind for e in det.advance(7 * W + 1.5)] == ["resolved"]


def test_late_messages_are_dropped_not_counted():
    det = Detector(_rules())
    _run(det, [0, W])
    det.advance(2 * W + 5)
    late = Observation(id="late", ts=1.0, topic="Macro", source="news", channel="c", negative=True)
    det.observe(late)
    assert det.late == 1


def test_where_filter_and_combined_key():
    rules = _rules(key=("topic", "channel"), where={"source": "customer"})
    det = Detector(rules)
    det.observe(Observation(id="1", ts=1, topic="T", source="news", channel="a", negative=True))
    det.observe(Observation(id="2", ts=1, topic="T", source="customer", channel="a", negative=True))
    assert list(det.states) == [("r", json.dumps({"topic": "T", "channel": "a"}))]


def test_state_round_trips_and_restored_detector_carries_on():
    det = Detector(_rules())
    _run(det, [i * W for i in range(5)])
    opened = _run(det, [5 * W, 6 * W], neg=30)
    assert [e.kind for e in opened] == ["opened"]
    saved = {(n, k): KeyState.from_json(s.to_json()) for n, k, s in det.take_dirty()}
    restored = Detector(_rules(), saved)
    assert restored.watermark == 60.0
    ev = _run(restored, [6 * W, 7 * W, 8 * W])
    assert [e.kind for e in ev] == ["resolved"]
    assert ev[0].alert.alert_id == opened[0].alert.alert_id


def test_false_alert_rate_on_binomial_noise_is_low():
    rng = random.Random(7)
    det = Detector(_rules(threshold_z=4.0))
    events = []
    for w in range(400):
        for i in range(30):
            ts = w * W + rng.random() * W
            events += det.observe(Observation(id=f"{w}-{i}", ts=ts, topic="T", source="news", channel="c",
                                              negative=rng.random() < 0.15))
    assert len([e for e in events if e.kind == "opened"]) <= 1


def test_states_of_rules_no_longer_configured_are_ignored():
    det = Detector(_rules(), {("gone", MACRO): KeyState(mean=0.5, windows_seen=9, last_window_end=50.0)})
    assert det.states == {} and det.watermark == 0.0
    assert _run(det, [0, W]) == []


def test_a_thin_first_window_does_not_poison_the_baseline():
    det = Detector(_rules())
    _window(det, 0, n=1, neg=1)                       # one negative message at night
    _run(det, [i * W for i in range(1, 5)])           # then normal volume, 10% negative
    state = det.states[("r", MACRO)]
    # windows 0-3 are closed (4 is open): 1/20 + 3 windows of evidence, the first guess averaged away
    assert state.weight == pytest.approx(3.05) and state.mean == pytest.approx(0.1, abs=0.02)
    assert [e.kind for e in _run(det, [5 * W, 6 * W], neg=30)] == ["opened"]


def test_baseline_needs_enough_volume_not_just_windows():
    det = Detector(_rules(min_baseline_windows=3))
    _run(det, [i * W for i in range(6)], n=5, neg=0)  # five closed thin windows = 1.25 windows of evidence
    assert det.states[("r", MACRO)].weight == pytest.approx(1.25)
    assert _run(det, [6 * W, 7 * W], n=40, neg=40) == []


def test_a_redelivered_scored_record_counts_once_in_its_window():
    """After a worker loses its group session (broker down) it re-emits stored but uncommitted records."""
    once, twice = Detector(_rules(distinct_stories=())), Detector(_rules(distinct_stories=()))
    for det, copies in ((once, 1), (twice, 2)):
        for start in (i * W for i in range(6)):
            for i in range(40):
                obs = Observation(id=f"m-{start}-{i}", ts=start + (i + 0.5) * W / 40, topic="Macro", source="customer",
                                  channel="app", negative=i < 4, text="t", model_version="v1")
                for _ in range(copies if i < 20 else 1):  # the first half of each window comes again
                    det.observe(obs)
        det.advance(7 * W + 2)
    assert once.states[("r", MACRO)].mean == pytest.approx(0.1)
    assert twice.states[("r", MACRO)].mean == pytest.approx(0.1), "8 of 60 if the copies counted"
