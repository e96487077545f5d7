"""Storing an analyst's label, on MemoryStore: the task and the analyst are checked before anything is stored."""

from __future__ import annotations

import pytest

from riskpulse.dashboards import queries
from riskpulse.streams.store import labels
from riskpulse.streams.store.backends import MemoryStore, StoreError


def test_add_label_rejects_unknown_task_or_missing_user():
    store = MemoryStore()
    store.open()
    with pytest.raises(ValueError, match="task"):
        labels.add_label(store, message_id="m", task="colour", label="x", text="t", user="ann")
    with pytest.raises(ValueError, match="analyst"):
        labels.add_label(store, message_id="m", task="topic", label="Macro", text="t", user="")
    labels.add_label(store, message_id="m", task="topic", label="Macro", text="t", user="ann")
    (row,) = store.rows("labels")
    assert row["labeled_by"] == "ann" and row["labeled_at"].tzinfo is not None
    with pytest.raises(StoreError):
        queries.label_queue(store, "topic")
