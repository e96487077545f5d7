"""The dashboard's own reads of ``messages``: series, movers, filters, examples, the label queue.

The pages never build SQL: they call these functions (or the table modules under
:mod:`riskpulse.streams.store`, which own labels, alerts and retraining runs) with Python
values, which reach ClickHouse as ``%(name)s`` parameters escaped by the store. Aggregation
happens in ClickHouse so a page costs the same few rows at 10k or 1M messages.
Times cross the boundary as UTC epoch seconds (``toDateTime(int)``), which
avoids the server's time zone entirely. ``messages`` is read with FINAL: a
redelivered message (same id) counts once. All SQL runs on ClickHouse 18.16 and
chDB 26.x alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from riskpulse.core.clock import from_epoch, to_epoch
from riskpulse.streams.store.backends import Queryable, table_exists
from riskpulse.streams.store.labels import LABELLED_IDS
from riskpulse.streams.store.retrain_runs import RUNS_TABLE, recent_runs

SERIES_KEYS = {"topic": "topic", "source": "source"}
FILTER_COLUMNS = {"topic": "topic", "sentiment": "sentiment", "source": "source", "channel": "channel"}
PROB_COLUMNS = {"topic": "topic_prob", "sentiment": "sentiment_prob"}


def _window(start: datetime, end: datetime) -> dict[str, int]:
    return {"start": to_epoch(start), "end": to_epoch(end)}


# Time bounds go in PREWHERE: rows outside the window are dropped before FINAL merges
# versions, which is 5x faster at 1M rows and exact because every version of a message
# (same id) carries the same event time (see Filters.where).
IN_WINDOW = "PREWHERE ts >= toDateTime(%(start)s) AND ts < toDateTime(%(end)s)"


def data_bounds(store: Queryable) -> tuple[datetime, datetime] | None:
    """First and last message time, or None when nothing is stored yet (no FINAL: duplicates cannot move them)."""
    rows = store.query(
        "SELECT count() AS n, toUInt32(min(ts)) AS first, toUInt32(max(ts)) AS last FROM messages"
    )
    if not rows or not rows[0]["n"]:
        return None
    return from_epoch(rows[0]["first"]), from_epoch(rows[0]["last"])


def series(store: Queryable, start: datetime, end: datetime, bucket_s: int, by: str) -> list[dict[str, Any]]:
    """Messages and negatives per time bucket and per topic (or source)."""
    key = SERIES_KEYS[by]
    rows = store.query(
        f"""
        SELECT toUInt32(intDiv(toUInt32(ts), %(bucket)s) * %(bucket)s) AS bucket,
               {key} AS key,
               count() AS messages,
               countIf(sentiment = 'negative') AS negative
        FROM messages FINAL
        {IN_WINDOW}
        GROUP BY bucket, key
        ORDER BY bucket, key
        """,
        {**_window(start, end), "bucket": int(bucket_s)},
    )
    for row in rows:
        row["bucket"] = from_epoch(row["bucket"])
        row["negative_share"] = row["negative"] / row["messages"] if row["messages"] else 0.0
    return rows


def sentiment_counts(store: Queryable, start: datetime, end: datetime) -> dict[str, int]:
    rows = store.query(
        f"SELECT sentiment, count() AS n FROM messages FINAL {IN_WINDOW} GROUP BY sentiment ORDER BY sentiment",
        _window(start, end),
    )
    return {row["sentiment"]: int(row["n"]) for row in rows}


def movers(
    store: Queryable, start: datetime, end: datetime, baseline_start: datetime, *, min_messages: int = 5, limit: int = 10
) -> list[dict[str, Any]]:
    """Topics whose negative share in [start, end) moved most against [baseline_start, start)."""
    return store.query(
        """
        SELECT topic, current_n, current_neg, baseline_n, baseline_neg,
               current_neg / current_n AS current_share,
               if(baseline_n > 0, baseline_neg / baseline_n, 0) AS baseline_share,
               current_share - baseline_share AS delta
        FROM (
            SELECT topic,
                   countIf(ts >= toDateTime(%(start)s)) AS current_n,
                   countIf(ts >= toDateTime(%(start)s) AND sentiment = 'negative') AS current_neg,
                   countIf(ts < toDateTime(%(start)s)) AS baseline_n,
                   countIf(ts < toDateTime(%(start)s) AND sentiment = 'negative') AS baseline_neg
            FROM messages FINAL
            PREWHERE ts >= toDateTime(%(baseline_start)s) AND ts < toDateTime(%(end)s)
            GROUP BY topic
        )
        WHERE current_n >= %(min_n)s
        ORDER BY abs(delta) DESC, topic
        LIMIT %(limit)s
        """,
        {**_window(start, end), "baseline_start": to_epoch(baseline_start), "min_n": int(min_messages), "limit": int(limit)},
    )


def distinct_values(store: Queryable, column: str, limit: int = 500) -> list[str]:
    """Values seen in one filterable column, most frequent first (for the filter pickers).

    No FINAL: a duplicate cannot add a value, and skipping the merge keeps pickers cheap.
    """
    name = FILTER_COLUMNS[column]
    rows = store.query(
        f"SELECT {name} AS value, count() AS n FROM messages GROUP BY value ORDER BY n DESC, value LIMIT %(limit)s",
        {"limit": int(limit)},
    )
    return [row["value"] for row in rows]


@dataclass(frozen=True)
class Filters:
    """What the Explore page narrows messages by; empty fields do not filter."""

    text: str = ""
    topics: tuple[str, ...] = ()
    sentiments: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    min_confidence: float = 0.0
    max_confidence: float = 1.0
    entity: str = ""  # only messages naming this entity id (an entity alert's key)

    def where(self) -> tuple[str, dict[str, Any]]:
        """PREWHERE/WHERE made only of fixed fragments, and the parameters they name.

        What a message *is* (time, text, source, channel) is the same in every stored version
        of it, so it filters in PREWHERE, before FINAL; scores can differ between versions
        (a re-scored message), so they filter in WHERE, after FINAL picked the latest.
        """
        message: list[str] = []
        scores: list[str] = []
        params: dict[str, Any] = {}
        if self.text.strip():
            message.append("positionCaseInsensitiveUTF8(text, %(text)s) > 0")
            params["text"] = self.text.strip()
        for name, column, values, where in (
            ("sources", "source", self.sources, message),
            ("channels", "channel", self.channels, message),
            ("topics", "topic", self.topics, scores),
            ("sentiments", "sentiment", self.sentiments, scores),
        ):
            if values:
                where.append(f"has(%({name})s, {column})")
                params[name] = [str(v) for v in values]
        if self.start is not None:
            message.append("ts >= toDateTime(%(start)s)")
            params["start"] = to_epoch(self.start)
        if self.end is not None:
            message.append("ts < toDateTime(%(end)s)")
            params["end"] = to_epoch(self.end)
        if self.entity:
            scores.append("id IN (SELECT message_id FROM entity_mentions WHERE entity_id = %(entity)s)")
            params["entity"] = self.entity
        if self.min_confidence > 0:
            scores.append("least(topic_prob, sentiment_prob) >= %(min_conf)s")
            params["min_conf"] = float(self.min_confidence)
        if self.max_confidence < 1:
            scores.append("least(topic_prob, sentiment_prob) <= %(max_conf)s")
            params["max_conf"] = float(self.max_confidence)
        sql = f"PREWHERE {' AND '.join(message)} " if message else ""
        return sql + f"WHERE {' AND '.join(scores) or '1'}", params


MESSAGE_COLUMNS = (
    "id, toUInt32(ts) AS ts_epoch, source, channel, topic, topic_prob, sentiment, sentiment_prob, model_version, text"
)


def _with_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["ts"] = from_epoch(row.pop("ts_epoch"))
    return rows


def explore(store: Queryable, filters: Filters, limit: int = 200) -> tuple[int, list[dict[str, Any]]]:
    """(number of matches, newest ``limit`` matching messages with their scores)."""
    where, params = filters.where()
    total = store.query(f"SELECT count() AS n FROM messages FINAL {where}", params)
    rows = store.query(
        f"SELECT {MESSAGE_COLUMNS} FROM messages FINAL {where} ORDER BY ts DESC, id LIMIT %(limit)s",
        {**params, "limit": int(limit)},
    )
    return (int(total[0]["n"]) if total else 0), _with_times(rows)


def messages_around(
    store: Queryable, start: datetime, end: datetime, *, key: Mapping[str, str], limit: int = 20
) -> list[dict[str, Any]]:
    """Example messages in a window matching an alert key (topic/source/channel/entity/sentiment parts)."""
    return explore(store, _key_filters(start, end, key, with_sentiment=True), limit=limit)[1]


def _key_filters(start: datetime, end: datetime, key: Mapping[str, str], *, with_sentiment: bool) -> Filters:
    """Filters selecting what an alert key covers; its empty parts match everything."""

    def part(name: str) -> tuple[str, ...]:
        return tuple(filter(None, [key.get(name, "")]))

    return Filters(
        start=start,
        end=end,
        topics=part("topic"),
        sources=part("source"),
        channels=part("channel"),
        sentiments=part("sentiment") if with_sentiment else (),
        entity=key.get("entity", ""),
    )


def key_series(
    store: Queryable, start: datetime, end: datetime, bucket_s: int, *, key: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Volume and negative share per bucket for the messages an alert key covers (all sentiments)."""
    filters = _key_filters(start, end, key, with_sentiment=False)
    where, params = filters.where()
    rows = store.query(
        f"""
        SELECT toUInt32(intDiv(toUInt32(ts), %(bucket)s) * %(bucket)s) AS bucket,
               count() AS messages, countIf(sentiment = 'negative') AS negative
        FROM messages FINAL {where}
        GROUP BY bucket ORDER BY bucket
        """,
        {**params, "bucket": int(bucket_s)},
    )
    for row in rows:
        row["bucket"] = from_epoch(row["bucket"])
        row["negative_share"] = row["negative"] / row["messages"] if row["messages"] else 0.0
    return rows


