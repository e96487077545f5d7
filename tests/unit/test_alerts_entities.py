"""Entity alert rules: `key: [entity]` counts a message once per entity it names; the watchlist can restrict them."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from riskpulse.core.schema import ScoredMessage
from riskpulse.streams.alerts.agent import observation
from riskpulse.streams.alerts.detector import Detector, Observation
from riskpulse.streams.alerts.rules import Rule, RulesError, RuleSet, load_rules_text
from riskpulse.streams.enrich.entities import watchlist_ids

W = 10.0
FIELDS = {"topic": "Banks", "source": "news", "channel": "wire"}


def entity_rule(**over) -> Rule:
    base = dict(name="entity", key=("entity",), window_s=W, grace_s=1.0, threshold_z=3.0, min_volume=20,
                min_baseline_windows=3, cooldown_s=0)
    return Rule(**(base | over))


def key(entity: str, **extra: str) -> str:
    return json.dumps({"entity": entity, **extra})


def test_one_key_per_entity_named_and_none_without_entities():
    rule = entity_rule()
    assert rule.keys_of(FIELDS, ("JPM", "AAPL", "JPM")) == [key("JPM"), key("AAPL")]
    assert rule.keys_of(FIELDS, ()) == []
    with_topic = entity_rule(key=("entity", "source"))
    assert with_topic.keys_of(FIELDS, ("JPM",)) == [json.dumps({"entity": "JPM", "source": "news"})]


def test_watchlist_only_and_where_entity():
    watched = frozenset({"JPM"})
    assert entity_rule(watchlist_only=True).keys_of(FIELDS, ("AAPL", "JPM"), watched) == [key("JPM")]
    assert entity_rule(watchlist_only=True).keys_of(FIELDS, ("AAPL",), watched) == []
    only_jpm_customers = entity_rule(key=("topic",), where={"entity": "JPM", "source": "customer"})
    assert only_jpm_customers.keys_of(FIELDS | {"source": "customer"}, ("JPM",)) == [json.dumps({"topic": "Banks"})]
    assert only_jpm_customers.keys_of(FIELDS | {"source": "customer"}, ("AAPL",)) == []
    assert only_jpm_customers.keys_of(FIELDS, ("JPM",)) == []


def test_topic_rules_are_unchanged_by_entities():
    topic_rule = entity_rule(key=("topic",))
    assert topic_rule.keys_of(FIELDS, ("JPM", "AAPL")) == [json.dumps({"topic": "Banks"})]
    assert topic_rule.keys_of(FIELDS, ()) == [json.dumps({"topic": "Banks"})]


def test_watchlist_only_needs_an_entity_key():
    text = "rules:\n  - name: r\n    key: [topic]\n    window_s: 60\n    watchlist_only: true\n"
    with pytest.raises(RulesError, match="watchlist_only needs 'entity' in key"):
        load_rules_text(text)


def _window(det: Detector, start: float, negative: dict[str, int], n: int = 40) -> list:
    """n messages over one window: odd ones name AAPL, even ones JPM, every fourth both; the first
    ``negative[X]`` messages naming only X are negative."""
    events = []
    seen = {"JPM": 0, "AAPL": 0}
    for i in range(n):
        names = ("JPM", "AAPL") if i % 4 == 0 else ("AAPL",) if i % 2 else ("JPM",)
        alone = names[0] if len(names) == 1 else None
        is_negative = alone is not None and seen[alone] < negative.get(alone, 0)
        if alone is not None:
            seen[alone] += 1
        events += det.observe(Observation(id=f"{start}-{i}", ts=start + (i + 0.5) * W / n, negative=is_negative,
                                          text=f"m {i}", entities=names, **FIELDS))
    return events


def test_a_burst_about_one_entity_opens_one_alert_for_it():
    det = Detector(RuleSet(rules=(entity_rule(),)))
    events = []
    for w in range(6):
        events += _window(det, w * W, {"JPM": 2, "AAPL": 2})
    assert events == []
    events += _window(det, 6 * W, {"JPM": 2, "AAPL": 18})  # 18 of AAPL's 20 own messages turn negative
    events += _window(det, 7 * W, {"JPM": 2, "AAPL": 2})
    opened = [e for e in events if e.kind == "opened"]
    assert [(e.alert.key, e.alert.labels) for e in opened] == [(key("AAPL"), {"entity": "AAPL"})]
    assert opened[0].alert.count == 30 and opened[0].alert.negatives == 18  # messages naming both count for each
    assert det.states[("entity", key("JPM"))].alert is None


def test_watchlist_only_rule_ignores_a_burst_about_an_unwatched_entity():
    det = Detector(RuleSet(rules=(entity_rule(watchlist_only=True),)), watched=frozenset({"JPM"}))
    events = []
    for w in range(6):
        events += _window(det, w * W, {"JPM": 2, "AAPL": 2})
    events += _window(det, 6 * W, {"JPM": 2, "AAPL": 18})
    events += _window(det, 7 * W, {"JPM": 10, "AAPL": 2})
    events += _window(det, 8 * W, {"JPM": 2, "AAPL": 2})
    assert [e.alert.key for e in events if e.kind == "opened"] == [key("JPM")]
    assert {k for _, k in det.states} == {key("JPM")}


def test_scored_records_bring_their_entities_to_the_detector():
    msg = ScoredMessage(id="m", source="news", ts=datetime(2026, 1, 2, tzinfo=timezone.utc), text="JPMorgan falls",
                        topic="Banks", topic_prob=1, sentiment="negative", sentiment_prob=1, model_version="v",
                        entities=["JPM"])
    assert observation(msg).entities == ("JPM",)


def test_watchlist_ids_of_the_shipped_watchlist():
    from riskpulse.streams.enrich.entities import DEFAULT_WATCHLIST

    ids = watchlist_ids(DEFAULT_WATCHLIST)
    assert {"JPM", "BAC", "1398.HK", "3968.HK"} <= ids and "AAPL" not in ids
