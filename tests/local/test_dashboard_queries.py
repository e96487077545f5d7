"""The dashboard's SQL on chDB (the same text runs on clickhouse-server; see the browser test)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from riskpulse.dashboards import queries
from riskpulse.streams.store import labels
from riskpulse.streams.store.alerts import AlertRepo
from riskpulse.streams.store.messages import message_row
from tests.fixtures.dashboard import spike_alert, store_alert


def _window(messages):
    start = min(m.ts for m in messages).replace(microsecond=0)
    return start, max(m.ts for m in messages) + timedelta(seconds=1)


def test_totals_count_each_message_once_despite_redelivery(filled_store):
    store, messages = filled_store
    start, end = _window(messages)
    counts = queries.sentiment_counts(store, start, end)
    assert counts == dict(Counter(m.sentiment for m in messages))
    assert sum(counts.values()) == 80


def test_series_buckets_sum_to_totals_per_topic_and_source(filled_store):
    store, messages = filled_store
    start, end = _window(messages)
    by_topic = queries.series(store, start, end, 3600, "topic")
    per_topic = Counter()
    for row in by_topic:
        per_topic[row["key"]] += row["messages"]
        assert row["bucket"].tzinfo is not None and row["bucket"].timestamp() % 3600 == 0
        assert 0 <= row["negative_share"] <= 1
    assert per_topic == Counter(m.topic for m in messages)
    negatives = Counter(m.source for m in messages if m.sentiment == "negative")
    by_source = Counter()
    for row in queries.series(store, start, end, 900, "source"):
        by_source[row["key"]] += row["negative"]
    assert +by_source == negatives
    with pytest.raises(KeyError):
        queries.series(store, start, end, 900, "text; DROP TABLE messages")


def test_movers_rank_topics_by_change_in_negative_share(chdb_store):
    store = chdb_store
    now = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    rows = []
    for i in range(40):
        # "Macro": 10% negative before 11:00, 80% after; "Earnings": 50% throughout.
        recent = i >= 20
        ts = now - timedelta(minutes=30 if recent else 90, seconds=i)
        rows.append(_row(f"m{i}", ts, "Macro", "negative" if (i % 10 < (8 if recent else 1)) else "neutral"))
        rows.append(_row(f"e{i}", ts, "Earnings", "negative" if i % 2 else "positive"))
    store.write_batch("messages", rows)
    moved = queries.movers(store, now - timedelta(hours=1), now, now - timedelta(hours=2))
    assert [m["topic"] for m in moved] == ["Macro", "Earnings"]
    assert moved[0]["current_share"] == pytest.approx(0.8)
    assert moved[0]["baseline_share"] == pytest.approx(0.1)
    assert moved[0]["delta"] == pytest.approx(0.7)
    assert moved[1]["delta"] == pytest.approx(0.0)


def test_explore_filters_combine(filled_store):
    store, messages = filled_store
    target = next(m for m in messages if m.source == "news" and m.sentiment == "negative")
    word = max(target.text.split(), key=len)
    total, rows = queries.explore(store, queries.Filters(text=word.upper(), sources=("news",), sentiments=("negative",)))
    expected = {m.id for m in messages if word.lower() in m.text.lower() and m.source == "news" and m.sentiment == "negative"}
    assert total == len(expected) and {r["id"] for r in rows} == expected
    assert {"topic_prob", "sentiment_prob", "model_version"} <= set(rows[0])

    confident = queries.Filters(min_confidence=0.8)
    total, rows = queries.explore(store, confident)
    assert total == sum(min(m.topic_prob, m.sentiment_prob) >= 0.8 for m in messages)
    assert all(min(r["topic_prob"], r["sentiment_prob"]) >= 0.8 - 1e-6 for r in rows)

    start = max(m.ts for m in messages) - timedelta(hours=1)
    total, _ = queries.explore(store, queries.Filters(start=start, channels=("banking-app",), topics=("card_payments",)))
    assert total == sum(m.ts >= start.replace(microsecond=0) and m.topic == "card_payments" for m in messages)


@pytest.mark.parametrize("attack", ["'; DROP TABLE messages; --", "' OR 1=1 --", "\\'; TRUNCATE TABLE labels; --", "%(text)s"])
def test_search_box_is_not_an_injection_point(filled_store, attack):
    store, _ = filled_store
    labels.add_label(store, message_id="n-0", task="sentiment", label="negative", text="x", user="ann")
    total, rows = queries.explore(store, queries.Filters(text=attack))
    assert (total, rows) == (0, [])
    total, _ = queries.explore(store, queries.Filters(topics=(attack,), channels=(attack,)))
    assert total == 0
    assert store.query("SELECT count() AS n FROM messages FINAL")[0]["n"] == 80
    assert store.query("SELECT count() AS n FROM labels")[0]["n"] == 1


def test_label_queue_is_least_confident_first_and_skips_labelled(filled_store):
    store, messages = filled_store
    queue = queries.label_queue(store, "sentiment", limit=5)
    expected = sorted(messages, key=lambda m: (m.sentiment_prob, -m.ts.timestamp()))[:5]
    assert [r["id"] for r in queue] == [m.id for m in expected]
    row = labels.add_label(store, message_id=queue[0]["id"], task="sentiment", label="negative",
                           text=queue[0]["text"], user="analyst-1")
    assert queue[0]["id"] not in [r["id"] for r in queries.label_queue(store, "sentiment", limit=5)]
    assert queue[0]["id"] in [r["id"] for r in queries.label_queue(store, "topic", limit=100)]
    stored = labels.recent_labels(store)
    assert len(stored) == 1
    assert stored[0]["message_id"] == queue[0]["id"] and stored[0]["labeled_by"] == "analyst-1"
    assert abs(stored[0]["labeled_at"] - row["labeled_at"].timestamp()) < 1
    assert labels.label_counts(store) == [{"task": "sentiment", "label": "negative", "n": 1}]

    since = max(m.ts for m in messages) - timedelta(hours=1)
    recent = queries.label_queue(store, "topic", limit=100, since=since)
    assert {r["id"] for r in recent} == {m.id for m in messages if m.ts >= since.replace(microsecond=0)}


def test_key_series_and_examples_follow_an_alert_key(filled_store):
    store, messages = filled_store
    start, end = _window(messages)
    key = {"topic": "Macro", "source": "news"}
    series = queries.key_series(store, start, end, 3600, key=key)
    assert sum(r["messages"] for r in series) == sum(m.topic == "Macro" for m in messages)
    examples = queries.messages_around(store, start, end, key={**key, "sentiment": "negative"}, limit=3)
    assert examples and all(r["topic"] == "Macro" and r["sentiment"] == "negative" for r in examples)


def test_alerts_list_shows_evidence_ack_and_delivery(filled_store):
    store, messages = filled_store
    alert = spike_alert(messages)
    store_alert(store, alert, delivery_status="dead")
    (row,) = AlertRepo(store).overview(datetime.now(timezone.utc) - timedelta(days=1))
    assert (row["alert_id"], row["status"], row["severity"], row["key"]) == (alert.alert_id, "open", "critical", alert.key)
    assert row["labels"] == {"topic": "Macro", "source": "news"}
    assert row["examples"] == list(alert.examples) and row["count"] == alert.count
    assert row["window_start"].timestamp() == int(alert.window_start)
    assert (row["failed"], row["delivered"], row["acked_by"], row["acked_at"]) == (1, 0, "", None)
    AlertRepo(store).ack(alert.alert_id, "analyst-2", "looking")
    (row,) = AlertRepo(store).overview(datetime.now(timezone.utc) - timedelta(days=1))
    assert row["acked_by"] == "analyst-2" and row["acked_at"] is not None
    with pytest.raises(ValueError, match="name"):
        AlertRepo(store).ack(alert.alert_id, "", "")


def test_retrain_runs_absent_until_the_table_exists(chdb_store):
    chdb_store.execute("DROP TABLE IF EXISTS retrain_runs")
    assert queries.retrain_runs(chdb_store) is None
    from riskpulse.streams.store.retrain_runs import DDL as RETRAIN_DDL

    for statement in RETRAIN_DDL:
        chdb_store.execute(statement)
    assert queries.retrain_runs(chdb_store) == []


def test_empty_store_has_no_bounds(chdb_store):
    assert queries.data_bounds(chdb_store) is None
    assert queries.label_queue(chdb_store, "topic") == []


def _row(ident, ts, topic, sentiment):
    from riskpulse.core.schema import ScoredMessage

    return message_row(ScoredMessage(
        id=ident, source="news", channel="wire", ts=ts, text=f"text {ident}", topic=topic, topic_prob=0.9,
        sentiment=sentiment, sentiment_prob=0.9, model_version="t",
    ))