def label_queue(store: Queryable, task: str, limit: int = 20, since: datetime | None = None) -> list[dict[str, Any]]:
    """Unlabelled messages (since ``since``) the model is least sure of for ``task``: active learning."""
    prob = PROB_COLUMNS[task]
    recent = "PREWHERE ts >= toDateTime(%(since)s)" if since is not None else ""
    return _with_times(store.query(
        f"""
        SELECT {MESSAGE_COLUMNS} FROM messages FINAL
        {recent}
        WHERE id NOT IN ({LABELLED_IDS})
        ORDER BY {prob} ASC, ts DESC, id
        LIMIT %(limit)s
        """,
        {"task": task, "limit": int(limit), "since": to_epoch(since) if since is not None else 0},
    ))


def retrain_runs(store: Queryable, limit: int = 20) -> list[dict[str, Any]] | None:
    """Latest retraining runs, newest first; None before the retraining table exists."""
    if not table_exists(store, RUNS_TABLE):
        return None
    rows = recent_runs(store, limit)
    for row in rows:
        for name in ("started", "finished"):
            seconds = row.pop(f"{name}_s", 0)
            row[f"{name}_at"] = from_epoch(seconds) if seconds else None
        row.pop("labels_since_s", None)
        row.pop("labels_until_s", None)
    return rows
