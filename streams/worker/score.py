"""`riskpulse score FILE`: classify a CSV/JSONL file offline, without Kafka or a server.

Rows become messages exactly as `riskpulse produce` maps them and then go through the worker's own
batch function (:func:`~riskpulse.streams.worker.batching.process_batch`: parse, mask personal data,
classify with the one-by-one fallback, group near-duplicates into stories, store messages and dead
letters), into the chDB ``messages`` and
``dead_letters`` tables (idempotent on id, so scoring the same file twice counts each message once)
or into CSV files with the same columns. A row's file name and line number stand in for the
Kafka topic and offset of its dead letter.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from riskpulse.core.schema import DeadLetter, Message, dead_letter
from riskpulse.core.settings import Settings
from riskpulse.streams.enrich.pii import mask_dead_letter, masker_for
from riskpulse.streams.ingest.producers import count_records, mapped_rows
from riskpulse.streams.store.backends import ChdbStore
from riskpulse.streams.store.messages import (
    DEAD_LETTER_COLUMNS, DEAD_LETTERS_TABLE, MESSAGE_COLUMNS, MESSAGES_TABLE, dead_letter_row,
)
from riskpulse.streams.enrich.entities import load_extractor
from riskpulse.streams.enrich.stories import StoryIndex, params_from, restored_index
from riskpulse.streams.worker.batching import Classifier, RawRecord, process_batch

logger = logging.getLogger("riskpulse.score")


@dataclass(frozen=True)
class ScoreReport:
    scored: int
    skipped: int  # rows that became dead letters: not a message, or not scorable
    model_version: str
    destination: str


def file_records(path: Path, source: str) -> Iterator[RawRecord | DeadLetter]:
    """Each row as the raw record a producer would have sent, or a dead letter if it maps to no message."""
    for number, row, message in mapped_rows(path, source):
        if isinstance(message, Message):
            yield RawRecord(message.model_dump_json().encode(), path.name, 0, number)
        else:
            yield dead_letter(f"row {number}: {message}", json.dumps(row, default=str).encode(), path.name, 0, number)


class CsvWriter:
    """The store's ``write_batch`` onto CSV files: messages into `path`, dead letters beside it."""

    def __init__(self, path: Path) -> None:
        self.paths = {MESSAGES_TABLE: path, DEAD_LETTERS_TABLE: path.with_suffix(".dead-letters.csv")}
        self._columns = {MESSAGES_TABLE: MESSAGE_COLUMNS, DEAD_LETTERS_TABLE: DEAD_LETTER_COLUMNS}
        self._files: dict[str, Any] = {}
        self._writers: dict[str, csv.DictWriter] = {}
        self._writer(MESSAGES_TABLE)  # the messages file exists even when every row is dead

    def _writer(self, table: str) -> csv.DictWriter:
        if table not in self._writers:
            self._files[table] = self.paths[table].open("w", newline="", encoding="utf-8")
            self._writers[table] = csv.DictWriter(self._files[table], fieldnames=self._columns[table])
            self._writers[table].writeheader()
        return self._writers[table]

    def write_batch(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._writer(table).writerows({key: _csv_value(value) for key, value in row.items()} for row in rows)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()


def _csv_value(value: Any) -> Any:
    """Times as ISO-8601, lists (a row's PII kinds) as JSON arrays."""
    if isinstance(value, datetime):
        return value.isoformat()
    return json.dumps(value) if isinstance(value, list) else value


def _chdb_writer(settings: Settings) -> ChdbStore:
    from riskpulse.streams.store.migrate import migrate

    store = ChdbStore(settings)
    store.open()
    migrate(store)
    return store


def score_file(path: Path, settings: Settings, engine: Classifier, out: Path | None = None,
               source: str = "news", batch_size: int = 256) -> ScoreReport:
    """Score every row of ``path`` into chDB's tables, or into ``out`` (CSV) and its dead-letters CSV."""
    from tqdm import tqdm

    writer = CsvWriter(out) if out is not None else _chdb_writer(settings)
    masker = masker_for(settings)
    entities = load_extractor(settings) if settings.entities and out is None else None  # a CSV has no mentions table
    stories = None  # the file's near-duplicates are one story; in chDB, with the stories already stored too
    if settings.stories:
        stories = StoryIndex(params_from(settings)) if out is not None else restored_index(settings, writer)
    scored = skipped = 0
    batch: list[RawRecord] = []

    def flush() -> None:
        nonlocal scored, skipped
        result = process_batch(batch, engine, writer, entities, stories, masker=masker)
        scored, skipped = scored + len(result.scored), skipped + len(result.dead)
        progress.update(len(batch))
        batch.clear()

    try:
        with tqdm(total=count_records(path), unit="msg", desc=f"scoring {path.name}") as progress:
            for record in file_records(path, source):
                if isinstance(record, DeadLetter):
                    letter = record if masker is None else mask_dead_letter(record, masker)
                    writer.write_batch(DEAD_LETTERS_TABLE, [dead_letter_row(letter)])
                    skipped += 1
                    progress.update(1)
                    continue
                batch.append(record)
                if len(batch) == batch_size:
                    flush()
            if batch:
                flush()
    finally:
        writer.close()
    destination = str(out) if out is not None else f"chDB {settings.chdb_dir} table {settings.clickhouse_database}.messages"
    logger.info("scored %d messages from %s with model %s into %s (%d rows dead-lettered)",
                scored, path, engine.version, destination, skipped)
    return ScoreReport(scored=scored, skipped=skipped, model_version=engine.version, destination=destination)
