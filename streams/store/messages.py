"""The ``messages`` and ``dead_letters`` tables: their DDL, columns, keys and row mapping.

Both are ReplacingMergeTree tables keyed on what makes a record unique, so a redelivered
message or dead letter replaces itself instead of counting twice (read with FINAL).
"""

from __future__ import annotations

import json
from typing import Any

from riskpulse.core.clock import utc
from riskpulse.core.schema import DeadLetter, ScoredMessage

MESSAGES_TABLE = "messages"
DEAD_LETTERS_TABLE = "dead_letters"

MESSAGE_COLUMNS = (
    "id", "source", "channel", "lang", "ts", "text", "meta", "topic", "topic_prob",
    "sentiment", "sentiment_prob", "model_version", "processed_at",
)
DEAD_LETTER_COLUMNS = ("reason", "topic", "partition", "offset", "raw_b64", "failed_at")

# What makes a row unique: each table's ORDER BY, which ReplacingMergeTree deduplicates on.
KEYS = {MESSAGES_TABLE: ("id",), DEAD_LETTERS_TABLE: ("topic", "partition", "offset")}

DDL: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS messages (
        id String,
        source String,
        channel String,
        lang String,
        ts DateTime('UTC'),
        text String,
        meta String,
        topic String,
        topic_prob Float32,
        sentiment String,
        sentiment_prob Float32,
        model_version String,
        processed_at DateTime('UTC')
    ) ENGINE = ReplacingMergeTree(processed_at)
    PARTITION BY toYYYYMM(ts)
    ORDER BY id
    """,
    """
    CREATE TABLE IF NOT EXISTS dead_letters (
        reason String,
        `topic` String,
        `partition` UInt32,
        `offset` UInt64,
        raw_b64 String,
        failed_at DateTime('UTC')
    ) ENGINE = ReplacingMergeTree(failed_at)
    ORDER BY (`topic`, `partition`, `offset`)
    """,
]


def message_row(message: ScoredMessage) -> dict[str, Any]:
    """A scored message as a ``messages`` row (meta as JSON text, times as aware UTC)."""
    return {
        "id": message.id, "source": message.source, "channel": message.channel, "lang": message.lang,
        "ts": utc(message.ts), "text": message.text, "meta": json.dumps(message.meta, default=str, sort_keys=True),
        "topic": message.topic, "topic_prob": float(message.topic_prob), "sentiment": message.sentiment,
        "sentiment_prob": float(message.sentiment_prob), "model_version": message.model_version,
        "processed_at": utc(message.processed_at),
    }


def dead_letter_row(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as a ``dead_letters`` row: where it was in Kafka, why, and its bytes."""
    return {
        "reason": letter.reason, "topic": letter.topic, "partition": letter.partition, "offset": letter.offset,
        "raw_b64": letter.raw_b64, "failed_at": utc(letter.failed_at),
    }
