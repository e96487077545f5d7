"""The Prometheus metrics' own logic: lag from high watermarks and commits, receivers without their tokens."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from faust.types import TP

from prometheus_client import REGISTRY, generate_latest

from riskpulse.streams.ops import metrics


def _value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


class FakeConsumer:
    def __init__(self, ends: dict, committed: dict):
        self.ends, self._committed_offset = ends, committed

    def assignment(self):
        return set(self.ends)

    async def highwaters(self, *tps):
        return {tp: self.ends[tp] for tp in tps}


def test_lag_is_the_high_watermark_minus_the_committed_offset_per_partition():
    tp0, tp1, tp2 = (TP("unit.raw", p) for p in range(3))
    app = SimpleNamespace(consumer=FakeConsumer({tp0: 120, tp1: 50, tp2: 7}, {tp0: 100, tp1: 50}))
    metrics.PROCESSED.processed("unit.raw", 0, time.time() - 30)
    asyncio.run(metrics.refresh_lag(app, "unit-group"))
    assert _value("riskpulse_consumer_lag_messages", group="unit-group", topic="unit.raw", partition="0") == 20
    assert _value("riskpulse_consumer_lag_messages", group="unit-group", topic="unit.raw", partition="1") == 0
    assert _value("riskpulse_consumer_lag_messages", group="unit-group", topic="unit.raw", partition="2") == 7  # never committed
    assert 29 <= _value("riskpulse_consumer_lag_seconds", group="unit-group", topic="unit.raw", partition="0") < 60
    assert _value("riskpulse_consumer_lag_seconds", group="unit-group", topic="unit.raw", partition="1") == 0


def test_webhook_outcomes_are_labelled_by_host_so_url_tokens_stay_out_of_the_scrape():
    metrics.webhook_attempted("https://hooks.example.com/services/T000/B000/s3cr3t-token", "delivered")
    metrics.webhook_attempted("https://hooks.example.com/services/T000/B000/s3cr3t-token", "retrying")
    assert _value("riskpulse_webhook_deliveries_total", receiver="hooks.example.com", outcome="delivered") >= 1
    assert b"s3cr3t-token" not in generate_latest(REGISTRY)


def test_the_model_gauge_follows_a_reload():
    metrics.serving_model("v1")
    metrics.serving_model("v2")
    assert _value("riskpulse_model_info", version="v2") == 1
    assert _value("riskpulse_model_info", version="v1") is None


def test_a_process_without_faust_serves_the_same_scrape_on_its_own_port():
    import urllib.request

    from riskpulse.streams.ops.stack import free_ports

    port = free_ports(1)[0]
    metrics.serve_metrics(port)
    metrics.RETRAIN_RUNS.labels("promoted").inc()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'riskpulse_retrain_runs_total{status="promoted"}' in text
