"""The scoring agent: raw topic → batches → classify → store → emit → ack.

Offsets are acked only after :func:`riskpulse.streams.worker.batching.process_batch` returned (the
batch is durable in the store) and the scored/dead-letter records were delivered, and committed
right after (faust's own commit every second would lose them on a rebalance, see ``commit_acked``).
The batch is gathered with ``noack_take`` (plain ``take``/``take_events`` ack in a
``finally``, i.e. even when processing raised); faust commits only the contiguous
run of acked offsets. A failing store or broker is retried in place with backoff (the
partition waits); a killed worker's unacked batches are redelivered to whoever gets
the partition, and the idempotent messages table absorbs the repeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from riskpulse.streams.enrich.pii import masker_for
from riskpulse.streams.worker.batching import (
    BatchResult, BatchWriter, Classifier, EntityFinder, RawRecord, StoryGrouper, process_batch,
)
from riskpulse.core.retry import retry_async
from riskpulse.core.settings import Settings
from riskpulse.streams.ops import metrics

log = logging.getLogger("riskpulse.worker")


def raw_record(event: Any) -> RawRecord:
    """A faust event as the plain record the batching functions take."""
    msg = event.message
    return RawRecord(value=msg.value, topic=msg.topic, partition=msg.partition, offset=msg.offset)


def describe(records: Sequence[RawRecord]) -> str:
    """``topic[partition]@first-last`` for each partition in the batch, for logs."""
    spans: dict[tuple[str, int], list[int]] = {}
    for r in records:
        spans.setdefault((r.topic, r.partition), []).append(r.offset)
    return " ".join(f"{t}[{p}]@{min(o)}-{max(o)}" for (t, p), o in sorted(spans.items()))


class Publisher:
    """Sends a batch's records to a topic as whole Kafka record batches, awaiting delivery once per batch.

    Per-record ``topic.send`` goes through faust's pending-message and sensor machinery and was 74% of
    a null-model worker's batch time. Records are grouped by the partition the producer's own
    partitioner gives their key (the same placement as ``send``), appended to ``create_batch()``
    builders and handed over with ``send_batch``; the producer's settings (``acks=all``, idempotence,
    retries) apply to these batches as to any other. With the worker's 256 KiB producer batches this
    costs ~10 µs of CPU a record against ~30 µs for one ``send`` a record (``bench/emit.py``).
    """

    def __init__(self, app):
        self.app = app

    async def publish(self, topic: str, records: Sequence[tuple[bytes | None, bytes]],
                      delivered: set[tuple[int, int]] | None = None) -> None:
        """Send ``records`` and wait until the broker has them all.

        ``delivered``, kept by the caller across the retries of one batch, collects the Kafka batches the
        broker acknowledged, as (partition, first row): a retry after a failure on one partition sends only
        what did not arrive, instead of emitting the rest of the batch a second time. The same rows make the
        same Kafka batches, so the keys match from one try to the next.
        """
        producer = (await self.app.maybe_start_producer())._ensure_producer()  # faust's aiokafka producer
        partitions = sorted(await producer.partitions_for(topic))
        by_partition: dict[int, list[tuple[bytes | None, bytes]]] = {}
        for key, value in records:
            by_partition.setdefault(producer._partitioner(key, partitions, partitions), []).append((key, value))
        done = delivered if delivered is not None else set()
        sent: list[tuple[tuple[int, int], asyncio.Future]] = []
        try:
            for partition, rows in by_partition.items():
                batch, first = producer.create_batch(), 0
                for row, (key, value) in enumerate(rows):
                    if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start the next
                        if (partition, first) not in done:
                            sent.append(((partition, first), await producer.send_batch(batch, topic, partition=partition)))
                        batch, first = producer.create_batch(), row
                        batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any one record
                if (partition, first) not in done:
                    sent.append(((partition, first), await producer.send_batch(batch, topic, partition=partition)))
        finally:  # what went out before a failure still counts as delivered once the broker confirms it
            results = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
            done.update(where for (where, _), result in zip(sent, results) if not isinstance(result, BaseException))
        for result in results:
            if isinstance(result, BaseException):
                raise result


def observe_batch(events: Sequence[Any], result: BatchResult, stages: dict[str, float], seconds: float, model_version: str) -> None:
    """Count an acked batch in the process's Prometheus metrics."""
    topic = events[0].message.topic
    metrics.RECORDS_CONSUMED.labels(topic).inc(len(events))
    metrics.MESSAGES_STORED.labels(topic).inc(len(result.scored))
    metrics.DEAD_LETTERS.labels(topic).inc(len(result.dead))
    metrics.BATCH_SECONDS.observe(seconds)
    for stage, stage_seconds in stages.items():
        metrics.STAGE_SECONDS.labels(stage).observe(stage_seconds)
    metrics.serving_model(model_version)
    for event in events:
        metrics.PROCESSED.processed(event.message.topic, event.message.partition, event.message.timestamp)


