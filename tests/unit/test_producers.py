"""File replay and feed polling, up to the Kafka send (a recording fake producer)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from riskpulse.streams.ingest.feeds import load_sent, poll_once, state_path
from riskpulse.streams.ingest.producers import InputFileError, file_messages, send_messages, to_message
from riskpulse.core.schema import parse_message
from riskpulse.core.settings import Settings


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic, key=None, value=None):
        self.sent.append((topic, key, value))

        class Done:
            def get(self, timeout=None):
                return None

        return Done()

    def flush(self):
        pass


def test_shared_csv_with_text_and_label_maps_onto_messages(tmp_path):
    path = tmp_path / "sent.csv"
    path.write_text('text,label\n"Stocks fall, again",bearish\n"  ",neutral\nRates steady,neutral\n', encoding="utf-8")
    msgs = list(file_messages(path, source="news"))
    assert [m.text for m in msgs] == ["Stocks fall, again", "Rates steady"]  # the blank row is skipped
    assert msgs[0].source == "news" and msgs[0].channel == "sent" and msgs[0].meta == {"label": "bearish"}
    assert msgs[0].id.startswith("h-") and msgs[0].ts.tzinfo is not None


def test_jsonl_fields_are_kept_and_bad_lines_named(tmp_path):
    path = tmp_path / "m.jsonl"
    row = {"id": "a1", "source": "customer", "channel": "app", "ts": "2026-03-01T09:00:00+01:00", "text": "card blocked", "meta": {"k": 1}, "extra": "x"}
    path.write_text(json.dumps(row) + "\n\n", encoding="utf-8")
    (msg,) = file_messages(path, source="news")
    assert (msg.id, msg.source, msg.channel) == ("a1", "customer", "app")
    assert msg.ts == datetime(2026, 3, 1, 8, tzinfo=timezone.utc) and msg.meta == {"extra": "x", "k": 1}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n[1]\n', encoding="utf-8")
    with pytest.raises(InputFileError, match="bad.jsonl:2"):
        list(file_messages(bad, source="news"))
    with pytest.raises(InputFileError, match="use .csv or .jsonl"):
        list(file_messages(tmp_path / "x.parquet", source="news"))


def test_send_keys_by_source_channel_and_bytes_round_trip():
    settings = Settings()
    producer = RecordingProducer()
    msgs = [to_message({"text": f"t{i}", "id": f"i{i}"}, source="news", channel="wire") for i in range(3)]
    assert send_messages(msgs, settings, producer=producer, rate=1000) == 3
    assert {t for t, _, _ in producer.sent} == {settings.topic_raw}
    assert {k for _, k, _ in producer.sent} == {b"news/wire"}
    assert [parse_message(v) for _, _, v in producer.sent] == msgs


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Test Wire</title><id>urn:test</id><updated>2026-01-02T10:00:00Z</updated>
  {entries}
</feed>"""
ENTRY = """<entry><id>urn:item:{n}</id><title>Bank {n} raises rates</title>
  <summary type="html">&lt;p&gt;Item &lt;b&gt;{n}&lt;/b&gt; body&lt;/p&gt;</summary>
  <updated>2026-01-02T10:0{n}:00Z</updated><link href="https://example.test/{n}"/></entry>"""


def _write_feed(path, numbers):
    path.write_text(ATOM.format(entries="".join(ENTRY.format(n=n) for n in numbers)), encoding="utf-8")


def test_feed_items_are_published_once_across_polls(tmp_path):
    settings = Settings(home=tmp_path / "home")
    feed = tmp_path / "wire.xml"
    producer = RecordingProducer()
    _write_feed(feed, [1, 2])
    assert poll_once([str(feed)], settings, producer=producer) == 2
    first = [parse_message(v) for _, _, v in producer.sent]
    assert [m.id for m in first] == ["urn:item:1", "urn:item:2"]
    assert first[0].text == "Bank 1 raises rates. Item 1 body" and first[0].channel == "Test Wire"
    assert first[0].ts == datetime(2026, 1, 2, 10, 1, tzinfo=timezone.utc)
    assert poll_once([str(feed)], settings, producer=producer) == 0
    _write_feed(feed, [1, 2, 3])
    assert poll_once([str(feed), str(feed)], settings, producer=producer) == 1
    assert [parse_message(v).id for _, _, v in producer.sent] == ["urn:item:1", "urn:item:2", "urn:item:3"]
    assert load_sent(state_path(settings)) == {"urn:item:1", "urn:item:2", "urn:item:3"}
