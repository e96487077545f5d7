"""The reads behind the daily digest: a day's and the week before's volume and negatives per entity and per
topic, and the alerts opened that day. Aggregates only, so a digest over a busy week stays a few scans.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from riskpulse.streams.store.backends import Queryable


def _days(day_start: int) -> dict[str, int]:
    return {"day": int(day_start), "next": int(day_start) + 86_400, "week": int(day_start) - 7 * 86_400}


def entity_days(store: Queryable, day_start: int, entity_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Per entity of ``entity_ids``: distinct messages and negative ones on the day from ``day_start`` (epoch s),
    and over the seven days before it."""
    if not entity_ids:
        return []
    return store.query(
        """
        SELECT entity_id, any(name) AS name,
               uniqExactIf(message_id, ts >= toDateTime(%(day)s)) AS messages,
               uniqExactIf(message_id, ts >= toDateTime(%(day)s) AND sentiment = 'negative') AS negatives,
               uniqExactIf(message_id, ts < toDateTime(%(day)s)) AS week_messages,
               uniqExactIf(message_id, ts < toDateTime(%(day)s) AND sentiment = 'negative') AS week_negatives
        FROM entity_mentions
        WHERE entity_id IN %(ids)s AND ts >= toDateTime(%(week)s) AND ts < toDateTime(%(next)s)
        GROUP BY entity_id
        """,
        {**_days(day_start), "ids": tuple(entity_ids)},
    )


def topic_days(store: Queryable, day_start: int) -> list[dict[str, Any]]:
    """Per topic: messages and negative ones on the day from ``day_start`` and over the seven days before it."""
    return store.query(
        """
        SELECT topic,
               countIf(ts >= toDateTime(%(day)s)) AS messages,
               countIf(ts >= toDateTime(%(day)s) AND sentiment = 'negative') AS negatives,
               countIf(ts < toDateTime(%(day)s)) AS week_messages,
               countIf(ts < toDateTime(%(day)s) AND sentiment = 'negative') AS week_negatives
        FROM (SELECT topic, ts, sentiment FROM messages FINAL
              WHERE ts >= toDateTime(%(week)s) AND ts < toDateTime(%(next)s)) AS m
        GROUP BY topic
        """,
        _days(day_start),
    )


def alerts_opened(store: Queryable, day_start: int) -> list[dict[str, Any]]:
    """The alerts opened on the day from ``day_start``: rule, labels (JSON text), severity."""
    return store.query(
        "SELECT alert_id, rule, labels, severity FROM alerts FINAL "
        "WHERE opened_at >= toDateTime(%(day)s) AND opened_at < toDateTime(%(next)s) ORDER BY opened_at, alert_id",
        _days(day_start),
    )
