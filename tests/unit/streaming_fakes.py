"""Fakes of the engine and the store for the streaming core's unit tests."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone

from riskpulse.streams.worker.batching import RawRecord


@dataclass(frozen=True)
class FakeScores:
    topic: str
    topic_prob: float
    sentiment: str
    sentiment_prob: float
    model_version: str


class FakeEngine:
    """Scores by keyword; a text containing POISON is rejected like an unscorable text."""

    version = "fake-1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def classify(self, texts):
        self.calls.append(list(texts))
        if any("POISON" in t for t in texts):
            raise ValueError("cannot score a POISON text")
        return [
            FakeScores("Stock Movement", 0.9, "negative" if "fall" in t else "positive", 0.8, self.version) for t in texts
        ]


class FakeStore:
    """Tables as lists of rows; fails the first ``fail_times`` writes."""

    def __init__(self, fail_times: int = 0) -> None:
        self.tables: dict[str, list[dict]] = defaultdict(list)
        self.fail_times = fail_times
        self.writes = 0

    def write_batch(self, table, rows):
        self.writes += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("store is down")
        self.tables[table].extend(dict(r) for r in rows)


def good(i: int, text: str = "Shares rise on earnings") -> bytes:
    return json.dumps(
        {"id": f"m-{i}", "source": "news", "channel": "wire", "ts": datetime(2026, 1, 2, tzinfo=timezone.utc).isoformat(), "text": f"{text} {i}"}
    ).encode()


def record(value: bytes | None, offset: int, partition: int = 0) -> RawRecord:
    return RawRecord(value=value, topic="riskpulse.raw", partition=partition, offset=offset)
