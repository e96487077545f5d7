"""The ``entity_mentions`` table: which company, bank or ticker each scored message names, and where.

One row per mention (a message naming Apple twice has two), written by the worker in the same step as
the message itself, before its offset is acked. ReplacingMergeTree keyed on (entity, event time,
message, span start): a redelivered batch replaces its rows instead of counting twice. The queries
count distinct messages (``uniqExact``), so they need no FINAL. The message's sentiment is copied onto
each row, so "negative share of JPMorgan" is one scan of this table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from riskpulse.core.clock import utc
from riskpulse.core.schema import ScoredMessage
from riskpulse.streams.store.backends import Queryable

ENTITY_MENTIONS_TABLE = "entity_mentions"

DDL: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS entity_mentions (
        message_id String,
        entity_id String,
        name String,
        span_start UInt32,
        span_end UInt32,
        sentiment String,
        sentiment_prob Float32,
        topic String,
        source String,
        channel String,
        ts DateTime('UTC'),
        processed_at DateTime('UTC')
    ) ENGINE = ReplacingMergeTree(processed_at)
    PARTITION BY toYYYYMM(ts)
    ORDER BY (entity_id, ts, message_id, span_start)
    """,
]


class SpanLike(Protocol):
    """What a row needs of a mention (``riskpulse.streams.enrich.entities.Mention``)."""

    entity_id: str
    name: str
    start: int
    end: int


def mention_rows(message: ScoredMessage, mentions: Sequence[SpanLike]) -> list[dict[str, Any]]:
    """One ``entity_mentions`` row per mention of a scored message."""
    ts, processed_at = utc(message.ts), utc(message.processed_at)
    return [
        {
            "message_id": message.id, "entity_id": m.entity_id, "name": m.name, "span_start": m.start, "span_end": m.end,
            "sentiment": message.sentiment, "sentiment_prob": float(message.sentiment_prob), "topic": message.topic,
            "source": message.source, "channel": message.channel, "ts": ts, "processed_at": processed_at,
        }
        for m in mentions
    ]


def _range(start: datetime, end: datetime) -> dict[str, int]:
    return {"start": int(utc(start).timestamp()), "end": int(utc(end).timestamp())}


def movers(store: Queryable, start: datetime, end: datetime, baseline_start: datetime, min_messages: int = 3,
           limit: int = 20) -> list[dict[str, Any]]:
    """Entities by how far their negative share in [start, end) rose above their own share in
    [baseline_start, start): the companies whose news turned. An entity new in the window has a
    baseline of 0. Counts are distinct messages."""
    params = _range(start, end) | {"baseline": int(utc(baseline_start).timestamp()), "min": int(min_messages),
                                   "limit": int(limit)}
    return store.query(
        """
        SELECT entity_id, any(name) AS name,
               uniqExactIf(message_id, ts >= toDateTime(%(start)s)) AS messages,
               uniqExactIf(message_id, ts >= toDateTime(%(start)s) AND sentiment = 'negative') AS negatives,
               uniqExactIf(message_id, ts < toDateTime(%(start)s)) AS baseline_messages,
               uniqExactIf(message_id, ts < toDateTime(%(start)s) AND sentiment = 'negative') AS baseline_negatives,
               negatives / messages AS share,
               if(baseline_messages > 0, baseline_negatives / baseline_messages, 0) AS baseline_share,
               share - baseline_share AS change
        FROM entity_mentions
        WHERE ts >= toDateTime(%(baseline)s) AND ts < toDateTime(%(end)s)
        GROUP BY entity_id
        HAVING messages >= %(min)s
        ORDER BY change DESC, negatives DESC, entity_id
        LIMIT %(limit)s
        """,
        params,
    )


def series(store: Queryable, entity_id: str, start: datetime, end: datetime, bucket_s: int) -> list[dict[str, Any]]:
    """Messages naming the entity per time bucket, by sentiment (``intDiv`` buckets: 18.16 has no toStartOfInterval)."""
    return store.query(
        """
        SELECT toDateTime(intDiv(toUInt32(ts), %(bucket)s) * %(bucket)s) AS bucket, sentiment,
               uniqExact(message_id) AS messages
        FROM entity_mentions
        WHERE entity_id = %(entity)s AND ts >= toDateTime(%(start)s) AND ts < toDateTime(%(end)s)
        GROUP BY bucket, sentiment
        ORDER BY bucket, sentiment
        """,
        _range(start, end) | {"entity": entity_id, "bucket": int(bucket_s)},
    )


def messages(store: Queryable, entity_id: str, start: datetime, end: datetime, limit: int = 100) -> list[dict[str, Any]]:
    """The stored messages that name the entity, newest first."""
    return store.query(
        """
        SELECT id, ts, source, channel, topic, sentiment, sentiment_prob, text
        FROM messages FINAL
        WHERE id IN (
            SELECT message_id FROM entity_mentions
            WHERE entity_id = %(entity)s AND ts >= toDateTime(%(start)s) AND ts < toDateTime(%(end)s)
        )
        ORDER BY ts DESC, id
        LIMIT %(limit)s
        """,
        _range(start, end) | {"entity": entity_id, "limit": int(limit)},
    )


def alert_key(entity_id: str) -> str:
    """The alert key an entity rule (``key: [entity]``) gives this entity (see ``Rule.key_of``)."""
    return json.dumps({"entity": entity_id}, ensure_ascii=False)


def alerts(store: Queryable, entity_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The alerts raised on this entity by entity rules, newest first."""
    return store.query(
        """
        SELECT alert_id, rule, status, severity, opened_at, updated_at, share, baseline_mean, z, `count` AS messages
        FROM alerts FINAL
        WHERE key = %(key)s
        ORDER BY opened_at DESC, alert_id
        LIMIT %(limit)s
        """,
        {"key": alert_key(entity_id), "limit": int(limit)},
    )


def entity_names(store: Queryable, limit: int = 2000) -> list[dict[str, Any]]:
    """Every entity with mentions stored, most mentioned first (for a picker)."""
    return store.query(
        "SELECT entity_id, any(name) AS name, uniqExact(message_id) AS messages FROM entity_mentions "
        "GROUP BY entity_id ORDER BY messages DESC, entity_id LIMIT %(limit)s",
        {"limit": int(limit)},
    )
