"""Prometheus metrics of the long-running processes, served at ``/metrics``.

The worker and the alerts service serve it on their faust web port, the retraining scheduler on its
own port (:func:`serve_metrics`). They expose the text format a Prometheus server scrapes
(``prometheus_client``'s default registry, so process CPU, memory and open files come with it).
Counters are totals; Prometheus turns them into rates (``rate(riskpulse_messages_stored_total[1m])``).
Consumer lag is computed at scrape time from the broker's high watermarks and the offsets this
process has committed, so it is what the broker would report for the group, partition by partition.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest, start_http_server

log = logging.getLogger("riskpulse.metrics")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

RECORDS_CONSUMED = Counter("riskpulse_records_consumed_total", "Raw records taken off Kafka.", ["topic"])
MESSAGES_STORED = Counter(
    "riskpulse_messages_stored_total", "Messages stored in ClickHouse, emitted on the scored topic and acked.", ["topic"])
DEAD_LETTERS = Counter("riskpulse_dead_letters_total", "Records dead-lettered (stored with their reason, then acked).", ["topic"])
BATCH_SECONDS = Histogram(
    "riskpulse_batch_seconds", "One batch from taken off Kafka to acked (classify, store, emit, ack).", buckets=_LATENCY_BUCKETS)
STAGE_SECONDS = Histogram(
    "riskpulse_batch_stage_seconds", "Time of one stage of a batch (parse, mask, classify, insert, emit, ack …).", ["stage"],
    buckets=_LATENCY_BUCKETS)
MODEL_INFO = Gauge("riskpulse_model_info", "1 for the model version this worker serves.", ["version"])
CONSUMER_LAG = Gauge(
    "riskpulse_consumer_lag_messages", "Records on the partition not yet committed by this process's consumer group.",
    ["group", "topic", "partition"])
CONSUMER_LAG_SECONDS = Gauge(
    "riskpulse_consumer_lag_seconds", "While records wait on the partition: seconds since the newest record this process "
    "has processed there was produced (0 when caught up).", ["group", "topic", "partition"])
ALERT_EVENTS = Counter("riskpulse_alert_events_total", "Alert state changes (opened, updated, resolved) by rule.", ["rule", "state"])
ALERT_LATE = Counter(
    "riskpulse_alert_late_total", "Scored records (counted once per rule key) that reached the alerts service after "
    "their window had closed: counted in no window.")
WEBHOOK_DELIVERIES = Counter(
    "riskpulse_webhook_deliveries_total", "Webhook delivery attempts by receiver host and outcome (delivered, retrying, dead).",
    ["receiver", "outcome"])


def webhook_attempted(url: str, outcome: str) -> None:
    """Count one delivery attempt; the receiver is its host only, since webhook URLs often carry tokens."""
    WEBHOOK_DELIVERIES.labels(urlsplit(url).netloc or "?", outcome).inc()


RETRAIN_RUNS = Counter("riskpulse_retrain_runs_total", "Scheduled retraining runs by outcome (promoted, rejected, failed …).", ["status"])

_served_version: list[str] = []


def serving_model(version: str) -> None:
    """Point ``riskpulse_model_info`` at ``version`` (a hot reload changes it)."""
    if _served_version != [version]:
        MODEL_INFO.clear()
        MODEL_INFO.labels(version).set(1)
        _served_version[:] = [version]


class ProcessedClock:
    """Broker timestamp of the newest record processed per partition, for lag in seconds."""

    def __init__(self) -> None:
        self.newest: dict[tuple[str, int], float] = {}

    def processed(self, topic: str, partition: int, timestamp: float | None) -> None:
        if timestamp is not None:
            key = (topic, partition)
            self.newest[key] = max(self.newest.get(key, 0.0), timestamp)


PROCESSED = ProcessedClock()


async def refresh_lag(app: Any, group: str) -> None:
    """Set the lag gauges of every partition assigned to ``app``'s consumer (broker round trip for high watermarks)."""
    consumer = app.consumer
    assigned = sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition))
    if not assigned:
        return
    highwaters = await consumer.highwaters(*assigned)
    now = time.time()
    for tp in assigned:
        committed = consumer._committed_offset.get(tp)  # faust keeps the last committed offset per partition
        end = highwaters.get(tp)
        if end is None:
            continue
        # faust commits "offset of the last processed record + 1"; None until its first commit.
        lag = max(0, end - (committed if committed is not None else 0))
        CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(lag)
        newest = PROCESSED.newest.get((tp.topic, tp.partition))
        CONSUMER_LAG_SECONDS.labels(group, tp.topic, str(tp.partition)).set(0 if lag == 0 or newest is None else max(0.0, now - newest))


def add_metrics_page(app: Any, group: str) -> None:
    """Serve ``/metrics`` (Prometheus text format) on the faust app's web port."""

    @app.page("/metrics")
    async def metrics(web, request):  # noqa: ARG001 - faust's page signature
        try:
            await refresh_lag(app, group)
        except Exception as exc:  # noqa: BLE001 - a scrape while the broker is away still reports the rest
            log.warning("consumer lag unavailable for this scrape: %r", exc)
        return web.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


def serve_metrics(port: int) -> None:
    """``/metrics`` on 127.0.0.1:``port`` from a background thread, for processes without a faust web server."""
    try:
        start_http_server(port, addr="127.0.0.1")
    except OSError as exc:  # e.g. a standby scheduler beside the active one: it serves without metrics
        log.warning("no /metrics: port %d on 127.0.0.1 is taken (%s); set another port to scrape this process", port, exc)
        return
    log.info("metrics on http://127.0.0.1:%d/metrics", port)