@dataclass(frozen=True)
class Scorer:
    """The agent and what it sends with (tests patch ``publisher.publish``)."""

    agent: Any
    publisher: Publisher


def register_scorer(app, settings: Settings, engine: Classifier, store: BatchWriter, executor: ThreadPoolExecutor,
                    stories: StoryGrouper | None = None, entities: EntityFinder | None = None) -> Scorer:
    """Attach the scoring agent to ``app``; with ``stories`` (used from the executor's one thread, batch after
    batch) each message is stored and emitted with its story id, with ``entities`` with its entities."""
    raw = app.topic(settings.topic_raw, key_serializer="raw", value_serializer="raw", partitions=settings.raw_partitions)
    publisher = Publisher(app)
    masker = masker_for(settings)  # None when RISKPULSE_PII_MASK is off

    async def emit(result: BatchResult, delivered: dict[str, set[tuple[int, int]]]) -> int:
        """Scored records and dead letters onto their topics; ``delivered`` (per topic, kept across retries)
        makes a retry send only what the broker has not acknowledged yet."""
        scored = [(m.key, m.model_dump_json().encode()) for m in result.scored]
        dead = [(f"{d.topic}/{d.partition}".encode(), d.model_dump_json().encode()) for d in result.dead]
        if scored:
            await publisher.publish(settings.topic_scored, scored, delivered.setdefault(settings.topic_scored, set()))
        if dead:
            await publisher.publish(settings.topic_dead_letter, dead, delivered.setdefault(settings.topic_dead_letter, set()))
        return len(scored) + len(dead)

    async def commit_acked() -> None:
        """Commit the acked offsets now, not at faust's next commit tick: on a rebalance faust drops a revoked
        partition's acked offsets before its own commit, so the last batch acked before the rebalance went to
        the partition's next owner again (found as scored duplicates in the rolling-deploy fault test)."""
        await app.consumer.commit()

    async def handle(stream, events: list, previous: asyncio.Future | None) -> bool:
        """Store, then (after the previous batch is acked) emit and ack one batch; False once stopping.

        Storing runs in the executor as soon as the batch is taken, so it overlaps the previous
        batch's emit and the next batch's gathering; emits and acks still happen in batch order.
        """
        loop = asyncio.get_running_loop()
        taken = time.perf_counter()
        records = [raw_record(e) for e in events]
        spans = describe(records)
        where = f"batch {spans} (model {engine.version})"
        result = await retry_async(
            lambda: loop.run_in_executor(executor, process_batch, records, engine, store, entities, stories, masker),
            f"storing {where}", lambda: stream.should_stop,
        )
        if previous is not None and not await previous:
            return False
        emitting = time.perf_counter()
        delivered: dict[str, set[tuple[int, int]]] = {}
        if result is None or await retry_async(lambda: emit(result, delivered), f"emitting {where}",
                                               lambda: stream.should_stop) is None:
            log.warning("stopping: %s left unacked for redelivery", where)
            return False
        acking = time.perf_counter()
        for event in events:
            await stream.ack(event)
        await commit_acked()
        stages = result.seconds | {"emit": acking - emitting, "ack": time.perf_counter() - acking}
        observe_batch(events, result, stages, time.perf_counter() - taken, engine.version)
        log.info(
            "stored %s: %d scored, %d dead letters, model %s; %s",
            spans, len(result.scored), len(result.dead), engine.version,
            ", ".join(f"{stage} {seconds * 1000:.1f} ms" for stage, seconds in stages.items()),
        )
        return True

    @app.agent(raw, name="riskpulse.score")
    async def score(stream):
        in_flight: deque[asyncio.Future] = deque()  # at most batch_pipeline_depth batches, oldest first
        try:
            async for events in stream.noack_take(settings.batch_max_size, within=settings.batch_max_wait_s):
                while len(in_flight) >= settings.batch_pipeline_depth:
                    if not await in_flight.popleft():
                        return
                in_flight.append(asyncio.ensure_future(handle(stream, events, in_flight[-1] if in_flight else None)))
            while in_flight:
                if not await in_flight.popleft():
                    return
        finally:
            for batch in in_flight:  # stopped mid-way: what is not acked is redelivered to the next owner
                batch.cancel()

    return Scorer(score, publisher)
