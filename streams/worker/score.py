"""`riskpulse score FILE`: classify a CSV/JSONL file offline, without Kafka or a server.

Rows become messages exactly as `riskpulse produce` maps them, are classified in batches by the
registry's current model, and land in the chDB ``messages`` table (idempotent on id, so scoring
the same file twice counts each message once) or in a CSV file with the same columns.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from riskpulse.core import RiskPulseError
from riskpulse.streams.worker.batching import Classifier, to_scored
from riskpulse.core.schema import Message
from riskpulse.core.settings import Settings, get_settings
from riskpulse.streams.store.backends import MESSAGE_COLUMNS, ChdbStore, message_row

logger = logging.getLogger("riskpulse.score")


@dataclass(frozen=True)
class ScoreReport:
    scored: int
    skipped: int
    model_version: str
    destination: str


def _messages(path: Path, source: str, skipped: list[int]) -> Iterator[Message]:
    from riskpulse.streams.ingest.producers import read_records, to_message

    for number, row in enumerate(read_records(path), 1):
        try:
            yield to_message(row, source=source, channel=path.stem)
        except (ValidationError, ValueError) as exc:
            skipped.append(number)
            logger.warning("%s row %d skipped: %s", path, number, str(exc).splitlines()[0])


def _batches(messages: Iterator[Message], size: int) -> Iterator[list[Message]]:
    batch: list[Message] = []
    for message in messages:
        batch.append(message)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _CsvSink:
    def __init__(self, path: Path):
        self.handle = path.open("w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.handle, fieldnames=MESSAGE_COLUMNS)
        self.writer.writeheader()

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.writer.writerows(
            {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}
            for row in rows
        )

    def close(self) -> None:
        self.handle.close()


class _TableSink:
    def __init__(self, settings: Settings):
        from riskpulse.streams.store.migrate import migrate

        self.store = ChdbStore(settings)
        self.store.open()
        migrate(self.store)

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.store.write_batch("messages", rows)

    def close(self) -> None:
        self.store.close()


def score_file(path: Path, settings: Settings, engine: Classifier, out: Path | None = None,
               source: str = "news", batch_size: int = 256) -> ScoreReport:
    """Score every usable row of ``path`` into chDB's messages table, or into ``out`` (CSV)."""
    from tqdm import tqdm

    from riskpulse.streams.ingest.producers import count_records

    skipped: list[int] = []
    sink = _CsvSink(out) if out is not None else _TableSink(settings)
    scored = 0
    try:
        with tqdm(total=count_records(path), unit="msg", desc=f"scoring {path.name}") as progress:
            for batch in _batches(_messages(path, source, skipped), batch_size):
                scores = engine.classify([message.text for message in batch])
                now = datetime.now(timezone.utc)
                rows = [
                    message_row(to_scored(message, score, now))
                    for message, score in zip(batch, scores, strict=True)
                ]
                sink.write(rows)
                scored += len(rows)
                progress.update(scored + len(skipped) - progress.n)
    finally:
        sink.close()
    destination = str(out) if out is not None else f"chDB {settings.chdb_dir} table {settings.clickhouse_database}.messages"
    logger.info("scored %d messages from %s with model %s into %s (%d rows skipped)",
                scored, path, engine.version, destination, len(skipped))
    return ScoreReport(scored=scored, skipped=len(skipped), model_version=engine.version, destination=destination)


def score(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .csv (header line) or .jsonl file."),
    out: str = typer.Option("table", help="'table' (chDB messages table under RISKPULSE_HOME) or a .csv path."),
    source: str = typer.Option("news", help="source for rows without one (news, customer, social, internal)."),
    model_version: str = typer.Option(None, help="Registry version to use (default: current)."),
    batch_size: int = typer.Option(256, min=1, help="Messages classified together."),
) -> None:
    """Batch-score a file offline through chDB (no Kafka, no server) into a table or a CSV."""
    target = None if out == "table" else Path(out)
    if target is not None and target.suffix.lower() != ".csv":
        typer.echo(f"--out must be 'table' or a .csv path, not {out!r}", err=True)
        raise typer.Exit(2)
    from riskpulse.models.serving.inference import Engine

    settings = get_settings()
    try:
        engine = Engine.load(settings, model_version)
        report = score_file(file, settings, engine, target, source, batch_size)
    except RiskPulseError as exc:
        typer.echo(f"scoring failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"scored {report.scored} messages ({report.skipped} rows skipped) with model "
               f"{report.model_version} into {report.destination}")
