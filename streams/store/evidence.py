"""What the store holds about one alert's window and the span before it: the reads behind an explanation.

An alert names a rule's key (``{"topic": …}``, ``{"entity": …}``, or several fields); these queries select
the stored messages that key counted — the same field values, and for ``entity`` the messages whose
mentions name it — in ``[start, end)`` of event time. Every query is bounded (aggregates, or a ``LIMIT``),
so explaining an alert on a busy topic stays a few small scans; texts are read as stored (masked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from riskpulse.streams.store.backends import Queryable

MESSAGE_FIELDS = ("topic", "source", "channel")


def _selection(labels: Mapping[str, str], start: int, end: int) -> tuple[str, dict[str, Any]]:
    """SQL conditions on ``messages`` for the key's labels in ``[start, end)``, and their parameters."""
    params: dict[str, Any] = {"start": int(start), "end": int(end)}
    conditions = ["ts >= toDateTime(%(start)s)", "ts < toDateTime(%(end)s)"]
    for name in MESSAGE_FIELDS:
        if name in labels:
            conditions.append(f"{name} = %(f_{name})s")
            params[f"f_{name}"] = labels[name]
    if "entity" in labels:
        conditions.append(
            "id IN (SELECT message_id FROM entity_mentions WHERE entity_id = %(f_entity)s "
            "AND ts >= toDateTime(%(start)s) AND ts < toDateTime(%(end)s))"
        )
        params["f_entity"] = labels["entity"]
    return " AND ".join(conditions), params


def totals_by_channel(store: Queryable, labels: Mapping[str, str], start: int, end: int) -> list[dict[str, Any]]:
    """Messages, negative messages, stories and the first event time (epoch s) of the key per (source, channel)
    in ``[start, end)``."""
    where, params = _selection(labels, start, end)
    return store.query(
        f"""
        SELECT source, channel, count() AS messages, countIf(sentiment = 'negative') AS negatives,
               uniqExact(story_id) AS stories, toUInt32(min(ts)) AS first_s
        FROM (SELECT * FROM messages FINAL WHERE {where}) AS m
        GROUP BY source, channel
        ORDER BY messages DESC, source, channel
        """,
        params,
    )


def story_texts(store: Queryable, labels: Mapping[str, str], start: int, end: int, limit: int) -> list[str]:
    """One text per story of the key in ``[start, end)`` (its most confident copy), at most ``limit``, drawn by
    a hash of the story id so a reread draws the same ones: what term counts are made from."""
    where, params = _selection(labels, start, end)
    rows = store.query(
        f"""
        SELECT story_id, argMax(text, sentiment_prob) AS text
        FROM (SELECT * FROM messages FINAL WHERE {where}) AS m
        GROUP BY story_id
        ORDER BY cityHash64(story_id)
        LIMIT %(limit)s
        """,
        {**params, "limit": int(limit)},
    )
    return [r["text"] for r in rows]


def negative_messages(store: Queryable, labels: Mapping[str, str], start: int, end: int, limit: int) -> list[dict[str, Any]]:
    """The key's negative messages in ``[start, end)``, most confident first (at most ``limit``)."""
    where, params = _selection(labels, start, end)
    return store.query(
        f"""
        SELECT id, story_id, toUInt32(ts) AS ts_s, source, channel, topic, sentiment_prob, text
        FROM (SELECT * FROM messages FINAL WHERE {where} AND sentiment = 'negative') AS m
        ORDER BY sentiment_prob DESC, ts, id
        LIMIT %(limit)s
        """,
        {**params, "limit": int(limit)},
    )


def story_sizes(store: Queryable, story_ids: list[str], start: int, end: int) -> dict[str, int]:
    """How many stored copies each story has in ``[start, end)`` (any key)."""
    if not story_ids:
        return {}
    rows = store.query(
        "SELECT story_id, count() AS copies FROM (SELECT story_id FROM messages FINAL WHERE story_id IN %(ids)s "
        "AND ts >= toDateTime(%(start)s) AND ts < toDateTime(%(end)s)) AS m GROUP BY story_id",
        {"ids": tuple(story_ids), "start": int(start), "end": int(end)},
    )
    return {r["story_id"]: int(r["copies"]) for r in rows}


def entities_named(store: Queryable, labels: Mapping[str, str], start: int, end: int, limit: int) -> list[dict[str, Any]]:
    """The entities the key's messages in ``[start, end)`` name, by how many of those messages name them."""
    where, params = _selection(labels, start, end)
    return store.query(
        f"""
        SELECT entity_id, any(name) AS name, uniqExact(message_id) AS messages,
               uniqExactIf(message_id, sentiment = 'negative') AS negatives
        FROM entity_mentions
        WHERE ts >= toDateTime(%(start)s) AND ts < toDateTime(%(end)s)
          AND message_id IN (SELECT id FROM messages FINAL WHERE {where})
        GROUP BY entity_id
        ORDER BY messages DESC, negatives DESC, entity_id
        LIMIT %(limit)s
        """,
        {**params, "limit": int(limit)},
    )
