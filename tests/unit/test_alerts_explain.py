"""Explained alerts without a store: the term, example and ranking maths, the detector's hook, the payloads."""

import json

from riskpulse.streams.alerts.detector import Alert, Detector, KeyState, Observation
from riskpulse.streams.alerts.explain import Explainer, Span, build, distinctive_terms, representative, words
from riskpulse.streams.alerts.notify import SCHEMA_VERSION, Notification, render
from riskpulse.streams.alerts.rules import Rule, RuleSet

W = 10.0
RULES = RuleSet(rules=(Rule(name="r", key=("entity",), window_s=W, grace_s=1.0, min_volume=20, min_baseline_windows=3),))


def test_words_drop_stop_words_numbers_links_and_mask_tokens():
    text = "The [EMAIL] said Wells Fargo froze 2 accounts https://t.co/x9 again, FROZE!"
    assert words(text) == {"wells", "fargo", "froze", "accounts"}


def test_distinctive_terms_rank_what_the_window_says_more_often_than_the_baseline():
    baseline = [f"Bank reports quarterly results {i}" for i in range(200)] + ["outage at the bank"] * 2
    window = ["Bank outage locks customers out"] * 30 + ["Bank reports quarterly results"] * 10 + ["unique once"]
    terms = distinctive_terms(window, baseline)
    # "bank" and "quarterly" are as common before as now; "unique": one window text is no pattern
    assert [t["term"] for t in terms] == ["outage", "customers", "locks"]
    outage = next(t for t in terms if t["term"] == "outage")
    assert outage["window_share"] == round(30 / 41, 4) and outage["baseline_share"] == round(2 / 202, 4)
    assert all(t["z"] > 0 for t in terms)
    assert distinctive_terms([], baseline) == []


def _neg(i, story, prob):
    return {"id": f"m{i}", "story_id": story, "ts_s": 1000 + i, "source": "news", "channel": "wire",
            "sentiment_prob": prob, "text": f"text {i}"}


def test_representative_examples_are_one_per_story_most_confident_first():
    rows = [_neg(1, "s1", 0.99), _neg(2, "s1", 0.98), _neg(3, "s2", 0.97), _neg(4, "", 0.9)]
    out = representative(rows, {"s1": 12}, top=3)
    assert [e["id"] for e in out] == ["m1", "m3", "m4"]
    assert [e["copies"] for e in out] == [12, 1, 1]
    assert out[2]["story_id"] == "m4"  # no story id: its own story
    assert out[0]["ts"] == "1970-01-01T00:16:41Z"
    assert len(representative(rows * 3, {}, top=5)) == 3


def _alert(labels=None, **over) -> Alert:
    base = dict(alert_id="alt_1", rule="r", key=json.dumps(labels or {"entity": "WFC"}), labels=labels or {"entity": "WFC"},
                severity="critical", status="open", opened_at=20.0, updated_at=20.0, resolved_at=None,
                window_start=10.0, window_end=20.0, count=30, negatives=27, share=0.9, baseline_mean=0.1,
                baseline_std=0.05, z=16.0, peak_z=16.0, windows=1, examples=(), model_versions=("v1",))
    base.update(over)
    return Alert(**base)


def test_build_ranks_the_alerted_entity_first_on_ties_and_reports_both_spans():
    window = Span(10, 20, [{"source": "news", "channel": "a", "messages": 10, "negatives": 9, "stories": 4},
                           {"source": "customer", "channel": "b", "messages": 20, "negatives": 18, "stories": 20}])
    baseline = Span(-110, 10, [{"source": "news", "channel": "a", "messages": 120, "negatives": 12, "stories": 100}])
    entities = [{"entity_id": "AAA", "name": "Triple A", "messages": 30, "negatives": 27},
                {"entity_id": "WFC", "name": "Wells Fargo", "messages": 30, "negatives": 27},
                {"entity_id": "JPM", "name": "JPMorgan", "messages": 3, "negatives": 0}]
    out = build(_alert(), window, baseline, 12, entities, [], [])
    assert [e["id"] for e in out["top_entities"]] == ["WFC", "AAA", "JPM"]
    assert out["window"] == {"start": "1970-01-01T00:00:10Z", "end": "1970-01-01T00:00:20Z", "messages": 30,
                             "negatives": 27, "negative_share": 0.9, "stories": 24}
    assert out["baseline"]["messages_per_window"] == 10.0 and out["baseline"]["negative_share"] == 0.1
    assert [(s["source"], s["channel"]) for s in out["top_sources"]] == [("customer", "b"), ("news", "a")]
    assert json.loads(json.dumps(out)) == out  # JSON-ready as it is


