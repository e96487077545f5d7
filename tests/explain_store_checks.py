"""Explaining an alert from the stored messages and mentions, run on chDB (tests/local) and on
clickhouse-server 18.16 (tests/integration): the real queries, the real extractor and story index."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from riskpulse.core.schema import ScoredMessage
from riskpulse.streams.alerts.detector import Alert
from riskpulse.streams.alerts.explain import BASELINE_WINDOWS, Explainer
from riskpulse.streams.alerts.rules import Rule, RuleSet
from riskpulse.streams.enrich.entities import Catalogue, EntityExtractor
from riskpulse.streams.enrich.stories import StoryIndex
from riskpulse.streams.store import entities
from riskpulse.streams.store.backends import Store
from riskpulse.streams.store.messages import message_row
from riskpulse.streams.worker.batching import with_entities, with_stories

W = 600
START = 1_772_000_400  # a window start (multiple of W)
RULES = RuleSet(rules=(
    Rule(name="ent", key=("entity",), window_s=W, watchlist_only=True),
    Rule(name="topic", key=("topic",), window_s=W),
))
CALM = ["Wells Fargo opens new branch in {city}", "Wells Fargo sponsors {city} marathon",
        "JPMorgan hires {city} team", "Wells Fargo app update adds budgeting in {city}"]
CITIES = ["Denver", "Austin", "Boston", "Seattle", "Miami", "Atlanta", "Phoenix", "Dallas", "Chicago", "Portland",
          "Tampa", "Omaha", "Tulsa", "Reno", "Boise", "Fresno"]
BURST = [
    "Wells Fargo customers locked out of accounts for hours in {city}, deposits missing",
    "Wells Fargo outage: {city} customers say paychecks vanished from accounts",
    "Regulators probe Wells Fargo after {city} customers report accounts frozen",
]
SYNDICATED = "Wells Fargo accounts frozen nationwide as outage spreads, customers furious about missing deposits"


def _msg(i: int, ts: int, text: str, sentiment: str, prob: float, source: str = "news") -> ScoredMessage:
    return ScoredMessage(id=f"x-{i}", source=source, channel="wire" if source == "news" else "app",
                         ts=datetime.fromtimestamp(ts, timezone.utc), text=text, topic="Banks", topic_prob=0.9,
                         sentiment=sentiment, sentiment_prob=prob, model_version="v1")


def corpus() -> list[ScoredMessage]:
    """Twelve calm windows about Wells Fargo and JPMorgan, then one where Wells Fargo's news turns: distinct
    negative stories, one of them syndicated eight times (its copies the most confident), and calm JPMorgan."""
    out: list[ScoredMessage] = []
    for w in range(BASELINE_WINDOWS):
        for k, city in enumerate(CITIES):
            text = CALM[k % len(CALM)].format(city=city)
            out.append(_msg(len(out), START - (BASELINE_WINDOWS - w) * W + k * 30, f"{text} ({w})",
                            "negative" if k == 0 else "neutral", 0.7))
    burst_start = START
    for k, city in enumerate(CITIES):
        out.append(_msg(len(out), burst_start + k * 30, BURST[k % 3].format(city=city), "negative", 0.80 + k / 200,
                        source="customer" if k % 2 else "news"))
    for copy in range(8):
        out.append(_msg(len(out), burst_start + 10 + copy * 20, f"RT @markets: {SYNDICATED}" if copy else SYNDICATED,
                        "negative", 0.999))
    for k in range(4):
        out.append(_msg(len(out), burst_start + 15 + k * 40, f"JPMorgan hires {CITIES[k]} bankers", "neutral", 0.9))
    return sorted(out, key=lambda m: m.ts)


def _alert(labels: dict[str, str], rule: str) -> Alert:
    return Alert(alert_id="alt_x", rule=rule, key=json.dumps(labels), labels=labels, severity="critical", status="open",
                 opened_at=START + W, updated_at=START + W, resolved_at=None, window_start=START, window_end=START + W,
                 count=0, negatives=0, share=0.0, baseline_mean=0.0, baseline_std=0.0, z=0.0, peak_z=0.0, windows=1,
                 examples=(), model_versions=())


def check_explanation(store: Store) -> None:
    messages = corpus()
    tagged, mentions = with_entities(messages, EntityExtractor(Catalogue.load()))
    tagged = with_stories(tagged, StoryIndex())
    store.write_batch("messages", [message_row(m) for m in tagged])
    store.write_batch("messages", [message_row(m) for m in tagged[-10:]])  # a redelivered batch
    store.write_batch(entities.ENTITY_MENTIONS_TABLE, mentions)
    in_window = [m for m in tagged if m.ts.timestamp() >= START]
    wfc = [m for m in in_window if "WFC" in m.entities]
    copies = [m for m in wfc if SYNDICATED in m.text]
    assert len({m.story_id for m in copies}) == 1, "the story index groups the syndicated copies"

    why = Explainer(store, RULES)(_alert({"entity": "WFC"}, "ent"))
    assert "error" not in why, why
    assert why["window"]["messages"] == len(wfc) == len(CITIES) + 8
    assert why["window"]["negatives"] == len(wfc) and why["window"]["negative_share"] == 1.0
    assert why["window"]["stories"] == len(CITIES) + 1
    baseline_wfc = [m for m in tagged if m.ts.timestamp() < START and "WFC" in m.entities]
    assert why["baseline"]["messages"] == len(baseline_wfc)
    assert why["baseline"]["messages_per_window"] == round(len(baseline_wfc) / BASELINE_WINDOWS, 2)
    assert why["baseline"]["negative_share"] == round(sum(m.sentiment == "negative" for m in baseline_wfc) / len(baseline_wfc), 4)
    assert why["top_entities"][0] == {"id": "WFC", "name": why["top_entities"][0]["name"], "messages": len(wfc),
                                      "negatives": len(wfc)}
    assert "Wells Fargo" in why["top_entities"][0]["name"]
    assert [(s["source"], s["channel"]) for s in why["top_sources"]] == [("news", "wire"), ("customer", "app")]
    terms = [t["term"] for t in why["terms"]]
    assert {"customers", "accounts"} <= set(terms[:6]), terms
    assert "wells" not in terms and "fargo" not in terms  # named in every window alike
    examples = why["examples"]
    assert len(examples) == 5 and len({e["story_id"] for e in examples}) == 5
    assert examples[0]["copies"] == 8 and SYNDICATED in examples[0]["text"]  # the syndicated story, once
    assert [e["confidence"] for e in examples] == sorted((e["confidence"] for e in examples), reverse=True)
    assert {e["id"] for e in examples} <= {m.id for m in wfc}

    topic = Explainer(store, RULES)(_alert({"topic": "Banks"}, "topic"))
    assert topic["window"]["messages"] == len(in_window)
    assert [e["id"] for e in topic["top_entities"][:2]] == ["WFC", "JPM"]
    assert Explainer(store, RULES)(_alert({"entity": "NOPE"}, "ent"))["window"]["messages"] == 0
