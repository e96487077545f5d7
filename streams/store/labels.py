"""The ``labels`` table: analysts' verdicts on messages, written by the dashboard, read by retraining.

Append-only (MergeTree): every verdict is kept with who gave it and when, and retraining decides
which one counts (:mod:`riskpulse.models.retraining.policy`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from riskpulse.core.clock import from_epoch
from riskpulse.streams.store.backends import Queryable

LABELS_TABLE = "labels"
TASKS = ("topic", "sentiment")  # what an analyst labels: the model's two heads

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

# The ids already labelled for %(task)s, for a query over messages that skips them.
LABELLED_IDS = "SELECT message_id FROM labels WHERE task = %(task)s"


@dataclass(frozen=True)
class AnalystLabel:
    """One row of the ``labels`` table: an analyst's verdict on one message for one task."""

    message_id: str
    task: str
    label: str
    text: str
    labeled_by: str
    labeled_at: datetime


def add_label(store: Queryable, *, message_id: str, task: str, label: str, text: str, user: str) -> dict[str, Any]:
    """Store one analyst verdict (a correction or a confirmation) with who and when."""
    if task not in TASKS:
        raise ValueError(f"label task {task!r} is not one of {TASKS}")
    if not label or not user:
        raise ValueError("a label needs a value and the analyst's name")
    row = asdict(AnalystLabel(message_id, task, label, text, user, datetime.now(timezone.utc).replace(microsecond=0)))
    store.write_batch(LABELS_TABLE, [row])
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


def fetch_labels(store: Queryable, since_s: int, until_s: int) -> list[AnalystLabel]:
    """Analyst labels stored in (since, until], with text."""
    rows = store.query(
        "SELECT message_id, task, label, text, labeled_by, toUInt32(labeled_at) AS at FROM labels "
        "WHERE labeled_at > toDateTime(%(since)s) AND labeled_at <= toDateTime(%(until)s)",
        {"since": int(since_s), "until": int(until_s)},
    )
    return [
        AnalystLabel(r["message_id"], r["task"], r["label"], r["text"], r["labeled_by"], from_epoch(r["at"]))
        for r in rows
        if r["text"].strip()
    ]
