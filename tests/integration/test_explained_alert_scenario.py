"""Issue 14's hidden-scenario bar on the real parts: Kafka broker, `riskpulse worker` (quick model, entities
and stories on), `riskpulse alerts run` with the shipped rules, clickhouse-server 18.16 and an HTTP receiver
that verifies signatures.

Real tweets are replayed as a backlog over twelve 10-minute windows, 40% of them near-duplicate reprints
(tests/reprints.py). Wells Fargo (watchlist) is named steadily, then its news turns negative in one window;
JPMorgan (watchlist) is named steadily too, and in another window three negative stories about it are
reprinted fifteen times each. Expected: exactly one entity alert, for Wells Fargo, whose explanation names
it first and carries its burst messages as examples, and whose signed webhook the receiver verifies; no
alert in the reprint window — while the same scored records counted per message (distinct_stories: [])
would alert on JPMorgan there, so the reprints are a real test of the story counting.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import datetime, timezone

import pytest
import yaml
from kafka import KafkaConsumer

from riskpulse.core.resources import deploy_file
from riskpulse.core.schema import Message, ScoredMessage
from riskpulse.core.settings import Settings
from riskpulse.models.serving.inference import Engine
from riskpulse.streams.alerts.detector import Detector
from riskpulse.streams.alerts.agent import observation
from riskpulse.streams.alerts.rules import Rule, RuleSet
from riskpulse.streams.enrich.entities import DEFAULT_WATCHLIST, Catalogue, EntityExtractor, watchlist_ids
from riskpulse.streams.ingest.producers import kafka_producer
from riskpulse.streams.topics import ensure_topics
from tests.fixtures.models import shared_data
from tests.integration.alerts_corpus import load_corpus
from tests.integration.pipeline_support import Worker, run_settings, wait_drained
from tests.integration.test_alerts import AlertsWorker, alert_settings, alerts_in_store, wait_until
from tests.planted import Target, retargeted
from tests.reprints import reprint, replay

pytestmark = pytest.mark.integration

W = 600  # the shipped entity rule's window
WINDOWS = 12
BURST_WINDOW, REPRINT_WINDOW = 8, 9
PER_WINDOW = 18  # steady mentions of each watched company per window (min_volume 15)
BACKGROUND = 60  # other real tweets per window, before their reprints
WFC = Target("WFC", "Wells Fargo", "WFC")
JPM = Target("JPM", "JPMorgan", "JPM")
ENTITY_RULE = "watchlist-entity-negative-spike"


def shipped_rules(path, tag: str, url: str) -> tuple[dict[str, str], object]:
    """The shipped rules file, each rule renamed for this run; the entity rule notifies ``url``."""
    data = yaml.safe_load(deploy_file("alert-rules.yaml").read_text())
    names = {}
    for rule in data["rules"]:
        names[rule["name"]] = rule["name"] = f"{rule['name']}-{tag}"
        if rule["name"].startswith(ENTITY_RULE):
            rule.update(webhooks=[{"url": url}], group_wait_s=1)
    path.write_text(yaml.safe_dump(data))
    return names, path


def read_negative(texts: list[str], engine: Engine, n: int) -> list[str]:
    """The first ``n`` of ``texts`` that the serving model also reads as negative.

    The burst and the decoy stories are human-labelled negative news; the quick test model reads only ~60% of
    such tweets as negative, so which ones a seed draws decided whether the burst cleared the rule's z-score
    (7 of 12 seeds; 4 of 12 after a catalogue change reshuffled the draw). This test is about entity
    alerting, story counting and explanations, so its negative news is news the model under test calls negative,
    drawn from four times as many candidates as it needs (twice was not enough once the unlisted-name finder
    changed which tweets name exactly one company: 20 of 48 read negative).
    """
    picked = [text for text, scores in zip(texts, engine.classify(texts)) if scores.sentiment == "negative"][:n]
    assert len(picked) == n, f"only {len(picked)} of {len(texts)} negative texts read as negative by {engine.version}"
    return picked


@pytest.fixture(scope="module")
def scenario(quick_registry):
    """(messages sorted by event time, ids by role, reprint share), built from real tweets."""
    rng = random.Random(14)
    corpus = [c for c in load_corpus(shared_data()) if c.id.startswith("s-")]  # human sentiment labels
    extractor = EntityExtractor(Catalogue.load())
    engine = Engine.load(Settings(registry_dir=quick_registry, device="cpu"))
    negative = [c.text for c in corpus if c.sentiment == "negative"]
    calm = [c.text for c in corpus if c.sentiment != "negative"]
    wfc_calm = retargeted(calm, extractor, WFC, WINDOWS * PER_WINDOW, rng)
    wfc_burst = read_negative(retargeted(negative, extractor, WFC, 96, rng, avoid=wfc_calm), engine, 24)
    jpm_calm = retargeted(calm, extractor, JPM, WINDOWS * PER_WINDOW, rng, avoid=wfc_calm)
    jpm_stories = read_negative(retargeted(negative, extractor, JPM, 24, rng, avoid=jpm_calm + wfc_burst), engine, 3)
    background = [c.text for c in corpus if not {m.entity_id for m in extractor.extract(c.text)} & {"WFC", "JPM"}]
    background = rng.sample(list(dict.fromkeys(background)), WINDOWS * BACKGROUND)

    base = (int(time.time()) // W - 3 * 24 * 6 - WINDOWS) * W  # three days ago: a backlog of past event time
    messages: list[Message] = []
    roles: dict[str, set[str]] = {"burst": set(), "wfc_in_burst_window": set(), "decoy": set(), "copies": set()}

    def add(text: str, ts: float, channel: str, role: str | None = None) -> None:
        msg = Message(id=f"sc-{len(messages):05d}", source="news", channel=channel, ts=datetime.fromtimestamp(ts, timezone.utc),
                      text=text, meta={"planted": role or "real"})
        messages.append(msg)
        if role:
            roles[role].add(msg.id)

    for w in range(WINDOWS):
        start = base + w * W
        for k in range(PER_WINDOW):
            add(wfc_calm[w * PER_WINDOW + k], start + rng.uniform(0, W), rng.choice(("newswire", "twitter")),
                "wfc_in_burst_window" if w == BURST_WINDOW else None)
            add(jpm_calm[w * PER_WINDOW + k], start + rng.uniform(0, W), rng.choice(("newswire", "twitter")))
        if w == BURST_WINDOW:
            for text in wfc_burst:
                add(text, start + rng.uniform(0, W), rng.choice(("newswire", "twitter")), "burst")
        if w == REPRINT_WINDOW:
            for text in jpm_stories:
                add(text, start + 5, "newswire", "decoy")
                for _ in range(15):
                    add(reprint(text, rng)[0], start + rng.uniform(10, W - 5), "twitter", "decoy")
    originals = len(messages) - 3 * 15 + WINDOWS * BACKGROUND
    copies_wanted = round(originals * 0.4 / 0.6) - 3 * 15
    asked = round(copies_wanted * 1.2)  # copies that land past the last window are dropped
    planted = replay([(f"bg{i}", "news", t) for i, t in enumerate(background)], copy_share=asked / (asked + len(background)),
                     seed=14, rate=BACKGROUND / W, start=base, mean_delay_s=W / 2)
    in_time = [p for p in planted if p.ts < base + WINDOWS * W]
    kept = set(rng.sample([p.id for p in in_time if p.kind != "original"], copies_wanted))
    for p in in_time:
        if p.kind == "original" or p.id in kept:
            add(p.text, p.ts, rng.choice(("newswire", "twitter")), "copies" if p.kind != "original" else None)
    messages.sort(key=lambda m: (m.ts, m.id))
    copies = len(roles["copies"]) + 3 * 15
    return messages, roles, copies / len(messages), base


def _scored(settings) -> list[ScoredMessage]:
    consumer = KafkaConsumer(settings.topic_scored, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    try:
        return sorted((ScoredMessage.model_validate_json(r.value) for r in consumer), key=lambda m: (m.ts, m.id))
    finally:
        consumer.close()


def test_one_explained_entity_alert_for_the_company_in_the_news_and_none_for_reprints(
    stack, quick_registry, http_receiver, scenario, tmp_path,
):
    messages, roles, reprint_share, base = scenario
    assert 0.38 <= reprint_share <= 0.42, reprint_share
    assert {"WFC", "JPM"} <= watchlist_ids(DEFAULT_WATCHLIST)
    tag = f"explain-{uuid.uuid4().hex[:8]}"
    names, rules_path = shipped_rules(tmp_path / "rules.yaml", tag, http_receiver.url)
    rule = names[ENTITY_RULE]
    settings = alert_settings(run_settings(stack, tag, quick_registry), tag, rules_path)
    ensure_topics(settings)
    producer = kafka_producer(settings)
    try:
        for m in messages:
            producer.send(settings.topic_raw, key=m.key, value=m.to_bytes())
        producer.flush()
    finally:
        producer.close()

    worker = Worker.start(settings, tmp_path / "worker.log")
    alerts_worker = AlertsWorker.start(settings, tmp_path / "alerts.log")
    try:
        wait_drained(settings, [worker], timeout=600)
        wait_until(lambda: any(a.status == "resolved" for a in alerts_in_store(settings, rule)), 120,
                   "the entity alert opened and resolved", alerts_worker)
        http_receiver.wait_for(lambda r: len(r.accepted) >= 1, timeout=30)
        time.sleep(3)  # a second notification would have had time to arrive
    finally:
        alerts_worker.stop()
        assert worker.stop() == 0, worker.tail()

    every = [a for name in names.values() for a in alerts_in_store(settings, name)]
    entity_alerts = [a for a in every if a.rule == rule]
    assert [a.labels for a in entity_alerts] == [{"entity": "WFC"}], [(a.rule, a.key, a.window_start) for a in every]
    (alert,) = entity_alerts
    assert alert.window_start == base + BURST_WINDOW * W
    assert not [a for a in every if a.window_start == base + REPRINT_WINDOW * W], "an alert on the reprinted stories"

    why = alert.explanation
    assert why["top_entities"][0]["id"] == "WFC", why["top_entities"]
    assert "Wells Fargo" in why["top_entities"][0]["name"]
    examples = why["examples"]  # the burst's, and any steady mention the model also read as negative
    assert len(examples) == 5 and len({e["story_id"] for e in examples}) == 5
    assert {e["id"] for e in examples} <= roles["burst"] | roles["wfc_in_burst_window"], examples
    assert len({e["id"] for e in examples} & roles["burst"]) >= 3, examples
    assert why["window"]["negative_share"] > why["baseline"]["negative_share"] + 0.3
    assert why["baseline"]["messages_per_window"] >= PER_WINDOW - 3

    heard = [r for r in http_receiver.requests if r.verified]
    assert heard and len(heard) == len(http_receiver.requests), [r.error for r in http_receiver.requests]
    firing = heard[0].json
    assert firing["type"] == "riskpulse.alert.firing" and firing["data"]["schema_version"] == 2
    (sent,) = firing["data"]["alerts"]
    assert sent["alert_id"] == alert.alert_id
    assert sent["explanation"]["top_entities"][0]["id"] == "WFC"
    assert sent["explanation"]["examples"] == examples

    # The reprints would have alerted had the rule counted messages instead of stories.
    shipped = next(r for r in RuleSet.model_validate(yaml.safe_load(rules_path.read_text())).rules if r.name == rule)
    per_message = Rule(**{**shipped.model_dump(), "distinct_stories": ()})
    detector = Detector(RuleSet(rules=(per_message,)), watched=watchlist_ids(DEFAULT_WATCHLIST))
    events = []
    for scored in _scored(settings):
        events += detector.observe(observation(scored))
    opened = {(e.alert.labels["entity"], e.alert.window_start) for e in events if e.kind == "opened"}
    assert ("JPM", base + REPRINT_WINDOW * W) in opened, opened
    print(json.dumps({"reprint_share": round(reprint_share, 3), "messages": len(messages), "alerts": [
        (a.rule, a.key, a.window_start - base) for a in every], "per_message_alerts": sorted(opened)}))
