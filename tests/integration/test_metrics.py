"""A Prometheus scrape of a running worker: consumer lag falls to 0 as it drains a backlog, and the
counters agree with what the group committed. Real broker and ClickHouse server (the session stack)."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

import pytest

from riskpulse.streams.ingest.producers import kafka_producer
from riskpulse.streams.topics import ensure_topics, group_lag
from tests.fixtures.stack import free_ports
from tests.integration.pipeline_support import Worker, good_messages, run_settings

pytestmark = pytest.mark.integration

SAMPLE = re.compile(r"^(riskpulse_[a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+|NaN)$", re.M)


def scrape(port: int) -> dict[str, float]:
    """Each riskpulse_* series summed over its labels, from the text format."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")  # the Prometheus text format
        text = response.read().decode()
    totals: dict[str, float] = {}
    for name, _labels, value in SAMPLE.findall(text):
        totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def test_a_scrape_shows_consumer_lag_falling_to_zero_as_the_worker_drains(stack, quick_registry, tmp_path: Path) -> None:
    port = free_ports(1)[0]
    settings = run_settings(stack, f"metrics{int(time.time())}", quick_registry, web_port=port, batch_max_size=200)
    ensure_topics(settings)
    backlog = good_messages("metrics", 6000)
    producer = kafka_producer(settings)
    for m in backlog:
        producer.send(settings.topic_raw, key=m.key, value=m.to_bytes())
    producer.flush()
    producer.close()

    worker = Worker.start(settings, tmp_path / "worker.log", args=("--null-model",))
    try:
        worker.wait_ready()
        lags: list[float] = []
        deadline = time.monotonic() + 240
        while True:
            worker.assert_alive()
            sample = scrape(port)
            lags.append(sample.get("riskpulse_consumer_lag_messages", float("nan")))
            if sample.get("riskpulse_messages_stored_total") == len(backlog) and lags[-1] == 0:
                break
            assert time.monotonic() < deadline, f"lags seen {lags[-10:]}, last scrape {sample}\n{worker.tail()}"
            time.sleep(0.2)
        assert max(lags) > 0, f"the scrape never saw the backlog: {lags[:10]}"
        assert lags[-1] == 0 and not any(group_lag(settings).values()), "the broker agrees the group is caught up"
        assert sample["riskpulse_records_consumed_total"] == len(backlog)
        assert sample["riskpulse_dead_letters_total"] == 0
        assert sample["riskpulse_consumer_lag_seconds"] == 0
        assert sample["riskpulse_model_info"] == 1
        assert sample["riskpulse_batch_seconds_count"] >= len(backlog) / 200
    finally:
        worker.stop()
