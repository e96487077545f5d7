"""Put messages on the raw topic: replay a CSV/JSONL file, or poll RSS/Atom feeds.

Both map their input onto :class:`riskpulse.core.schema.Message` before sending, so the
worker only ever sees the one schema; rows that cannot become a message are
skipped here with a warning rather than fed to the dead-letter path.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from riskpulse.core import RiskPulseError
from riskpulse.core.schema import Message
from riskpulse.core.settings import Settings

log = logging.getLogger("riskpulse.producers")

MESSAGE_FIELDS = ("id", "source", "channel", "lang", "ts", "text", "meta")


class InputFileError(RiskPulseError):
    """A replay file that cannot be read as CSV or JSONL."""


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a ``.csv`` (header line) or ``.jsonl``/``.ndjson`` file (one object a line)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            yield from csv.DictReader(fh)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputFileError(f"{path}:{lineno} is not JSON ({exc}); expected one object per line") from None
                if not isinstance(row, dict):
                    raise InputFileError(f"{path}:{lineno} holds a {type(row).__name__}; expected a JSON object")
                yield row
    else:
        raise InputFileError(f"{path}: unknown file type {suffix!r}; use .csv or .jsonl")


def to_message(row: Mapping[str, Any], source: str = "news", channel: str = "", now: datetime | None = None) -> Message:
    """Map one input row onto a Message: known fields by name, other columns into ``meta``.

    Missing ``source``/``channel`` take the given defaults, a missing ``ts`` is the
    send time, and a ``meta`` column may hold a JSON object.
    """
    fields: dict[str, Any] = {k: v for k, v in row.items() if k in MESSAGE_FIELDS and v not in (None, "")}
    meta = fields.get("meta", {})
    if isinstance(meta, str):
        meta = json.loads(meta)
    extra = {k: v for k, v in row.items() if k not in MESSAGE_FIELDS and k and v not in (None, "")}
    fields["meta"] = {**extra, **meta}
    fields.setdefault("source", source)
    fields.setdefault("channel", channel)
    fields.setdefault("ts", now or datetime.now(timezone.utc))
    return Message.model_validate(fields)


def mapped_rows(path: Path, source: str, channel: str | None = None) -> Iterator[tuple[int, dict[str, Any], Message | ValueError]]:
    """(row number, row, its Message or why it is none) for every row of a replay file; the unusable
    ones are logged. Replays skip those rows; offline scoring dead-letters them."""
    channel = path.stem if channel is None else channel
    for n, row in enumerate(read_records(path), 1):
        try:
            yield n, row, to_message(row, source=source, channel=channel)
        except (ValidationError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            log.warning("%s row %d skipped: %s", path, n, str(exc).splitlines()[0])
            yield n, row, exc


def file_messages(path: Path, source: str, channel: str | None = None) -> Iterator[Message]:
    """Messages from a replay file; unusable rows are logged and skipped."""
    return (message for _, _, message in mapped_rows(path, source, channel) if isinstance(message, Message))


def kafka_producer(settings: Settings):
    """A kafka-python producer that waits for every in-sync replica (acks=all) and is idempotent, so a
    retry after a broker fails over neither loses nor duplicates a record. It retries for up to
    delivery_timeout_ms (2 minutes): a partition's new leader is elected within seconds of a broker's loss
    (5 retries 100 ms apart would run out first). Credentials come from the settings; refused ones fail at once."""
    from kafka import KafkaProducer

    from riskpulse.streams.kafka_auth import check_login, kafka_python_options

    check_login(settings)

    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        delivery_timeout_ms=120_000,
        linger_ms=5,
        client_id="riskpulse-producer",
        **kafka_python_options(settings),
    )


def send_messages(
    messages: Iterable[Message],
    settings: Settings,
    topic: str | None = None,
    rate: float | None = None,
    total: int | None = None,
    producer=None,
) -> int:
    """Send messages keyed by source/channel, at most ``rate`` per second (None = as fast
    as possible), with a progress bar. Returns how many the broker acknowledged."""
    from tqdm import tqdm

    topic = topic or settings.topic_raw
    own = producer is None
    producer = producer or kafka_producer(settings)
    sent = 0
    start = time.monotonic()
    try:
        futures = []
        for msg in tqdm(messages, total=total, unit="msg", desc=f"→ {topic}"):
            if rate:
                delay = start + sent / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            futures.append(producer.send(topic, key=msg.key, value=msg.to_bytes()))
            sent += 1
        producer.flush()
        for fut in futures:
            fut.get(timeout=30)
    finally:
        if own:
            producer.close()
    log.info("sent %d messages to %s in %.1f s", sent, topic, time.monotonic() - start)
    return sent


def count_records(path: Path) -> int | None:
    """Row count for the progress bar (None when the file is not line-countable)."""
    if path.suffix.lower() == ".csv":
        return None
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())
