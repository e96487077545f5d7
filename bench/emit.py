"""Emitting scored records, side by side: one ``send`` a record vs the worker's ``Publisher`` (record batches),
at faust's default producer batch size (16 KiB) and at the worker's (RISKPULSE_PRODUCER_MAX_BATCH_BYTES).

Each method sends the same records (real scored-record JSON made from the bundled sample) to a fresh
topic of a real broker, in worker-sized batches, and awaits every acknowledgement per batch, as the
worker does. Printed: messages per second (wall) and microseconds of this process's CPU per record,
the cost that shares the worker's one event loop with faust and the batch stages. Starts its own
broker on free ports under a tmp home, so it runs beside anything else.

    python bench/emit.py [--messages 20000] [--batch 256] [--partitions 4] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from riskpulse.core.resources import sample_messages
from riskpulse.core.schema import Message
from riskpulse.core.settings import Settings
from riskpulse.streams.ops.stack import Stack, free_ports
from riskpulse.streams.worker.agents import Publisher
from riskpulse.streams.worker.batching import ConstantScores, to_scored


FAUST_DEFAULT_BATCH_BYTES = 16384  # faust's producer_max_batch_size default


class _App:
    """What :class:`Publisher` asks of a faust app: a started producer wrapper whose client is aiokafka's."""

    def __init__(self, producer: AIOKafkaProducer):
        self._producer = producer

    async def maybe_start_producer(self) -> "_App":
        return self

    def _ensure_producer(self) -> AIOKafkaProducer:
        return self._producer


def scored_records(count: int) -> list[tuple[bytes, bytes]]:
    lines = [json.loads(line) for line in sample_messages().open(encoding="utf-8") if line.strip()]
    now = datetime.now(timezone.utc)
    records = []
    for i in range(count):
        message = Message.model_validate({**lines[i % len(lines)], "id": f"emit-{i}"})
        scored = to_scored(message, ConstantScores(), now)
        records.append((scored.key, scored.model_dump_json().encode()))
    return records


async def per_record(producer: AIOKafkaProducer, topic: str, batch: list[tuple[bytes, bytes]]) -> None:
    futures = [await producer.send(topic, value, key=key) for key, value in batch]
    await asyncio.gather(*futures)


async def measure(bootstrap: str, args: argparse.Namespace) -> list[dict]:
    records = scored_records(args.messages)
    sizes = sorted({FAUST_DEFAULT_BATCH_BYTES, args.max_batch_bytes})
    producers = {size: AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                                        max_batch_size=size) for size in sizes}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    for client in (*producers.values(), admin):
        await client.start()
    methods = {("send_per_record", FAUST_DEFAULT_BATCH_BYTES): functools.partial(per_record, producers[FAUST_DEFAULT_BATCH_BYTES])}
    methods |= {("publisher_send_batch", size): Publisher(_App(producer)).publish for size, producer in producers.items()}
    best: dict[tuple[str, int], tuple[float, float]] = {}
    try:
        for round_ in range(args.rounds):
            for (name, size), send in methods.items():
                topic = f"emit-{name}-{size}-{round_}"
                await admin.create_topics([NewTopic(topic, args.partitions, 1)])
                await producers[size].send_and_wait(topic, b"warm-up", partition=0)
                wall, cpu = time.perf_counter(), time.process_time()
                for start in range(0, len(records), args.batch):
                    await send(topic, records[start:start + args.batch])
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if (name, size) not in best or wall < best[name, size][0]:
                    best[name, size] = (wall, cpu)
    finally:
        await admin.close()
        for producer in producers.values():
            await producer.stop()
    first = len(records) / best["send_per_record", FAUST_DEFAULT_BATCH_BYTES][0]
    return [{"method": name, "max_batch_bytes": size, "messages": len(records), "batch_size": args.batch,
             "partitions": args.partitions, "msgs_per_s": round(len(records) / wall),
             "cpu_us_per_msg": round(cpu / len(records) * 1e6, 1), "ratio_to_per_record": round(len(records) / wall / first, 2)}
            for (name, size), (wall, cpu) in best.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=256, help="records per awaited batch (the worker's batch size)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--max-batch-bytes", type=int, default=Settings().producer_max_batch_bytes,
                        help="the worker producer's max_batch_size (RISKPULSE_PRODUCER_MAX_BATCH_BYTES), beside faust's 16 KiB default")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each method is kept")
    parser.add_argument("--json", action="store_true", help="one JSON object per method")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rp-emit-") as home:
        kafka_port, controller_port = free_ports(2)
        settings = Settings(home=Path(home), kafka_port=kafka_port, kafka_controller_port=controller_port)
        broker = Stack(settings).kafka[0]  # the broker alone: no ClickHouse in this bench
        broker.run_dir.mkdir(parents=True, exist_ok=True)
        broker.start(timeout=90)
        try:
            results = asyncio.run(measure(settings.bootstrap_servers, args))
        finally:
            broker.stop(timeout=30)
    for result in results:
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{result['method']:<22} {result['max_batch_bytes']:>7,} B batches {result['msgs_per_s']:>8,} msgs/s  {result['cpu_us_per_msg']:>6} µs CPU/record  "
                  f"{result['ratio_to_per_record']:.2f}× per-record send")


if __name__ == "__main__":
    main()
