import json

import pytest

from riskpulse.core.schema import InvalidMessage, Message, content_id, parse_message


def _raw(**over):
    payload = {"source": "news", "channel": "reuters", "ts": "2026-01-02T10:00:00Z", "text": "Bank shares slump"}
    payload.update(over)
    return json.dumps(payload).encode()


def test_valid_message_gets_content_hash_id_and_utc_time():
    msg = parse_message(_raw())
    assert msg.id == content_id("news", "reuters", "Bank shares slump")
    assert msg.ts.utcoffset().total_seconds() == 0
    assert msg.key == b"news/reuters"


def test_producer_id_is_kept():
    assert parse_message(_raw(id="abc-1")).id == "abc-1"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid UTF-8"),
        (_raw(text="   "), "text"),
        (json.dumps({"source": "news", "ts": "2026-01-02T10:00:00Z"}).encode(), "text"),
        (_raw(ts="2026-01-02T10:00:00"), "timezone"),
        (_raw(source=7), "source"),
        (_raw(text="x" * 33_000), "text is larger than 32768 bytes"),
        (_raw(text="x" * 60_000), "over the size limit"),
        (b"[1, 2]", "expected an object"),
        (None, "empty record"),
        (b"[" * 5000 + b"]" * 5000, "JSON nested too deeply"),   # json.loads raised RecursionError: the batch crashed
        (_raw(meta=json.loads('{"a":' * 300 + "1" + "}" * 300)), "nested deeper than 32"),   # emit's serialiser crashed
        (_raw(ts="1969-12-31T23:59:59Z"), "before 1970"),
        (_raw(ts="2100-01-01T00:00:00Z"), "in the future"),
    ],
)
def test_bad_records_name_the_problem(raw, reason):
    with pytest.raises(InvalidMessage, match=reason):
        parse_message(raw)


def test_message_round_trips_through_bytes():
    msg = parse_message(_raw(meta={"url": "https://example.org/a"}))
    assert Message.model_validate_json(msg.to_bytes()) == msg


def test_epoch_and_today_are_valid_event_times():
    """1970-01-01 is old but storable (the detector counts it late); a day of producer clock skew is tolerated."""
    from datetime import datetime, timedelta, timezone

    assert parse_message(_raw(ts="1970-01-01T00:00:00Z")).ts.year == 1970
    soon = (datetime.now(timezone.utc) + timedelta(hours=23)).isoformat()
    assert parse_message(_raw(ts=soon)).ts.isoformat() == soon


def test_dead_letter_of_a_1_mb_line_fits_a_kafka_message():
    """Base64 of a 1 MB line (1.33 MB) was refused by the dead-letter topic, stalling the worker's batch."""
    import hashlib

    from riskpulse.core.schema import DEAD_LETTER_HEAD_BYTES, MAX_RECORD_BYTES, dead_letter

    raw = b"x" * 1_000_000
    letter = dead_letter("record is 1000000 bytes, over the size limit", raw, "raw", 3, 17)
    assert len(letter.model_dump_json()) < 10_000
    assert letter.raw == raw[:DEAD_LETTER_HEAD_BYTES]
    assert f"first {DEAD_LETTER_HEAD_BYTES} of 1000000 bytes, sha256 {hashlib.sha256(raw).hexdigest()}" in letter.reason
    assert "raw[3]@17" in letter.reason
    within = b"{" + b"x" * (MAX_RECORD_BYTES - 1)   # not JSON but within the size limit: kept whole
    assert dead_letter("not valid JSON", within, "raw", 0, 1).raw == within
