"""The same SQL on both ClickHouse engines: clickhouse-server 18.16 and chDB 26.x."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from types import ModuleType

import pytest

from riskpulse.streams.store.migrate import migrate
from riskpulse.core.schema import ScoredMessage, dead_letter
from riskpulse.streams.store.backends import Store, StoreError
from riskpulse.streams.store.messages import dead_letter_row, message_row

pytestmark = pytest.mark.integration

ATTACK = "x' OR 1=1); DROP TABLE messages; --\\' \n\t\0 ü"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["server", "chdb"])
def store(request) -> Store:
    """Each test runs once per engine, on emptied tables."""
    return request.getfixturevalue(f"{request.param}_store")


def scored(message_id: str, minute: int = 0, sentiment: str = "negative", text: str = "Bank shares slide",
           version: str = "v1", processed_at: datetime | None = None) -> ScoredMessage:
    return ScoredMessage(
        id=message_id, source="news", channel="wire", ts=T0 + timedelta(minutes=minute), text=text,
        meta={"n": minute}, topic="Banking", topic_prob=0.75, sentiment=sentiment, sentiment_prob=0.5,
        model_version=version, processed_at=processed_at or datetime.now(timezone.utc),
    )


def test_redelivered_messages_count_once_in_product_queries(store):
    batch = [message_row(scored(f"m-{i}", minute=i % 7)) for i in range(200)]
    store.write_batch("messages", batch)
    store.write_batch("messages", batch[:50])  # a redelivery after a crash
    store.write_batch("messages", batch[10:12] + batch[10:12])
    rows = store.query("SELECT count() AS n, uniqExact(id) AS ids FROM messages FINAL")
    assert rows == [{"n": 200, "ids": 200}]
    per_minute = store.query(
        "SELECT toStartOfMinute(ts) AS minute, count() AS n FROM messages FINAL GROUP BY minute ORDER BY minute"
    )
    assert [row["n"] for row in per_minute] == [29, 29, 29, 29, 28, 28, 28]
    assert per_minute[0]["minute"] == T0


def test_rescored_message_keeps_the_latest_version(store):
    early = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    store.write_batch("messages", [message_row(scored("m-1", version="v1", processed_at=early))])
    store.write_batch("messages", [message_row(scored("m-1", version="v2", sentiment="positive",
                                                      processed_at=early + timedelta(hours=1)))])
    assert store.query("SELECT model_version, sentiment FROM messages FINAL") == [
        {"model_version": "v2", "sentiment": "positive"}
    ]


def test_injection_string_stays_data_in_inserts_and_parameters(store):
    store.write_batch("messages", [message_row(scored("evil", text=ATTACK)), message_row(scored("fine"))])
    rows = store.query("SELECT id, text FROM messages FINAL WHERE text = %(text)s", {"text": ATTACK})
    assert rows == [{"id": "evil", "text": ATTACK}]
    assert store.query("SELECT count() AS n FROM messages FINAL WHERE id = %(id)s", {"id": ATTACK}) == [{"n": 0}]
    assert store.query("SELECT count() AS n FROM messages FINAL") == [{"n": 2}]


def test_parameters_of_every_type_and_utc_results(store):
    store.write_batch("messages", [message_row(scored(f"m-{i}", minute=i)) for i in range(10)])
    berlin = timezone(timedelta(hours=1))
    rows = store.query(
        """
        SELECT id, ts, toDateTime(intDiv(toUInt32(ts), 300) * 300) AS bucket, topic_prob
        FROM messages FINAL
        WHERE ts >= %(since)s AND id IN %(ids)s AND topic_prob > %(p)s AND text LIKE '%slide%'
        ORDER BY id
        """,
        {"since": (T0 + timedelta(minutes=5)).astimezone(berlin), "ids": ("m-4", "m-5", "m-6"), "p": 0.5},
    )
    assert [row["id"] for row in rows] == ["m-5", "m-6"]
    assert rows[0]["ts"] == T0 + timedelta(minutes=5) and rows[0]["ts"].tzinfo is not None
    assert rows[0]["bucket"] == T0 + timedelta(minutes=5)
    assert rows[0]["topic_prob"] == pytest.approx(0.75)


def test_dead_letters_are_idempotent_on_their_offset_and_keep_the_bytes(store):
    raw = b"\xff\xfe not utf-8"
    letters = [dead_letter_row(dead_letter("not valid UTF-8", raw, "riskpulse.raw", p, o)) for p in range(2) for o in range(5)]
    store.write_batch("dead_letters", letters)
    store.write_batch("dead_letters", letters[:3])
    rows = store.query("SELECT `partition`, `offset`, reason, raw_b64 FROM dead_letters FINAL ORDER BY `partition`, `offset`")
    assert len(rows) == 10
    assert (rows[7]["partition"], rows[7]["offset"]) == (1, 2)
    assert base64.b64decode(rows[0]["raw_b64"]) == raw


def test_migration_is_idempotent_and_errors_name_the_problem(store):
    assert migrate(store) == migrate(store)
    with pytest.raises(StoreError, match="no_such_table"):
        store.query("SELECT * FROM no_such_table")
    assert store.query("SELECT count() AS n FROM messages") == [{"n": 0}]


def test_a_column_declared_as_added_reaches_a_table_created_before_it(store):
    old = ModuleType("old_layout")
    old.DDL = ["CREATE TABLE IF NOT EXISTS evolving (id String, n UInt32) ENGINE = ReplacingMergeTree() ORDER BY id"]
    store.execute("DROP TABLE IF EXISTS evolving")
    migrate(store, [old])
    store.write_batch("evolving", [{"id": "a", "n": 1}])
    new = ModuleType("new_layout")
    new.DDL = [
        "CREATE TABLE IF NOT EXISTS evolving (id String, n UInt32, tags Array(String)) ENGINE = ReplacingMergeTree() ORDER BY id"
    ]
    new.ADDED_COLUMNS = [("evolving", "tags", "Array(String)")]
    assert migrate(store, [new]) == 2  # the CREATE (a no-op here) and the ALTER
    assert migrate(store, [new]) == 1  # the column is there now: nothing to alter
    store.write_batch("evolving", [{"id": "b", "n": 2, "tags": ["card", "email"]}])
    rows = store.query("SELECT id, tags FROM evolving ORDER BY id")
    assert rows == [{"id": "a", "tags": []}, {"id": "b", "tags": ["card", "email"]}]
    store.execute("DROP TABLE evolving")
