"""Store helpers without ClickHouse: escaping, parameter rendering, row mapping, MemoryStore."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from riskpulse.core.schema import DeadLetter, ScoredMessage, dead_letter
from riskpulse.streams.store.backends import MemoryStore, StoreError, literal, render
from riskpulse.streams.store.messages import dead_letter_row, message_row
from riskpulse.streams.ops.stack import KafkaService


def scored(message_id: str = "m-1", sentiment: str = "negative", **extra) -> ScoredMessage:
    return ScoredMessage(
        id=message_id, source="news", channel="wire", ts=datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc),
        text="Bank shares slide", meta={"url": "https://example.org/a"}, topic="Banking", topic_prob=0.9,
        sentiment=sentiment, sentiment_prob=0.8, model_version="v7", **extra,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "NULL"),
        (True, "1"),
        (42, "42"),
        (0.25, "0.25"),
        ("plain", "'plain'"),
        ("it's", r"'it\'s'"),
        ("back\\slash", r"'back\\slash'"),
        ("line\nbreak\ttab\0nul", r"'line\nbreak\ttab\0nul'"),
        (["a", "b'"], r"['a', 'b\'']"),
        (("x", 1), "('x', 1)"),
        (date(2026, 1, 2), "toDate('2026-01-02')"),
        (datetime(2026, 1, 2, 3, 4, 5), "toDateTime('2026-01-02 03:04:05', 'UTC')"),
    ],
)
def test_literal_escapes_like_clickhouse_expects(value, expected):
    assert literal(value) == expected


def test_aware_datetimes_are_rendered_in_utc():
    berlin = timezone(timedelta(hours=1))
    assert literal(datetime(2026, 1, 2, 10, 0, tzinfo=berlin)) == "toDateTime('2026-01-02 09:00:00', 'UTC')"


def test_injection_string_stays_inside_its_quotes():
    attack = "x' OR 1=1; DROP TABLE messages; --\\"
    sql = render("SELECT count() FROM messages WHERE id = %(id)s", {"id": attack})
    assert sql == r"SELECT count() FROM messages WHERE id = 'x\' OR 1=1; DROP TABLE messages; --\\'"


def test_render_leaves_other_percent_signs_and_needs_every_parameter():
    assert render("SELECT 1 WHERE text LIKE '%bank%' AND id = %(id)s", {"id": "a"}) == (
        "SELECT 1 WHERE text LIKE '%bank%' AND id = 'a'"
    )
    assert render("SELECT '%(not_a_param)s'") == "SELECT '%(not_a_param)s'"
    with pytest.raises(StoreError, match="%\\(missing\\)s"):
        render("SELECT %(missing)s", {"other": 1})


def test_unsupported_parameter_type_is_refused():
    with pytest.raises(StoreError, match="dict"):
        literal({"a": 1})


def test_message_row_has_every_column_with_json_meta_and_utc_times():
    row = message_row(scored())
    assert list(row) == [
        "id", "source", "channel", "lang", "ts", "text", "meta", "topic", "topic_prob",
        "sentiment", "sentiment_prob", "model_version", "processed_at", "story_id", "pii",
    ]
    assert row["story_id"] == row["id"]  # scored alone, a message is its own story
    assert row["pii"] == []  # nothing masked
    assert json.loads(row["meta"]) == {"url": "https://example.org/a"}
    assert row["ts"] == datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
    assert row["processed_at"].tzinfo == timezone.utc


def test_dead_letter_row_keeps_position_and_original_bytes():
    letter: DeadLetter = dead_letter("not valid JSON", b"\xff{", "riskpulse.raw", 3, 17)
    row = dead_letter_row(letter)
    assert (row["topic"], row["partition"], row["offset"], row["reason"]) == ("riskpulse.raw", 3, 17, "not valid JSON")
    assert DeadLetter(**row).raw == b"\xff{"


def test_memory_store_dedupes_messages_on_id_keeping_the_latest_write():
    store = MemoryStore()
    store.open()
    store.write_batch("messages", [message_row(scored("a")), message_row(scored("b"))])
    store.write_batch("messages", [message_row(scored("a", sentiment="positive"))])
    rows = {row["id"]: row for row in store.rows("messages")}
    assert sorted(rows) == ["a", "b"]
    assert rows["a"]["sentiment"] == "positive"
    assert store.batches == [("messages", 2), ("messages", 1)]


def test_memory_store_dedupes_dead_letters_on_position():
    store = MemoryStore()
    store.open()
    letter = dead_letter_row(dead_letter("bad", b"x", "riskpulse.raw", 0, 5))
    store.write_batch("dead_letters", [letter, letter])
    assert len(store.rows("dead_letters")) == 1


def test_memory_store_refuses_use_when_closed_mixed_columns_and_sql():
    store = MemoryStore()
    with pytest.raises(StoreError, match="not open"):
        store.write_batch("messages", [message_row(scored())])
    store.open()
    with pytest.raises(StoreError, match="same columns"):
        store.write_batch("t", [{"a": 1}, {"b": 2}])
    with pytest.raises(StoreError, match="chdb_settings"):
        store.query("SELECT 1")


def test_kafka_properties_render_ports_and_data_dir(tmp_path):
    from riskpulse.core.settings import Settings

    settings = Settings(home=tmp_path, kafka_port=19092, kafka_controller_port=19093)
    service = KafkaService(settings, tmp_path / "kafka", tmp_path / "run")
    (tmp_path / "kafka" / "data").mkdir(parents=True)
    (tmp_path / "kafka" / "data" / "meta.properties").write_text("formatted already\n")
    service.prepare()
    text = (tmp_path / "kafka" / "server.properties").read_text()
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in text
    assert "controller.quorum.voters=1@127.0.0.1:19093" in text
    assert f"log.dirs={tmp_path / 'kafka' / 'data'}" in text
