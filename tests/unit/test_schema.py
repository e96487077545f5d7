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
    ],
)
def test_bad_records_name_the_problem(raw, reason):
    with pytest.raises(InvalidMessage, match=reason):
        parse_message(raw)


def test_message_round_trips_through_bytes():
    msg = parse_message(_raw(meta={"url": "https://example.org/a"}))
    assert Message.model_validate_json(msg.to_bytes()) == msg
