"""End-to-end pipeline throughput and latency beside the bare classifier, in one run.

    python bench/pipeline.py [--messages 5000] [--registry DIR]

1. Bare classifier: ``Engine.classify`` over the texts in batches of ``batch_max_size``,
   before and after the pipeline run (the better one is the baseline: a conservative ratio).
2. Pipeline: a real broker + clickhouse-server (started here on free ports), one
   ``riskpulse worker`` subprocess (warmed up first); the same texts are produced as fast as
   possible. A message counts as stored when its scored record appears (the worker emits it
   only after the ClickHouse insert returned); latency = that record's broker timestamp −
   the send time.
Prints msgs/s of both, their ratio (goal ≥ 0.9) and p50/p99 message→stored latency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the worker harness is shared with the integration tests (tests.integration)

from riskpulse.core.settings import Settings  # noqa: E402
from tests.integration.pipeline_support import Worker, good_messages, run_settings, wait_drained  # noqa: E402


def bare_classifier(settings: Settings, texts: list[str], engine=None) -> float:
    from riskpulse.models.serving.inference import Engine

    engine = engine or Engine.load(settings)
    engine.classify(texts[:64])
    size = settings.batch_max_size
    started = time.perf_counter()
    for i in range(0, len(texts), size):
        engine.classify(texts[i : i + size])
    return len(texts) / (time.perf_counter() - started)


def pipeline(settings: Settings, messages, paced, rate: float, workdir: Path) -> tuple[float, list[float], list[float]]:
    """(flood msgs/s, flood latencies, latencies at a steady ``rate``) through one warmed-up worker."""
    from riskpulse.streams.ingest.producers import kafka_producer
    from riskpulse.streams.topics import ensure_topics

    ensure_topics(settings)
    worker = Worker.start(settings, workdir / "worker.log")
    producer = kafka_producer(settings)
    try:
        worker.wait_ready()
        for m in good_messages("warm", 256):
            producer.send(settings.topic_raw, key=m.key, value=m.to_bytes())
        producer.flush()
        wait_drained(settings, [worker])
        first, sent, stored = _run(settings, producer, worker, messages, rate=None)
        throughput = len(stored) / (max(stored.values()) - first)
        _, sent2, stored2 = _run(settings, producer, worker, paced, rate=rate)
        return throughput, [stored[i] - sent[i] for i in sent], [stored2[i] - sent2[i] for i in sent2]
    finally:
        producer.close()
        worker.stop()


def _run(settings: Settings, producer, worker: Worker, messages, rate: float | None):
    """Send ``messages`` (at ``rate``/s, or flat out) and wait for each one's scored record."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(settings.topic_scored, bootstrap_servers=settings.bootstrap_servers, group_id=None)
    while not consumer.assignment():
        consumer.poll(timeout_ms=200)
    consumer.seek_to_end()
    consumer.poll(timeout_ms=100)
    sent_at: dict[str, float] = {}
    first = time.time()
    for n, m in enumerate(messages):
        if rate:
            time.sleep(max(0.0, first + n / rate - time.time()))
        sent_at[m.id] = time.time()
        producer.send(settings.topic_raw, key=m.key, value=m.to_bytes())
    producer.flush()
    stored_at: dict[str, float] = {}
    deadline = time.monotonic() + 600
    while len(stored_at) < len(sent_at) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for rec in records:
                msg_id = _id_of(rec.value)
                if msg_id in sent_at:
                    stored_at[msg_id] = rec.timestamp / 1000
        worker.assert_alive()
    consumer.close()
    if len(stored_at) < len(sent_at):
        raise SystemExit(f"only {len(stored_at)}/{len(sent_at)} stored within 600 s:\n{worker.tail()}")
    return first, sent_at, stored_at


def _id_of(value: bytes) -> str:
    import json

    return json.loads(value)["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--registry", type=Path, default=None, help="model registry root (default: settings)")
    args = parser.parse_args()

    from riskpulse.streams.ops.stack import Stack
    from tests.fixtures.stack import free_ports

    base = Settings()
    registry = (args.registry or base.registry_root).resolve()
    with tempfile.TemporaryDirectory(prefix="riskpulse-bench-") as tmp:
        kafka, controller, native, http = free_ports(4)
        stack_settings = base.model_copy(update={
            "home": Path(tmp), "store": "server", "kafka_port": kafka, "kafka_controller_port": controller,
            "clickhouse_port": native, "clickhouse_http_port": http, "kafka_bootstrap": None,
        })
        settings = run_settings(stack_settings, f"bench{uuid.uuid4().hex[:6]}", registry, device=base.device)
        messages = good_messages("bench", args.messages)
        from riskpulse.models.serving.inference import Engine

        engine = Engine.load(settings)
        texts = [m.text for m in messages]
        bare_before = bare_classifier(settings, texts, engine)
        load_before = os.getloadavg()[0]
        rate = bare_before / 2
        paced = [m.model_copy(update={"id": "paced-" + m.id}) for m in messages[: max(200, int(rate * 10))]]
        stack = Stack(stack_settings)
        stack.up(timeout=120)
        try:
            e2e, flood, steady = pipeline(settings, messages, paced, rate, Path(tmp))
        finally:
            stack.down()
        load_during = os.getloadavg()[0]
        bare_after = bare_classifier(settings, texts, engine)
    bare = max(bare_before, bare_after)

    def pct(values: list[float]) -> str:
        q = statistics.quantiles(values, n=100)
        return f"{q[49] * 1000:.0f} / {q[98] * 1000:.0f} ms"

    print(f"\nmessages: {args.messages}, batch ≤{settings.batch_max_size} / {settings.batch_max_wait_s}s, device {settings.device}")
    print(f"{'bare batched classifier':<34}{bare:>8.0f} msgs/s  (best of {bare_before:.0f} before, {bare_after:.0f} after)")
    print(f"{'1-min load average':<34}{load_before:>8.1f} before, {load_during:.1f} after the pipeline ({os.cpu_count()} CPUs)")
    print(f"{'pipeline produce→stored':<34}{e2e:>8.0f} msgs/s")
    print(f"{'ratio pipeline / bare':<34}{e2e / bare:>8.2f}   (goal ≥ 0.9)")
    print(f"{'latency p50/p99, flood':<34}{pct(flood):>16}  (queueing behind {args.messages} sent at once)")
    print(f"{f'latency p50/p99, {rate:.0f} msgs/s steady':<34}{pct(steady):>16}  ({len(paced)} messages)")


if __name__ == "__main__":
    main()
