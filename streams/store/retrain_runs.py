"""The ``retrain_runs`` table: one row per retraining run, replaced as the run goes on.

A run is written ``running`` when it starts and again with its outcome; ReplacingMergeTree on
``seq`` (the write's nanoseconds) keeps the latest write of a run_id (read with FINAL). The run's
promoted cut-off tells the next run which analyst labels are new.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from riskpulse.core.clock import from_epoch
from riskpulse.streams.store.backends import Queryable

RUNS_TABLE = "retrain_runs"

DDL: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS retrain_runs (
        run_id String,
        seq UInt64,
        status String,
        reason String,
        trigger String,
        runner String,
        started_at DateTime,
        finished_at DateTime,
        champion_version String,
        challenger_version String,
        labels_since DateTime,
        labels_until DateTime,
        new_labels UInt32,
        train_labels UInt32,
        heldout_labels UInt32,
        contested_labels UInt32,
        unknown_labels UInt32,
        train_rows UInt32,
        eval_rows UInt32,
        champion_topic_f1 Float32,
        champion_sentiment_f1 Float32,
        challenger_topic_f1 Float32,
        challenger_sentiment_f1 Float32,
        champion_heldout_acc Float32,
        challenger_heldout_acc Float32,
        details String
    ) ENGINE = ReplacingMergeTree(seq)
    ORDER BY run_id
    """,
]
# A run as the RunRecord fields (times as epoch seconds), so a row reads back into a record.
RUN_COLUMNS = (
    "run_id, status, reason, trigger, runner, toUInt32(started_at) AS started_s, toUInt32(finished_at) AS finished_s, "
    "champion_version, challenger_version, toUInt32(labels_since) AS labels_since_s, "
    "toUInt32(labels_until) AS labels_until_s, new_labels, train_labels, heldout_labels, contested_labels, "
    "unknown_labels, train_rows, eval_rows, champion_topic_f1, champion_sentiment_f1, challenger_topic_f1, "
    "challenger_sentiment_f1, champion_heldout_acc, challenger_heldout_acc, details"
)


@dataclass
class RunRecord:
    """What a run did and found; one row of ``retrain_runs``."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: str = "running"
    reason: str = ""
    trigger: str = "manual"
    runner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    started_s: int = field(default_factory=lambda: int(time.time()))
    finished_s: int = 0
    champion_version: str = ""
    challenger_version: str = ""
    labels_since_s: int = 0
    labels_until_s: int = 0
    new_labels: int = 0
    train_labels: int = 0
    heldout_labels: int = 0
    contested_labels: int = 0
    unknown_labels: int = 0
    train_rows: int = 0
    eval_rows: int = 0
    champion_topic_f1: float = math.nan
    champion_sentiment_f1: float = math.nan
    challenger_topic_f1: float = math.nan
    challenger_sentiment_f1: float = math.nan
    champion_heldout_acc: float = math.nan
    challenger_heldout_acc: float = math.nan
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        row = asdict(self)
        for name in ("started", "finished", "labels_since", "labels_until"):
            row[name if name.startswith("labels") else f"{name}_at"] = from_epoch(row.pop(f"{name}_s"))
        row["details"] = json.dumps(self.details, default=str, sort_keys=True)
        row["seq"] = time.time_ns()
        return row


def write_run(store: Queryable, record: RunRecord) -> None:
    """Store the run's current state; the latest write of a run_id wins (ReplacingMergeTree)."""
    store.write_batch(RUNS_TABLE, [record.row()])


def recent_runs(store: Queryable, limit: int = 20) -> list[dict[str, Any]]:
    """Latest runs first, for the CLI and the dashboard's models page."""
    return store.query(
        f"SELECT {RUN_COLUMNS} FROM retrain_runs FINAL ORDER BY started_at DESC, run_id LIMIT %(limit)s",
        {"limit": int(limit)},
    )


def running_runs(store: Queryable) -> list[RunRecord]:
    """Runs whose latest record says ``running``: in progress, or left so by a process that died."""
    rows = store.query(f"SELECT {RUN_COLUMNS} FROM retrain_runs FINAL WHERE status = 'running'")
    return [
        RunRecord(**{k: v for k, v in row.items() if k != "details"}, details=json.loads(row["details"] or "{}"))
        for row in rows
    ]


def label_cutoff(store: Queryable, version: str) -> int:
    """Epoch seconds up to which `version` learned from labels; 0 when it never saw any."""
    rows = store.query(
        "SELECT max(toUInt32(labels_until)) AS until, count() AS n FROM retrain_runs FINAL "
        "WHERE challenger_version = %(version)s AND status = 'promoted'",
        {"version": version},
    )
    return int(rows[0]["until"]) if rows and rows[0]["n"] else 0
