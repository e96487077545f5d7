"""The alerts' tables in ClickHouse: their DDL, rows, and every read and write of them.

Every table but the acks is a ReplacingMergeTree keyed by its id with a wall-clock version,
so a write is "the new state of this row" and replays after a restart are harmless.
Reads use ``FINAL`` or ``argMax`` (both work on clickhouse-server 18.16 and chDB).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from riskpulse.core.clock import from_epoch, to_epoch
from riskpulse.streams.alerts.detector import TIME_FIELDS, Alert, KeyState
from riskpulse.streams.store.backends import Queryable

DDL = [
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id String, rule String, key String, labels String, severity String, status String,
        opened_at DateTime('UTC'), updated_at DateTime('UTC'), resolved_at DateTime('UTC'), window_start DateTime('UTC'), window_end DateTime('UTC'),
        count UInt32, negatives UInt32, share Float64, baseline_mean Float64, baseline_std Float64,
        z Float64, peak_z Float64, windows UInt32, examples String, model_versions String, version UInt64,
        explanation String
    ) ENGINE = ReplacingMergeTree(version) ORDER BY alert_id""",
    """CREATE TABLE IF NOT EXISTS alert_acks (
        alert_id String, acked_by String, note String, acked_at DateTime('UTC')
    ) ENGINE = MergeTree ORDER BY (alert_id, acked_at)""",
    """CREATE TABLE IF NOT EXISTS alert_state (
        rule String, key String, state String, version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (rule, key)""",
    """CREATE TABLE IF NOT EXISTS alert_outbox (
        delivery_id String, notification_id String, group_key String, rule String, url String, format String,
        body String, alert_states String, status String, attempts UInt32, last_error String,
        created_at DateTime('UTC'), seq UInt64, next_attempt_at Float64, updated_at DateTime('UTC'), version UInt64,
        retry_from Float64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY delivery_id""",
]
# retry_from: when a delivery's retry horizon started (epoch s; 0 = its created_at), reset by a redrive.
# explanation: why the alert fired, JSON (streams/alerts/explain.py); alerts stored before it read as {}.
ADDED_COLUMNS = [("alert_outbox", "retry_from", "Float64"), ("alerts", "explanation", "String")]
# Outbox statuses: pending (being retried), delivered, dead (past the retry horizon or refused), and
# redrive (an operator asked for a dead one again; the dispatcher makes it pending).
UNDELIVERED = ("pending", "redrive")
# An alert's collections are JSON text in the table; here with what an empty one reads as.
_JSON_COLUMNS = {"labels": "{}", "examples": "[]", "model_versions": "[]", "explanation": "{}"}
_ALERT_FIELDS = tuple(f.name for f in fields(Alert))

# Webhook deliveries per alert. An outbox row carries its alerts as the keys of ``alert_states``
# (json.dumps of {alert_id: status}); 18.16 has no function listing JSON keys, so they are matched.
_DELIVERIES_PER_ALERT = """
    SELECT alert_id,
           countIf(status = 'delivered') AS delivered,
           countIf(status IN ('pending', 'redrive')) AS pending,
           countIf(status = 'dead') AS failed,
           max(attempts) AS attempts
    FROM (
        SELECT status, attempts, arrayJoin(extractAll(alert_states, '"([^"]+)":')) AS alert_id
        FROM alert_outbox FINAL
    ) AS o
    GROUP BY alert_id
"""


def _version() -> int:
    return time.time_ns()


# The DateTime columns have no NULL: 1970 (epoch 0) is how they store "never" (an open alert's resolved_at).
def _stored_time(epoch: float | None) -> datetime:
    return from_epoch(epoch or 0)


def _read_time(at: datetime) -> int | None:
    return to_epoch(at) or None


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, **{name: json.loads(row[name] or empty) for name, empty in _JSON_COLUMNS.items()}}


def alert_row(alert: Alert) -> dict[str, Any]:
    """An alert as an ``alerts`` row: :meth:`Alert.to_dict` with DateTime times and JSON text collections."""
    row = alert.to_dict(time=_stored_time)
    row.update((name, json.dumps(row[name])) for name in _JSON_COLUMNS)
    return {**row, "version": _version()}


def alert_from_row(row: dict[str, Any]) -> Alert:
    return Alert.from_dict(_decoded({name: row[name] for name in _ALERT_FIELDS}), time=_read_time)


