"""Entities on the real parts: a `riskpulse worker` (Kafka broker, ClickHouse server 18.16) stores every
mention and emits scored records that carry entity ids; a `riskpulse alerts run` with an entity rule on the
watchlist opens one alert for a company whose news turns negative, and none for an unwatched one."""

from __future__ import annotations

import json
import random
import time
import uuid

import pytest
from kafka import KafkaConsumer

from riskpulse.core.schema import ScoredMessage
from riskpulse.streams.enrich.entities import DEFAULT_WATCHLIST, Catalogue, EntityExtractor, watchlist_ids
from riskpulse.streams.ingest.producers import kafka_producer
from riskpulse.streams.topics import ensure_topics
from tests.integration.alerts_corpus import load_corpus, scored
from tests.integration.pipeline_support import Worker, good_messages, produce_mixed, run_settings, wait_drained
from tests.integration.test_alerts import (
    W, AlertsWorker, alert_settings, alerts_in_store, sleep_to_window_start, wait_until,
)
from tests.fixtures.models import shared_data

pytestmark = pytest.mark.integration

N = 800
BURST_ENTITY = "WFC"  # on the shipped watchlist
UNWATCHED = "AAPL"  # not on it


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor(Catalogue.load())


def _scored_records(settings) -> list[ScoredMessage]:
    consumer = KafkaConsumer(settings.topic_scored, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    try:
        return [ScoredMessage.model_validate_json(r.value) for r in consumer]
    finally:
        consumer.close()


def test_worker_stores_every_mention_and_emits_entity_ids(stack, server_store, extractor, tmp_path):
    tag = f"ent{uuid.uuid4().hex[:8]}"
    settings = run_settings(stack, tag, tmp_path / "no-models")
    ensure_topics(settings)
    goods = good_messages(tag, N)
    produce_mixed(settings, goods, [])
    worker = Worker.start(settings, tmp_path / "worker.log", args=("--null-model",))
    try:
        wait_drained(settings, [worker])
    finally:
        assert worker.stop() == 0, worker.tail()

    expected = {(m.id, x.entity_id, x.start, x.end) for m in goods for x in extractor.extract(m.text)}
    assert len(expected) > 300, "the real texts must name companies"
    rows = server_store.query(
        "SELECT message_id, entity_id, span_start, span_end FROM entity_mentions FINAL WHERE message_id LIKE %(p)s",
        {"p": f"{tag}-%"},
    )
    assert {(r["message_id"], r["entity_id"], r["span_start"], r["span_end"]) for r in rows} == expected
    assert len(rows) == len(expected)
    stored = {r["id"]: (r["sentiment"], r["ts"]) for r in server_store.query(
        "SELECT id, sentiment, ts FROM messages FINAL WHERE id LIKE %(p)s", {"p": f"{tag}-%"})}
    copied = server_store.query(
        "SELECT message_id, sentiment, ts FROM entity_mentions FINAL WHERE message_id LIKE %(p)s", {"p": f"{tag}-%"})
    assert all(stored[r["message_id"]] == (r["sentiment"], r["ts"]) for r in copied)

    emitted = {m.id: m.entities for m in _scored_records(settings)}
    assert len(emitted) == N
    for m in goods:
        assert emitted[m.id] == list(dict.fromkeys(x.entity_id for x in extractor.extract(m.text))), m.text
    assert "entities " in worker.text()  # the batch log line times the stage


def _rules(path, rule: str):
    path.write_text(f"""rules:
  - name: {rule}
    key: [entity]
    watchlist_only: true
    window_s: {W}
    grace_s: 0.5
    threshold_z: 4
    min_volume: 10
    min_baseline_windows: 3
    examples: 5
    severity: critical
    group_wait_s: 1
""")
    return path


def test_entity_rule_alerts_once_on_the_watched_company_whose_news_turns_negative(stack, extractor, tmp_path):
    tag = f"entalerts-{uuid.uuid4().hex[:8]}"
    rule = f"entity-{tag}"
    settings = alert_settings(stack, tag, _rules(tmp_path / "rules.yaml", rule))
    ensure_topics(settings)
    assert BURST_ENTITY in watchlist_ids(DEFAULT_WATCHLIST) and UNWATCHED not in watchlist_ids(DEFAULT_WATCHLIST)
    named: dict[str, list] = {}  # texts naming one company and no other, so a burst on one touches no other key
    for item in load_corpus(shared_data()):
        ids = set(m.entity_id for m in extractor.extract(item.text))
        if len(ids) == 1:
            named.setdefault(ids.pop(), []).append(item)
    calm = {e: [i for i in named[e] if i.sentiment != "negative"] for e in (BURST_ENTITY, UNWATCHED, "JPM")}
    negative = {e: [i for i in named[e] if i.sentiment == "negative"] for e in (BURST_ENTITY, UNWATCHED)}
    assert all(len(v) >= 5 for v in [*calm.values(), *negative.values()])
    rng = random.Random(5)
    producer = kafka_producer(settings)
    burst_ids: set[str] = set()
    count = 0

    def send(item, ts: float) -> str:
        nonlocal count
        count += 1
        msg = scored(item, ts, channel=f"ch{count % 5}", suffix=f"-{count}")
        msg = msg.model_copy(update={"entities": list(dict.fromkeys(m.entity_id for m in extractor.extract(msg.text)))})
        producer.send(settings.topic_scored, key=msg.key, value=msg.model_dump_json().encode())
        return msg.id

    def window(start: float, burst: bool = False) -> None:
        """15 messages naming each of the three companies, spread over one window; mostly calm."""
        for i in range(15):
            ts = start + (i + 0.5) * W / 15
            for entity_id in (BURST_ENTITY, UNWATCHED, "JPM"):
                pool = negative.get(entity_id) if burst and entity_id in negative else None
                pool = pool if pool else (negative[entity_id] if i < 2 and entity_id in negative else calm[entity_id])
                sent = send(rng.choice(pool), ts)
                if burst and entity_id == BURST_ENTITY:
                    burst_ids.add(sent)

    worker = AlertsWorker.start(settings, tmp_path / "alerts.log")
    try:
        worker.wait_ready()
        now = time.time()
        first = (int(now / W) - 12) * W
        for k in range(10):  # history: ten calm windows, event time in the past
            window(first + k * W)
        producer.flush()
        start = sleep_to_window_start()
        window(start)
        producer.flush()
        burst_start = sleep_to_window_start()
        window(burst_start, burst=True)  # WFC and AAPL news turn negative in this window
        producer.flush()
        for _ in range(3):
            calm_start = sleep_to_window_start()
            window(calm_start)
            producer.flush()
        wait_until(lambda: any(a.status == "resolved" for a in alerts_in_store(settings, rule)), 20, "alert resolved", worker)
    finally:
        producer.close()
        worker.stop()

    alerts = alerts_in_store(settings, rule)
    assert [a.labels for a in alerts] == [{"entity": BURST_ENTITY}], "one alert, on the watched company only"
    alert = alerts[0]
    assert alert.window_start == burst_start and alert.share >= 0.9 and alert.baseline_mean < 0.3
    assert alert.examples and {e["id"] for e in alert.examples} <= burst_ids
    assert json.loads(alert.key) == {"entity": BURST_ENTITY}
