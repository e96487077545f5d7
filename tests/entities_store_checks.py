"""The entity_mentions table's checks, run on chDB (tests/local) and on clickhouse-server 18.16 (tests/integration)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from riskpulse.core.schema import ScoredMessage
from riskpulse.streams.alerts.detector import Alert
from riskpulse.streams.enrich.entities import Catalogue, EntityExtractor
from riskpulse.streams.store import entities
from riskpulse.streams.store.alerts import AlertRepo
from riskpulse.streams.store.backends import Store
from riskpulse.streams.store.messages import message_row
from riskpulse.streams.worker.batching import with_entities

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def _scored(i: int, minute: int, text: str, sentiment: str) -> ScoredMessage:
    return ScoredMessage(
        id=f"e-{i}", source="news", channel="wire", ts=T0 + timedelta(minutes=minute), text=text, topic="Banking",
        topic_prob=0.9, sentiment=sentiment, sentiment_prob=0.8, model_version="v1",
    )


def corpus() -> list[ScoredMessage]:
    """Two hours: JPMorgan mostly neutral in the first, mostly negative in the second; Apple steady."""
    messages = []
    for i in range(60):
        first_hour = i < 30
        jpm_sentiment = "negative" if (i % 10 == 0 if first_hour else i % 10 < 7) else "neutral"
        messages.append(_scored(i, i * 2, f"JPMorgan (JPM) update {i}; JPMorgan again", jpm_sentiment))
        messages.append(_scored(100 + i, i * 2 + 1, f"Apple Inc. update {i}", "negative" if i % 5 == 0 else "positive"))
    messages.append(_scored(999, 5, "Nothing named", "negative"))
    return messages


def check_entity_mentions(store: Store) -> None:
    extractor = EntityExtractor(Catalogue.load())
    tagged, rows = with_entities(corpus(), extractor)
    store.write_batch("messages", [message_row(m) for m in tagged])
    store.write_batch(entities.ENTITY_MENTIONS_TABLE, rows)
    store.write_batch(entities.ENTITY_MENTIONS_TABLE, rows[:40])  # a redelivered batch

    final = store.query("SELECT count() AS n FROM entity_mentions FINAL")
    assert final == [{"n": len(rows)}]  # JPM three times a message, Apple once
    assert len(rows) == 60 * 3 + 60

    hour = T0 + timedelta(hours=1)
    movers = entities.movers(store, hour, hour + timedelta(hours=1), T0)
    assert [m["entity_id"] for m in movers] == ["JPM", "AAPL"]
    jpm = movers[0]
    assert (jpm["messages"], jpm["negatives"], jpm["baseline_messages"], jpm["baseline_negatives"]) == (30, 21, 30, 3)
    assert abs(jpm["change"] - (21 / 30 - 3 / 30)) < 1e-9 and abs(movers[1]["change"]) < 1e-9

    series = entities.series(store, "JPM", T0, T0 + timedelta(hours=2), 3600)
    assert [(r["bucket"], r["sentiment"], r["messages"]) for r in series] == [
        (T0, "negative", 3), (T0, "neutral", 27), (hour, "negative", 21), (hour, "neutral", 9),
    ]

    listed = entities.messages(store, "JPM", hour, hour + timedelta(hours=1), limit=5)
    assert [m["id"] for m in listed] == ["e-59", "e-58", "e-57", "e-56", "e-55"]
    assert listed[0]["text"].startswith("JPMorgan") and listed[0]["ts"].tzinfo is not None

    assert [(r["entity_id"], r["messages"]) for r in entities.entity_names(store)] == [("AAPL", 60), ("JPM", 60)]

    alert = Alert(
        alert_id="alt_entity_jpm", rule="entity-negative-spike", key=entities.alert_key("JPM"), labels={"entity": "JPM"},
        severity="warning", status="open", opened_at=hour.timestamp(), updated_at=hour.timestamp(), resolved_at=None,
        window_start=hour.timestamp(), window_end=(hour + timedelta(minutes=5)).timestamp(), count=30, negatives=21,
        share=0.7, baseline_mean=0.1, baseline_std=0.05, z=12.0, peak_z=12.0, windows=1, examples=(), model_versions=("v1",),
    )
    AlertRepo(store).save_alerts([alert])
    found = entities.alerts(store, "JPM")
    assert [(a["alert_id"], a["status"], a["messages"]) for a in found] == [("alt_entity_jpm", "open", 30)]
    assert entities.alerts(store, "AAPL") == []