def _obs(i, ts, negative):
    return Observation(id=f"m{i}", ts=ts, topic="Banks", source="customer", channel="app", negative=negative,
                       text=f"text {i}", entities=("WFC",))


def _spike(det):
    events, i = [], 0
    for w in range(6):
        for k in range(30):
            i += 1
            events += det.observe(_obs(i, w * W + k * W / 30, negative=(k < 3) if w != 4 else k < 27))
    return events + det.advance(8 * W)


def test_detector_explains_on_open_and_the_resolution_carries_it():
    calls = []

    def explain(alert):
        calls.append((alert.alert_id, alert.window_start))
        return {"window": {"messages": len(calls)}}

    events = _spike(Detector(RULES, explain=explain))
    assert [e.kind for e in events] == ["opened", "resolved"]
    assert calls == [(events[0].alert.alert_id, 4 * W)]
    assert events[0].alert.explanation == {"window": {"messages": 1}}
    assert events[1].alert.explanation == events[0].alert.explanation
    assert [e.alert.explanation for e in _spike(Detector(RULES))] == [{}, {}]  # no hook: nothing made up


def test_explanation_survives_detector_state_and_a_state_without_it_reads_empty():
    alert = _alert(explanation={"terms": [{"term": "outage"}]})
    state = KeyState.from_json(json.loads(json.dumps(KeyState(alert=alert).to_json())))
    assert state.alert == alert
    old = KeyState(alert=_alert()).to_json()
    del old["alert"]["explanation"]
    assert KeyState.from_json(old).alert.explanation == {}


class DownStore:
    def query(self, sql, params=None):
        raise ConnectionError("clickhouse down")


def test_a_store_that_fails_leaves_the_alert_unexplained_but_alerting():
    assert Explainer(DownStore(), RULES)(_alert()) == {"error": "ConnectionError: clickhouse down"}


WHY = {
    "window": {"messages": 30, "stories": 24, "negative_share": 0.9, "negatives": 27},
    "baseline": {"messages_per_window": 10.0, "negative_share": 0.1},
    "top_entities": [{"id": "WFC", "name": "Wells Fargo", "messages": 30, "negatives": 27}],
    "top_sources": [{"source": "customer", "channel": "app", "messages": 30, "negatives": 27, "negative_share": 0.9}],
    "terms": [{"term": "frozen", "window_share": 0.5, "baseline_share": 0.0, "z": 6.1}],
    "examples": [{"id": "m1", "text": "Wells Fargo froze my account\nagain", "confidence": 0.99}],
}


def test_payloads_carry_the_explanation():
    n = Notification("ntf_1", "r{}", RULES.rules[0], {"entity": "WFC"}, "firing", (_alert(explanation=WHY),))
    body = json.loads(render(n, "standard", 30.0))
    assert body["data"]["schema_version"] == SCHEMA_VERSION == 2
    assert body["data"]["alerts"][0]["explanation"] == WHY
    slack = json.loads(render(n, "slack", 30.0))["text"]
    assert "entities: Wells Fargo (30)" in slack and "terms: frozen" in slack
    assert "> Wells Fargo froze my account again" in slack and "customer/app (30)" in slack
    bare = json.loads(render(Notification("ntf_2", "r{}", RULES.rules[0], {}, "firing", (_alert(),)), "slack", 30.0))
    assert "entities:" not in bare["text"]


def test_baseline_span_starts_at_the_window_of_the_keys_first_message():
    rows = [{"source": "news", "channel": "a", "messages": 20, "negatives": 2, "stories": 20, "first_s": 1075},
            {"source": "news", "channel": "b", "messages": 4, "negatives": 0, "stories": 4, "first_s": 1130}]
    span = Span(400, 1200, rows).since_first(60)
    assert (span.start, span.end) == (1020, 1200)  # three windows of history, not the thirteen asked for
    assert Span(400, 1200, []).since_first(60).start == 400
    out = build(_alert(), Span(1200, 1260, []), span, (span.end - span.start) / 60, [], [], [])
    assert out["baseline"]["windows"] == 3 and out["baseline"]["messages_per_window"] == 8.0
    assert out["window"]["negative_share"] == 0.0 and out["top_entities"] == []
