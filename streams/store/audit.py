"""The ``audit`` table: who did what to the product's decisions, and when.

Every analyst label, alert acknowledgement and model promotion (from the dashboard or the retraining
scheduler) and every dashboard login attempt is appended here with the user, their role and the
client address, so a risk team can answer "who changed this" after the fact. Append-only
(MergeTree): rows are never updated; the same SQL runs on chDB and clickhouse-server 18.16.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from riskpulse.streams.store.backends import Queryable

AUDIT_TABLE = "audit"
ACTIONS = ("label", "acknowledge", "promote", "login", "login_refused", "login_limited")

DDL: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS audit (
        at DateTime('UTC'),
        user String,
        role String,
        action String,
        target String,
        detail String,
        address String
    ) ENGINE = MergeTree
    PARTITION BY toYYYYMM(at)
    ORDER BY (at, action, target)
    """,
]


@dataclass(frozen=True)
class AuditEvent:
    """One row: ``target`` is what was acted on (message id, alert id, model version, user name for logins);
    ``detail`` a JSON object of the rest (label and task, note, the version that was current before)."""

    at: datetime
    user: str
    role: str
    action: str
    target: str
    detail: str
    address: str


def record(store: Queryable, *, user: str, role: str, action: str, target: str,
           detail: dict[str, Any] | None = None, address: str = "") -> AuditEvent:
    """Append one event, stamped now (UTC, whole seconds)."""
    if action not in ACTIONS:
        raise ValueError(f"audit action {action!r} is not one of {ACTIONS}")
    event = AuditEvent(
        at=datetime.now(timezone.utc).replace(microsecond=0), user=user, role=role, action=action, target=target,
        detail=json.dumps(detail or {}, sort_keys=True, ensure_ascii=False), address=address,
    )
    store.write_batch(AUDIT_TABLE, [asdict(event)])
    return event


def recent(store: Queryable, *, limit: int = 200, action: str | None = None, user: str | None = None) -> list[dict[str, Any]]:
    """Newest events first, optionally of one action and/or one user."""
    where, params = [], {"limit": int(limit)}
    if action:
        where.append("action = %(action)s")
        params["action"] = action
    if user:
        where.append("user = %(user)s")
        params["user"] = user
    return store.query(
        "SELECT at, user, role, action, target, detail, address FROM audit"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY at DESC, action, target LIMIT %(limit)s",
        params,
    )


def action_counts(store: Queryable) -> dict[str, int]:
    return {row["action"]: row["n"] for row in store.query("SELECT action, count() AS n FROM audit GROUP BY action")}
