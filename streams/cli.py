"""CLI commands of the streaming floor: `produce`, `feeds`, `topics` (`worker` and `score` need a
model, so the top-level CLI composes them).

Heavy imports (faust, torch, kafka) happen inside the commands so the rest of the
CLI stays quick to start.
"""

from __future__ import annotations

from pathlib import Path

import typer

from riskpulse.core.settings import get_settings


def produce(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .csv (header line) or .jsonl file."),
    rate: float = typer.Option(None, help="Messages per second (default: as fast as possible)."),
    topic: str = typer.Option(None, help="Target topic (default: the raw topic)."),
    source: str = typer.Option("news", help="source for rows without one (news, customer, social, internal)."),
    channel: str = typer.Option(None, help="channel for rows without one (default: the file name)."),
) -> None:
    """Replay a CSV/JSONL file onto the raw topic, keyed by source/channel."""
    from riskpulse.streams.ingest.producers import count_records, file_messages, send_messages
    from riskpulse.streams.topics import ensure_topics

    settings = get_settings()
    ensure_topics(settings)
    sent = send_messages(file_messages(file, source, channel), settings, topic=topic, rate=rate, total=count_records(file))
    typer.echo(f"sent {sent} messages to {topic or settings.topic_raw}")


def feeds(
    sources: list[str] = typer.Argument(..., help="RSS/Atom feed URLs or files."),
    every: float = typer.Option(0, help="Poll again every N seconds (0: poll once)."),
) -> None:
    """Publish new RSS/Atom items once (ids already sent are remembered under RISKPULSE_HOME)."""
    import time

    from riskpulse.streams.ingest.feeds import poll_once
    from riskpulse.streams.topics import ensure_topics

    settings = get_settings()
    ensure_topics(settings)
    while True:
        typer.echo(f"published {poll_once(sources, settings)} new items")
        if not every:
            return
        time.sleep(every)


def topics() -> None:
    """Create RiskPulse's Kafka topics where missing."""
    from riskpulse.streams.topics import ensure_topics

    created = ensure_topics(get_settings())
    typer.echo(f"created: {', '.join(created)}" if created else "all topics exist")


def entities(
    file: str = typer.Argument(..., help="JSONL with `id` and `text` per line, or - for standard input."),
) -> None:
    """Print each text's entities as JSON lines: {"id", "entities": [{"id", "name", "start", "end"}]}.

    Entity ids are tickers or watchlist ids (RISKPULSE_WATCHLIST_FILE); start/end are character offsets.
    A line that is not an object with id and text is reported on stderr and the exit code is 1."""
    import sys
    from contextlib import nullcontext

    from riskpulse.core import RiskPulseError
    from riskpulse.streams.enrich.entities import annotate_lines, load_extractor

    try:
        extractor = load_extractor(get_settings())
        source = nullcontext(sys.stdin) if file == "-" else open(file, encoding="utf-8")
    except (RiskPulseError, OSError) as exc:
        typer.echo(f"entities: {exc}", err=True)
        raise typer.Exit(2) from None
    bad = 0
    with source as lines:
        for number, output, problem in annotate_lines(lines, extractor):
            if output is None:
                bad += 1
                typer.echo(f"{file}:{number}: {problem}", err=True)
            else:
                typer.echo(output)
    if bad:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    for command in (produce, feeds, topics, entities):
        app.command(command.__name__)(command)
