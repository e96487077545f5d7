"""Every SQL statement the dashboard runs, and the ``labels`` table it owns.

The pages never build SQL: they call these functions with Python values, which
reach ClickHouse as ``%(name)s`` parameters escaped by the store. Aggregation
happens in ClickHouse so a page costs the same few rows at 10k or 1M messages.
Times cross the boundary as UTC epoch seconds (``toDateTime(int)``), which
avoids the server's time zone entirely. ``messages`` is read with FINAL: a
redelivered message (same id) counts once. All SQL runs on ClickHouse 18.16 and
chDB 26.x alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

LABEL_TASKS = ("topic", "sentiment")
SERIES_KEYS = {"topic": "topic", "source": "source"}
FILTER_COLUMNS = {"topic": "topic", "sentiment": "sentiment", "source": "source", "channel": "channel"}
PROB_COLUMNS = {"topic": "topic_prob", "sentiment": "sentiment_prob"}

DDL: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS labels (
        message_id String,
        task String,
        label String,
        text String,
        labeled_by String,
        labeled_at DateTime('UTC')
    ) ENGINE = MergeTree
    PARTITION BY toYYYYMM(labeled_at)
    ORDER BY (task, message_id, labeled_at)
    """,
]


class Queryable(Protocol):
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def write_batch(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None: ...


def epoch(ts: datetime) -> int:
    """Aware datetime → UTC epoch seconds (naive datetimes are taken as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return int(ts.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc)


def _window(start: datetime, end: datetime) -> dict[str, int]:
    return {"start": epoch(start), "end": epoch(end)}


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
        {**_window(start, end), "baseline_start": epoch(baseline_start), "min_n": int(min_messages), "limit": int(limit)},
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
            params["start"] = epoch(self.start)
        if self.end is not None:
            message.append("ts < toDateTime(%(end)s)")
            params["end"] = epoch(self.end)
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
    """Example messages in a window matching an alert key (topic/source/channel/sentiment parts)."""
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
        WHERE id NOT IN (SELECT message_id FROM labels WHERE task = %(task)s)
        ORDER BY {prob} ASC, ts DESC, id
        LIMIT %(limit)s
        """,
        {"task": task, "limit": int(limit), "since": epoch(since) if since is not None else 0},
    ))


def add_label(store: Queryable, *, message_id: str, task: str, label: str, text: str, user: str) -> dict[str, Any]:
    """Store one analyst verdict (a correction or a confirmation) with who and when."""
    if task not in LABEL_TASKS:
        raise ValueError(f"label task {task!r} is not one of {LABEL_TASKS}")
    if not label or not user:
        raise ValueError("a label needs a value and the analyst's name")
    row = {
        "message_id": message_id,
        "task": task,
        "label": label,
        "text": text,
        "labeled_by": user,
        "labeled_at": datetime.now(timezone.utc).replace(microsecond=0),
    }
    store.write_batch("labels", [row])
    return row


def recent_labels(store: Queryable, limit: int = 50) -> list[dict[str, Any]]:
    return store.query(
        """
        SELECT message_id, task, label, labeled_by, toUInt32(labeled_at) AS labeled_at, text
        FROM labels ORDER BY labeled_at DESC, message_id LIMIT %(limit)s
        """,
        {"limit": int(limit)},
    )


def label_counts(store: Queryable) -> list[dict[str, Any]]:
    return store.query("SELECT task, label, count() AS n FROM labels GROUP BY task, label ORDER BY task, n DESC")


# --- alerts (tables owned by riskpulse.streams.store.alerts) ---------------------------------------------
ALERT_DELIVERIES = """
    SELECT alert_id,
           countIf(status = 'delivered') AS delivered,
           countIf(status = 'pending') AS pending,
           countIf(status = 'dead') AS failed,
           max(attempts) AS attempts
    FROM (
        SELECT status, attempts, arrayJoin(extractAll(alert_states, '"([^"]+)":')) AS alert_id
        FROM alert_outbox FINAL
    ) AS o
    GROUP BY alert_id
"""


def alerts(store: Queryable, since: datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Open alerts and alerts updated since ``since``: evidence, ack and webhook delivery counts.

    Open ones first, newest first. 18.16 allows one JOIN per SELECT, hence the nesting.
    """
    rows = store.query(
        f"""
        SELECT * FROM (
            SELECT alert_id, rule, key, labels, severity, status,
                   toUInt32(opened_at) AS opened_s, toUInt32(updated_at) AS updated_s,
                   toUInt32(resolved_at) AS resolved_s,
                   toUInt32(window_start) AS window_start_s, toUInt32(window_end) AS window_end_s,
                   count, negatives, share, baseline_mean, baseline_std, z, peak_z, examples, model_versions,
                   last_acked_by AS acked_by, acked_s
            FROM (
                SELECT * FROM alerts FINAL
                WHERE status = 'open' OR updated_at >= toDateTime(%(since)s)
            ) AS a
            ANY LEFT JOIN (
                SELECT alert_id, argMax(acked_by, acked_at) AS last_acked_by, toUInt32(max(acked_at)) AS acked_s
                FROM alert_acks GROUP BY alert_id
            ) AS k USING alert_id
        ) AS ak
        ANY LEFT JOIN ({ALERT_DELIVERIES}) AS d USING alert_id
        ORDER BY status = 'open' DESC, opened_s DESC, alert_id
        LIMIT %(limit)s
        """,
        {"since": epoch(since), "limit": int(limit)},
    )
    for row in rows:
        for name in ("opened", "updated", "window_start", "window_end"):
            row[f"{name}_at" if name in ("opened", "updated") else name] = from_epoch(row.pop(f"{name}_s"))
        for name in ("resolved", "acked"):
            seconds = row.pop(f"{name}_s")
            row[f"{name}_at"] = from_epoch(seconds) if seconds else None
        row["labels"] = json.loads(row["labels"] or "{}")
        row["examples"] = json.loads(row["examples"] or "[]")
        row["model_versions"] = json.loads(row["model_versions"] or "[]")
    return rows


def ack_alert(store: Queryable, alert_id: str, user: str, note: str = "") -> None:
    """Record that ``user`` has seen the alert (the alerts module owns the table and its row shape)."""
    from riskpulse.streams.store.alerts import AlertRepo

    if not user:
        raise ValueError("an acknowledgement needs the analyst's name")
    AlertRepo(store).ack(alert_id, user, note)


# --- retraining (table owned by riskpulse.models.retraining.retrainer) --------------------------------------------
def table_exists(store: Queryable, name: str) -> bool:
    rows = store.query(
        "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = %(name)s", {"name": name}
    )
    return bool(rows and rows[0]["n"])


def retrain_runs(store: Queryable, limit: int = 20) -> list[dict[str, Any]] | None:
    """Latest retraining runs, newest first; None before the retraining table exists."""
    if not table_exists(store, "retrain_runs"):
        return None
    from riskpulse.models.retraining.retrainer import recent_runs

    rows = recent_runs(store, limit)
    for row in rows:
        for name in ("started", "finished"):
            seconds = row.pop(f"{name}_s", 0)
            row[f"{name}_at"] = from_epoch(seconds) if seconds else None
        row.pop("labels_since_s", None)
        row.pop("labels_until_s", None)
    return rows
