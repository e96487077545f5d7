"""What every page shares: the one store connection, the time-range picker, number formats."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

import streamlit as st

from riskpulse.dashboards import queries
from riskpulse.core.settings import Settings, get_settings
from riskpulse.streams.store.backends import StoreError

log = logging.getLogger("riskpulse.dashboard")

RANGES = {
    "Last hour": timedelta(hours=1),
    "Last 6 hours": timedelta(hours=6),
    "Last 24 hours": timedelta(hours=24),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "All data": None,
}
BUCKETS_S = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)
MAX_POINTS = 60


def store_unreachable(exc: StoreError) -> NoReturn:
    """Say that the store cannot be reached (server stopped or restarting) and end this run of the page,
    instead of a stack trace; the next refresh asks again (the driver reconnects by itself)."""
    log.warning("dashboard: store unreachable: %s", exc)
    st.error(f"The message store is unreachable, so this page cannot be shown: {str(exc).splitlines()[0]} "
             "It shows again once the store answers (refresh).")
    st.stop()


class SerialStore:
    """One store shared by all browser sessions; calls are serialised because a
    ClickHouse native connection (and a chDB session) runs one query at a time."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._lock = threading.Lock()

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            with self._lock:
                return self._store.query(sql, params)
        except StoreError as exc:
            store_unreachable(exc)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        try:
            with self._lock:
                self._store.execute(sql, params)
        except StoreError as exc:
            store_unreachable(exc)

    def write_batch(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        try:
            with self._lock:
                self._store.write_batch(table, rows)
        except StoreError as exc:
            store_unreachable(exc)

    def close(self) -> None:
        with self._lock:
            self._store.close()


@st.cache_resource(show_spinner=False)
def store() -> SerialStore:
    """The process-wide store (ClickHouse server normally; chDB only if no worker holds its directory).

    Migrated on open (every DDL is CREATE … IF NOT EXISTS) so a fresh database shows empty pages, not errors.
    """
    from riskpulse.streams.store.migrate import migrate
    from riskpulse.streams.store.backends import open_store

    try:
        backend = open_store(settings())
        migrate(backend)
    except StoreError as exc:  # raised, so not cached: the next run tries again
        store_unreachable(exc)
    return SerialStore(backend)


def settings() -> Settings:
    return get_settings()


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    bucket_s: int
    label: str

    @property
    def split(self) -> datetime:
        """Where the 'recent' part starts: the last quarter of the window, compared with the rest."""
        return self.end - (self.end - self.start) / 4


def bucket_for(span: timedelta) -> int:
    """The smallest bucket that keeps a chart under ~MAX_POINTS points."""
    for bucket in BUCKETS_S:
        if span.total_seconds() / bucket <= MAX_POINTS:
            return bucket
    return BUCKETS_S[-1]


def pick_range(key: str = "range") -> str:
    """Sidebar time-range picker (a widget, so it lives outside auto-refreshing fragments)."""
    return st.sidebar.selectbox("Time range", list(RANGES), index=len(RANGES) - 1, key=key)


def window_for(choice: str) -> Window | None:
    """The window a range name means right now; None when nothing is stored yet.

    Recomputed on every refresh, so "Last hour" slides and "All data" grows with new messages.
    """
    span = RANGES[choice]
    if span is None:
        bounds = queries.data_bounds(store())
        if bounds is None:
            return None
        start, end = bounds[0], bounds[1] + timedelta(seconds=1)
    else:
        end = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
        start = end - span
    return Window(start=start, end=end, bucket_s=bucket_for(end - start), label=choice)


def fmt_bucket(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def current_user() -> str:
    return st.session_state.get("user", "")
