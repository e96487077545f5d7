"""The alerts' tables in ClickHouse and the few reads and writes the alerting needs.

Every table is a ReplacingMergeTree keyed by its id with a wall-clock version, so a
write is "the new state of this row" and replays after a restart are harmless.
Reads use ``FINAL`` or ``argMax`` (both work on clickhouse-server 18.16 and chDB).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from riskpulse.streams.alerts.detector import Alert, KeyState

DDL = [
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id String, rule String, key String, labels String, severity String, status String,
        opened_at DateTime('UTC'), updated_at DateTime('UTC'), resolved_at DateTime('UTC'), window_start DateTime('UTC'), window_end DateTime('UTC'),
        count UInt32, negatives UInt32, share Float64, baseline_mean Float64, baseline_std Float64,
        z Float64, peak_z Float64, windows UInt32, examples String, model_versions String, version UInt64
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
        created_at DateTime('UTC'), seq UInt64, next_attempt_at Float64, updated_at DateTime('UTC'), version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY delivery_id""",
]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Store(Protocol):
    def write_batch(self, table: str, rows: Sequence[dict[str, Any]]) -> None: ...
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


def to_dt(epoch: float | None) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc).replace(microsecond=0) if epoch else EPOCH


def from_dt(value: datetime) -> float:
    """ClickHouse hands back naive UTC or aware datetimes depending on the path."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def _version() -> int:
    return time.time_ns()


def alert_row(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id, "rule": alert.rule, "key": alert.key, "labels": json.dumps(alert.labels),
        "severity": alert.severity, "status": alert.status, "opened_at": to_dt(alert.opened_at),
        "updated_at": to_dt(alert.updated_at), "resolved_at": to_dt(alert.resolved_at),
        "window_start": to_dt(alert.window_start), "window_end": to_dt(alert.window_end),
        "count": alert.count, "negatives": alert.negatives, "share": alert.share,
        "baseline_mean": alert.baseline_mean, "baseline_std": alert.baseline_std, "z": alert.z,
        "peak_z": alert.peak_z, "windows": alert.windows, "examples": json.dumps(list(alert.examples)),
        "model_versions": json.dumps(list(alert.model_versions)), "version": _version(),
    }


def alert_from_row(row: dict[str, Any]) -> Alert:
    resolved = from_dt(row["resolved_at"])
    return Alert(
        alert_id=row["alert_id"], rule=row["rule"], key=row["key"], labels=json.loads(row["labels"]),
        severity=row["severity"], status=row["status"], opened_at=from_dt(row["opened_at"]),
        updated_at=from_dt(row["updated_at"]), resolved_at=resolved or None,
        window_start=from_dt(row["window_start"]), window_end=from_dt(row["window_end"]),
        count=row["count"], negatives=row["negatives"], share=row["share"], baseline_mean=row["baseline_mean"],
        baseline_std=row["baseline_std"], z=row["z"], peak_z=row["peak_z"], windows=row["windows"],
        examples=tuple(json.loads(row["examples"])), model_versions=tuple(json.loads(row["model_versions"])),
    )


class AlertRepo:
    """What alerting reads and writes, over any :class:`riskpulse.streams.store.backends.Store`."""

    def __init__(self, store: Store) -> None:
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
            "SELECT * FROM alerts FINAL WHERE updated_at >= %(since)s ORDER BY opened_at", {"since": to_dt(since)}
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

    def ack(self, alert_id: str, by: str, note: str) -> None:
        self.store.write_batch("alert_acks", [{"alert_id": alert_id, "acked_by": by, "note": note,
                                               "acked_at": to_dt(time.time())}])

    def save_deliveries(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            version = _version()
            self.store.write_batch("alert_outbox", [{**r, "updated_at": to_dt(time.time()), "version": version} for r in rows])

    def deliveries(self, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        where = "WHERE status = %(status)s" if status else ""
        return self.store.query(
            f"SELECT * FROM alert_outbox FINAL {where} ORDER BY created_at, delivery_id LIMIT %(limit)s",
            {"status": status, "limit": limit},
        )

    def last_notified(self) -> dict[str, dict[str, str]]:
        """Per group, the alert states its latest notification carried (for restart)."""
        rows = self.store.query(
            "SELECT group_key, argMax(alert_states, seq) AS states FROM alert_outbox GROUP BY group_key"
        )
        return {r["group_key"]: json.loads(r["states"]) for r in rows}
