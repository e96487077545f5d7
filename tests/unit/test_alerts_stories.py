"""Spike rules count news once per story: fifty reprints of one article are one event, fifty complaints fifty."""

from __future__ import annotations

from riskpulse.streams.alerts.detector import Detector, Observation
from riskpulse.streams.alerts.rules import Rule, RuleSet, load_rules_text

WINDOW = 60.0


def rule(**changes) -> RuleSet:
    base = Rule(name="topic", key=("topic",), window_s=WINDOW, grace_s=0, threshold_z=3.0, min_volume=20,
                min_baseline_windows=3)
    return RuleSet(rules=(base.model_copy(update=changes),))


def steady(window: int, n: int = 30, negative_every: int = 10) -> list[Observation]:
    """``n`` distinct news items in one window, one in ``negative_every`` negative."""
    return [Observation(id=f"w{window}-{i}", ts=window * WINDOW + i, topic="Banks", source="news", channel="wire",
                        negative=i % negative_every == 0, text=f"story {window}-{i}") for i in range(n)]


def opened(rules: RuleSet, burst: list[Observation]) -> list[str]:
    detector = Detector(rules)
    events = []
    for window in range(6):
        events += [e for obs in steady(window) for e in detector.observe(obs)]
    events += [e for obs in steady(6) + burst for e in detector.observe(obs)]
    events += detector.advance(8 * WINDOW)
    return [e.alert.rule for e in events if e.kind == "opened"]


def reprints(n: int, source: str = "news", story: str = "bank-run") -> list[Observation]:
    return [Observation(id=f"copy-{i}", ts=6 * WINDOW + 30 + i * 0.1, topic="Banks", source=source, channel=f"site-{i}",
                        negative=True, text="Regional bank faces run", story_id=story) for i in range(n)]


def test_fifty_reprints_of_one_negative_article_are_one_event_for_news():
    assert opened(rule(), reprints(50)) == []
    assert opened(rule(distinct_stories=()), reprints(50)) == ["topic"]  # counted raw, they look like a spike


def test_fifty_distinct_stories_or_complaints_still_alert():
    distinct_news = [Observation(id=f"n-{i}", ts=6 * WINDOW + 30 + i * 0.1, topic="Banks", source="news", channel="wire",
                                 negative=True, text=f"bank story {i}") for i in range(50)]
    assert opened(rule(), distinct_news) == ["topic"]
    assert opened(rule(), reprints(50, source="customer")) == ["topic"]  # copy-paste complaints count per message


def test_a_story_is_negative_when_most_of_its_copies_are_and_gives_one_example():
    detector = Detector(rule(examples=5, min_volume=1, min_baseline_windows=1))
    copies = [Observation(id=f"c{i}", ts=1.0 + i, topic="Banks", source="news", channel="x", negative=i < 2,
                          text=f"copy {i}", story_id="s") for i in range(5)]
    mixed = [Observation(id=f"m{i}", ts=10.0 + i, topic="Banks", source="news", channel="x", negative=i == 0,
                         text=f"mixed {i}", story_id="t") for i in range(2)]
    for obs in copies + mixed:
        detector.observe(obs)
    window = detector.states[("topic", '{"topic": "Banks"}')].open_windows[0.0]
    assert window.totals() == (2, 0)  # s: 2 of 5 negative, t: 1 of 2, neither is mostly negative
    assert [e["id"] for e in window.examples] == ["c0", "m0"]


def test_the_default_rules_count_news_per_story_and_a_rule_can_turn_it_off():
    text = ("rules:\n  - {name: raw, key: [topic], window_s: 60, distinct_stories: []}\n"
            "  - {name: per-story, key: [topic], window_s: 60}\n")
    raw, per_story = load_rules_text(text).rules
    assert raw.distinct_stories == () and per_story.distinct_stories == ("news",)


def test_scored_records_bring_their_story_to_the_detector():
    from datetime import datetime, timezone

    from riskpulse.core.schema import ScoredMessage
    from riskpulse.streams.alerts.agent import observation

    msg = ScoredMessage(id="b", source="news", ts=datetime(2026, 1, 2, tzinfo=timezone.utc), text="RT @x: Bank run",
                        topic="Banks", topic_prob=0.9, sentiment="negative", sentiment_prob=0.9, model_version="v",
                        story_id="a")
    assert observation(msg).story_id == "a"
