"""The test suite's one set of fakes: scores, an engine, a store, a clock, and raw-record helpers.

Every tier uses these (tests/unit only these): a fake engine stands in for
``riskpulse.models.serving.inference.Engine``, a fake store for a ClickHouse/chDB store's
``write_batch``, and a fake clock for any ``clock``/``now`` parameter (``time.time`` or
``time.monotonic`` by default in the code under test), so no test waits on wall-clock seconds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from riskpulse.streams.worker.batching import RawRecord


@dataclass(frozen=True)
class FakeScores:
    """The fields of ``riskpulse.models.serving.inference.Scores``, without importing torch."""

    topic: str
    topic_prob: float
    sentiment: str
    sentiment_prob: float
    model_version: str


class FakeEngine:
    """A classifier by rote: ``learned`` texts get their topic, every other text ``topic``.

    The sentiment is ``negative`` for a text containing ``negative_word`` (none when it is None),
    otherwise ``sentiment``. A batch holding a text that contains ``poison`` is rejected with a
    ValueError, as the real engine rejects an unscorable text. Each call's texts are kept in ``calls``.
    """

    def __init__(
        self,
        version: str = "fake-1",
        learned: Mapping[str, str] | None = None,
        *,
        topic: str = "Stock Movement",
        sentiment: str = "positive",
        negative_word: str | None = "fall",
        topic_prob: float = 0.9,
        sentiment_prob: float = 0.8,
        poison: str | None = "POISON",
    ) -> None:
        self.version = version
        self.learned = dict(learned or {})
        self.topic, self.sentiment, self.negative_word = topic, sentiment, negative_word
        self.topic_prob, self.sentiment_prob, self.poison = topic_prob, sentiment_prob, poison
        self.calls: list[list[str]] = []

    def classify(self, texts: Sequence[str]) -> list[FakeScores]:
        texts = list(texts)
        self.calls.append(texts)
        if self.poison and any(self.poison in t for t in texts):
            raise ValueError(f"cannot score a {self.poison} text")
        return [
            FakeScores(
                self.learned.get(t, self.topic), self.topic_prob,
                "negative" if self.negative_word and self.negative_word in t else self.sentiment,
                self.sentiment_prob, self.version,
            )
            for t in texts
        ]


class FakeStore:
    """Tables as lists of rows; fails the first ``fail_times`` writes (each write counted in ``writes``)."""

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


class FakeClock:
    """A clock that stands still until a test moves it: call it for ``now`` (seconds)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def good(i: int, text: str = "Shares rise on earnings") -> bytes:
    """A valid raw message (bytes on the raw topic) with id ``m-{i}``."""
    return json.dumps(
        {"id": f"m-{i}", "source": "news", "channel": "wire", "ts": datetime(2026, 1, 2, tzinfo=timezone.utc).isoformat(), "text": f"{text} {i}"}
    ).encode()


def record(value: bytes | None, offset: int, partition: int = 0) -> RawRecord:
    """``value`` as it comes off the raw topic at ``partition``/``offset``."""
    return RawRecord(value=value, topic="riskpulse.raw", partition=partition, offset=offset)


class FakeAlertRepo:
    """The outbox side of ``riskpulse.streams.store.alerts.AlertRepo`` as dicts, for the dispatcher.

    Rows are kept by delivery id (a write is the row's new state, as ReplacingMergeTree reads it);
    ``down`` makes every call fail like a ClickHouse server that does not answer.
    """

    def __init__(self) -> None:
        self.outbox: dict[str, dict] = {}
        self.alerts: dict[str, object] = {}
        self.acked: set[str] = set()
        self.down = False

    def _up(self) -> None:
        if self.down:
            raise ConnectionError("store is down")

    def save_deliveries(self, rows) -> None:
        self._up()
        for r in rows:
            self.outbox[r["delivery_id"]] = dict(r)

    def deliveries(self, status=None, limit=1000, url=None, ids=None):
        self._up()
        statuses = (status,) if isinstance(status, str) else tuple(status or ())
        rows = [dict(r) for r in sorted(self.outbox.values(), key=lambda r: r["seq"])
                if (not statuses or r["status"] in statuses) and url in (None, r["url"])
                and (not ids or r["delivery_id"] in ids)]
        return rows[:limit]

    def redrive(self, ids=None, url=None):
        rows = self.deliveries("dead", url=url, ids=ids)
        self.save_deliveries([{**r, "status": "redrive"} for r in rows])
        return rows

    def last_notified(self):
        self._up()
        heard: dict[str, dict[str, str]] = {}
        for r in sorted(self.outbox.values(), key=lambda r: r["seq"]):
            heard.setdefault(r["group_key"], {}).update(json.loads(r["alert_states"]))
        return heard

    def recent_alerts(self, since):
        self._up()
        return list(self.alerts.values())

    def acked_ids(self):
        self._up()
        return set(self.acked)