class AlertRepo:
    """What alerting and the dashboard read and write of the alert tables."""

    def __init__(self, store: Queryable) -> None:
        self.store = store

    def save_alerts(self, alerts: Iterable[Alert]) -> None:
        rows = [alert_row(a) for a in alerts]
        if rows:
            self.store.write_batch("alerts", rows)

    def save_states(self, states: Iterable[tuple[str, str, KeyState]]) -> None:
        version = _version()
        rows = [{"rule": r, "key": k, "state": json.dumps(s.to_json()), "version": version} for r, k, s in states]
        if rows:
            self.store.write_batch("alert_state", rows)

    def load_states(self) -> dict[tuple[str, str], KeyState]:
        rows = self.store.query("SELECT rule, key, argMax(state, version) AS state FROM alert_state GROUP BY rule, key")
        return {(r["rule"], r["key"]): KeyState.from_json(json.loads(r["state"])) for r in rows}

    def recent_alerts(self, since: float) -> list[Alert]:
        rows = self.store.query(
            "SELECT * FROM alerts FINAL WHERE updated_at >= %(since)s ORDER BY opened_at", {"since": from_epoch(since)}
        )
        return [alert_from_row(r) for r in rows]

    def list_alerts(self, status: str | None, limit: int, alert_id: str | None = None) -> list[dict[str, Any]]:
        conditions = [c for c, v in (("status = %(status)s", status), ("alert_id = %(alert_id)s", alert_id)) if v]
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        return self.store.query(
            f"SELECT a.*, k.acked_by AS acked_by FROM (SELECT * FROM alerts FINAL {where}) AS a "
            "LEFT JOIN (SELECT alert_id, argMax(acked_by, acked_at) AS acked_by FROM alert_acks GROUP BY alert_id) AS k "
            "USING alert_id ORDER BY opened_at DESC LIMIT %(limit)s",
            {"status": status, "limit": limit, "alert_id": alert_id},
        )

    def acked_ids(self) -> set[str]:
        return {r["alert_id"] for r in self.store.query("SELECT DISTINCT alert_id FROM alert_acks")}

    def overview(self, since: datetime, limit: int = 200) -> list[dict[str, Any]]:
        """Open alerts and alerts updated since ``since``: evidence, ack and webhook delivery counts.

        Open ones first, newest first; times as aware UTC datetimes (None for never), the JSON
        columns decoded. 18.16 allows one JOIN per SELECT, hence the nesting.
        """
        rows = self.store.query(
            f"""
            SELECT * FROM (
                SELECT alert_id, rule, key, labels, severity, status,
                       toUInt32(opened_at) AS opened_at_s, toUInt32(updated_at) AS updated_at_s,
                       toUInt32(resolved_at) AS resolved_at_s,
                       toUInt32(window_start) AS window_start_s, toUInt32(window_end) AS window_end_s,
                       count, negatives, share, baseline_mean, baseline_std, z, peak_z, examples, model_versions, explanation,
                       last_acked_by AS acked_by, acked_at_s
                FROM (
                    SELECT * FROM alerts FINAL
                    WHERE status = 'open' OR updated_at >= toDateTime(%(since)s)
                ) AS a
                ANY LEFT JOIN (
                    SELECT alert_id, argMax(acked_by, acked_at) AS last_acked_by, toUInt32(max(acked_at)) AS acked_at_s
                    FROM alert_acks GROUP BY alert_id
                ) AS k USING alert_id
            ) AS ak
            ANY LEFT JOIN ({_DELIVERIES_PER_ALERT}) AS d USING alert_id
            ORDER BY status = 'open' DESC, opened_at_s DESC, alert_id
            LIMIT %(limit)s
            """,
            {"since": to_epoch(since), "limit": int(limit)},
        )
        for row in rows:
            for name in (*TIME_FIELDS, "acked_at"):
                seconds = row.pop(f"{name}_s")
                row[name] = from_epoch(seconds) if seconds else None
        return [_decoded(row) for row in rows]

    def ack(self, alert_id: str, by: str, note: str) -> None:
        """Record that ``by`` has seen the alert: it stays open but is no longer repeated."""
        if not by:
            raise ValueError("an acknowledgement needs the analyst's name")
        self.store.write_batch("alert_acks", [{"alert_id": alert_id, "acked_by": by, "note": note,
                                               "acked_at": from_epoch(time.time())}])

    def save_deliveries(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            version = _version()
            self.store.write_batch("alert_outbox", [{**r, "updated_at": from_epoch(time.time()), "version": version} for r in rows])

    def deliveries(
        self, status: str | Sequence[str] | None = None, limit: int = 1000, url: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Outbox rows in the order they were made, filtered by status(es), receiver URL and delivery ids.

        The filter runs outside ``FINAL`` (a subquery), so it sees each row's latest version only.
        """
        statuses = (status,) if isinstance(status, str) else tuple(status or ())
        conditions = [c for c, v in (("status IN %(statuses)s", statuses), ("url = %(url)s", url),
                                     ("delivery_id IN %(ids)s", ids)) if v]
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        return self.store.query(
            f"SELECT * FROM (SELECT * FROM alert_outbox FINAL) AS o {where} ORDER BY created_at, seq, delivery_id "
            "LIMIT %(limit)s",
            {"statuses": statuses, "url": url, "ids": tuple(ids or ()), "limit": limit},
        )

    def redrive(self, ids: Sequence[str] | None = None, url: str | None = None) -> list[dict[str, Any]]:
        """Queue dead deliveries (these ids, or all; optionally of one receiver) for the dispatcher again."""
        rows = self.deliveries("dead", limit=1_000_000, url=url, ids=ids)
        self.save_deliveries([{**r, "status": "redrive"} for r in rows])
        return rows

    def last_notified(self) -> dict[str, dict[str, str]]:
        """Per group, the status receivers last heard for each alert it ever notified (for restart).

        Folded over all the group's notifications: an alert that dropped out of a group (resolved
        without ``send_resolved``) still counts as heard, so a restart never notifies it again.
        """
        rows = self.store.query("SELECT DISTINCT group_key, seq, alert_states FROM alert_outbox ORDER BY seq")
        heard: dict[str, dict[str, str]] = {}
        for r in rows:
            heard.setdefault(r["group_key"], {}).update(json.loads(r["alert_states"]))
        return heard
