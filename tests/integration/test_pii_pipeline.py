"""PII never reaches ClickHouse or the scored topic: labelled customer messages (and broken records
carrying card numbers) go through the real broker and a `riskpulse worker` into the ClickHouse
server; the stored rows, dead letters and both output topics are searched for every planted value.
The worker runs the null model: masking is the worker's step before classification, so the test
needs no trained model and stays short."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import datetime, timezone

import pytest

from riskpulse.core.schema import Message
from riskpulse.core.settings import Settings
from riskpulse.streams.topics import ensure_topics
from tests import pii_corpus
from tests.integration.pipeline_support import Worker, produce_mixed, run_settings, wait_drained

pytestmark = pytest.mark.integration

N_MESSAGES = 300


def _messages(tag: str) -> tuple[list[Message], list[str]]:
    """Customer messages from the labelled set, a planted e-mail in the meta of every tenth; and the planted values."""
    now = datetime.now(timezone.utc)
    labelled = pii_corpus.build(N_MESSAGES, seed=29)
    messages, planted = [], []
    for index, item in enumerate(labelled):
        meta = {"contact": f"client{index}@example-bank.cn"} if index % 10 == 0 else {}
        messages.append(Message(id=f"{tag}-{item.id}", source="customer", channel=f"app-{index % 6}", lang=item.lang,
                                ts=now, text=item.text, meta=meta))
        planted += item.values() + list(meta.values())
    return messages, planted


def _broken_records(tag: str) -> tuple[list[bytes], list[str]]:
    """Records that cannot parse but hold personal data: they become dead letters, masked too."""
    cards = ["4111 1111 1111 1111", "5500-0000-0000-0004"]
    records = [
        f'{{"id": "{tag}-broken-0", "source": "customer", "text": "card {cards[0]}'.encode(),  # cut-off JSON
        f'{{"id": "{tag}-broken-1", "source": "customer", "text": "card {cards[1]} \xff"}}'.encode("latin-1"),  # bad UTF-8
    ]
    return records, cards


def _variants(value: str) -> set[str]:
    """The value as planted and, for numbers, as bare digits (a store must not keep either)."""
    digits = re.sub(r"\D", "", value)
    return {value} | ({digits} if len(digits) >= 8 else set())


def _topic_values(settings: Settings, topic: str) -> list[bytes]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        values: list[bytes] = []
        while any(consumer.position(p) < ends[p] for p in parts):
            for records in consumer.poll(timeout_ms=1000).values():
                values += [r.value for r in records]
        return values
    finally:
        consumer.close()


def test_planted_pii_is_found_nowhere_downstream(stack, server_store, tmp_path):
    tag = f"pii{uuid.uuid4().hex[:8]}"
    settings = run_settings(stack, tag, tmp_path / "registry")
    ensure_topics(settings)
    messages, planted = _messages(tag)
    broken, broken_values = _broken_records(tag)
    produce_mixed(settings, messages, broken)
    worker = Worker.start(settings, tmp_path / "worker.log", args=("--null-model",))
    try:
        wait_drained(settings, [worker])
    finally:
        assert worker.stop() == 0, worker.tail()

    rows = server_store.query("SELECT id, text, meta, pii FROM messages FINAL WHERE startsWith(id, %(tag)s)", {"tag": tag})
    assert len(rows) == N_MESSAGES
    dead = server_store.query("SELECT raw_b64 FROM dead_letters FINAL WHERE `topic` = %(t)s", {"t": settings.topic_raw})
    assert len(dead) == len(broken)
    stored = [row["text"] + "\n" + row["meta"] for row in rows]
    stored += [base64.b64decode(row["raw_b64"]).decode("utf-8", "replace") for row in dead]
    emitted = [value.decode("utf-8", "replace") for value in _topic_values(settings, settings.topic_scored)]
    emitted += [base64.b64decode(json.loads(value)["raw_b64"]).decode("utf-8", "replace")
                for value in _topic_values(settings, settings.topic_dead_letter)]
    assert len(emitted) == N_MESSAGES + len(broken)

    needles = {variant for value in planted + broken_values for variant in _variants(value)}
    assert len(needles) > N_MESSAGES  # more planted values than messages
    assert [n for n in needles if any(n in text for text in stored)] == [], "planted PII stored in ClickHouse"
    assert [n for n in needles if any(n in text for text in emitted)] == [], "planted PII emitted on a topic"

    # A row keeps the kinds masked out of it, and its text or meta shows a token for each.
    by_id = {row["id"]: row for row in rows}
    for message, item in zip(messages, pii_corpus.build(N_MESSAGES, seed=29)):
        row = by_id[message.id]
        assert bool(row["pii"]) == bool(item.spans or message.meta), row
        assert all(f"[{kind.upper()}]" in row["text"] + row["meta"] for kind in row["pii"]), row
