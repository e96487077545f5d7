"""Times as RiskPulse stores and compares them: aware UTC datetimes and UTC epoch seconds.

ClickHouse keeps ``DateTime`` in whole UTC seconds and the drivers hand back naive or aware
datetimes depending on the path, while the detector and the outbox count in epoch seconds;
these three conversions are the only place that decides how one becomes the other.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utc(ts: datetime) -> datetime:
    """``ts`` in UTC; a naive datetime is taken to be UTC already (what ClickHouse means by one)."""
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def to_epoch(ts: datetime) -> int:
    """Whole UTC epoch seconds, the resolution of a ClickHouse ``DateTime``."""
    return int(utc(ts).timestamp())


def from_epoch(seconds: float) -> datetime:
    """An aware UTC datetime for epoch seconds."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc)
