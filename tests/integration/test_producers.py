"""`riskpulse produce` and `riskpulse feeds` against the real broker (feeds over real HTTP)."""

from __future__ import annotations

import csv
import subprocess
import threading
import time
import uuid
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kafka import KafkaConsumer

from riskpulse.core.schema import parse_message
from riskpulse.streams.topics import ensure_topics
from tests.fixtures.models import shared_data
from tests.integration.pipeline_support import CLI, child_env, run_settings
from tests.unit.test_producers import _write_feed

pytestmark = pytest.mark.integration


def _read_all(settings, expected: int, timeout: float = 60):
    consumer = KafkaConsumer(settings.topic_raw, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=3000)
    records, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            records += [r for batch in consumer.poll(timeout_ms=500).values() for r in batch]
            if len(records) >= expected:
                records += [r for batch in consumer.poll(timeout_ms=1500).values() for r in batch]
                break
    finally:
        consumer.close()
    return records


@pytest.fixture
def settings(stack, tmp_path):
    s = run_settings(stack, f"p{uuid.uuid4().hex[:8]}", tmp_path / "no-models", home=tmp_path / "home")
    ensure_topics(s)
    return s


def test_produce_replays_a_shared_csv_at_a_rate_keyed_by_source_channel(settings, tmp_path):
    src = shared_data() / "financial-phrasebank" / "test.csv"
    sample = tmp_path / "phrasebank.csv"
    with src.open(newline="", encoding="utf-8") as fh, sample.open("w", newline="", encoding="utf-8") as out:
        rows = list(csv.DictReader(fh))[:120]
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    started = time.monotonic()
    done = subprocess.run([*CLI, "produce", str(sample), "--rate", "200", "--source", "news", "--channel", "phrasebank"],
                          env=child_env(settings), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert time.monotonic() - started >= 0.5, "120 messages at 200/s take at least 0.6 s"
    records = _read_all(settings, 120)
    assert len(records) == 120
    msgs = [parse_message(r.value) for r in records]
    assert {r.key for r in records} == {b"news/phrasebank"}
    assert sorted(m.text for m in msgs) == sorted(r["text"] for r in rows)
    assert all(m.meta["label"] in ("negative", "neutral", "positive") for m in msgs)


def test_feeds_publish_each_item_once_across_polls_over_http(settings, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _write_feed(site / "wire.xml", [1, 2, 3])
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/wire.xml"
    try:
        for expected in ("published 3 new items", "published 0 new items"):
            done = subprocess.run([*CLI, "feeds", url], env=child_env(settings), capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr[-2000:]
            assert expected in done.stdout
        _write_feed(site / "wire.xml", [2, 3, 4])
        done = subprocess.run([*CLI, "feeds", url], env=child_env(settings), capture_output=True, text=True, timeout=120)
        assert "published 1 new items" in done.stdout, done.stderr[-2000:]
    finally:
        server.shutdown()
    records = _read_all(settings, 4)
    assert sorted(parse_message(r.value).id for r in records) == [f"urn:item:{n}" for n in (1, 2, 3, 4)]
