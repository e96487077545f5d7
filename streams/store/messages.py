"""The ``messages`` and ``dead_letters`` tables: their DDL, columns, keys and row mapping.

Both are ReplacingMergeTree tables keyed on what makes a record unique, so a redelivered
message or dead letter replaces itself instead of counting twice (read with FINAL).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from riskpulse.core.clock import utc
from riskpulse.core.schema import DeadLetter, ScoredMessage

if TYPE_CHECKING:  # backends imports this module's KEYS
    from riskpulse.streams.store.backends import Queryable

MESSAGES_TABLE = "messages"
DEAD_LETTERS_TABLE = "dead_letters"

MESSAGE_COLUMNS = (
    "id", "source", "channel", "lang", "ts", "text", "meta", "topic", "topic_prob",
    "sentiment", "sentiment_prob", "model_version", "processed_at", "story_id", "pii",
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
        processed_at DateTime('UTC'),
        story_id String DEFAULT id,
        pii Array(String)
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

# Columns that tables created before them lack (see migrate.py); rows stored before stories existed are their own story.
# pii: the kinds of personal data masked out of the row's text and meta (older rows: empty, never masked).
ADDED_COLUMNS: list[tuple[str, str, str]] = [
    (MESSAGES_TABLE, "story_id", "String DEFAULT id"), (MESSAGES_TABLE, "pii", "Array(String)"),
]


def message_row(message: ScoredMessage) -> dict[str, Any]:
    """A scored message as a ``messages`` row (meta as JSON text, times as aware UTC)."""
    return {
        "id": message.id, "source": message.source, "channel": message.channel, "lang": message.lang,
        "ts": utc(message.ts), "text": message.text, "meta": json.dumps(message.meta, default=str, sort_keys=True),
        "topic": message.topic, "topic_prob": float(message.topic_prob), "sentiment": message.sentiment,
        "sentiment_prob": float(message.sentiment_prob), "model_version": message.model_version,
        "processed_at": utc(message.processed_at), "story_id": message.story_id, "pii": list(message.pii),
    }


def dead_letter_row(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as a ``dead_letters`` row: where it was in Kafka, why, and its bytes."""
    return {
        "reason": letter.reason, "topic": letter.topic, "partition": letter.partition, "offset": letter.offset,
        "raw_b64": letter.raw_b64, "failed_at": utc(letter.failed_at),
    }


def recent_stories(store: Queryable, horizon_s: float, limit: int) -> list[tuple[str, str, float, str]]:
    """(id, story id, event time, text) of the newest ``limit`` messages within ``horizon_s`` of event time
    before the newest one (at most an hour ahead of now: a producer's broken clock must not hide the rest),
    oldest first: what a story index needs to pick up where it stopped."""
    rows = store.query(
        "SELECT id, story_id, toUInt32(ts) AS epoch, text FROM messages FINAL "
        "WHERE ts >= (SELECT least(max(ts), now() + 3600) FROM messages) - %(horizon)s "
        "ORDER BY ts DESC, id DESC LIMIT %(limit)s",
        {"horizon": int(horizon_s), "limit": int(limit)},
    )
    return [(r["id"], r["story_id"], float(r["epoch"]), r["text"]) for r in reversed(rows)]


def stored_since(store: Queryable, processed_since: datetime, oldest_ts: datetime) -> list[tuple[str, str, float, str]]:
    """(id, story id, event time, text) of messages stored (by any worker) since ``processed_since`` with event
    time from ``oldest_ts`` on (which prunes old monthly partitions), in the order they were stored."""
    rows = store.query(
        "SELECT id, story_id, toUInt32(ts) AS epoch, text FROM messages "
        "WHERE processed_at >= %(since)s AND ts >= %(oldest)s ORDER BY processed_at, ts, id",
        {"since": processed_since, "oldest": oldest_ts},
    )
    return [(r["id"], r["story_id"], float(r["epoch"]), r["text"]) for r in rows]
