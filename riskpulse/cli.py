"""The one `riskpulse` entry point and the composition root: the only module that joins the floors
(core <- streams, models <- dashboards <- here). Each floor contributes its own sub-commands; the
commands that need parts of several floors (`worker` and `score`: a stream with a model) live here."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from riskpulse.core import RiskPulseError
from riskpulse.core.settings import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="RiskPulse: streaming sentiment monitor for risk teams.")


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kafka-python logs every connection at INFO; health checks and producers would drown the output.
    logging.getLogger("kafka").setLevel(logging.DEBUG if verbose else logging.WARNING)


def worker(
    web_port: int = typer.Option(None, help="faust web port (default RISKPULSE_WEB_PORT); unique per worker."),
    null_model: bool = typer.Option(
        False, "--null-model", help="Score every message the same, at no cost: measures the streaming layer alone."),
) -> None:
    """Consume the raw topic: validate, classify in batches, store, emit scored records."""
    from riskpulse.streams.worker.app import run_worker
    from riskpulse.streams.worker.batching import NullClassifier

    settings = get_settings()
    if web_port is not None:
        settings = settings.model_copy(update={"web_port": web_port})
    try:
        if null_model:
            run_worker(settings, NullClassifier())
            return
        from riskpulse.models.serving.reloading import ReloadingEngine

        run_worker(settings, ReloadingEngine(settings))  # follows `current`: hot reload between batches
    except RiskPulseError as error:  # refused credentials, no broker, no store: say so, without a traceback
        typer.echo(f"worker: {error}", err=True)
        raise typer.Exit(1) from None


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
    from riskpulse.streams.worker.score import score_file

    settings = get_settings()
    try:
        report = score_file(file, settings, Engine.load(settings, model_version), target, source, batch_size)
    except RiskPulseError as exc:
        typer.echo(f"scoring failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"scored {report.scored} messages ({report.skipped} rows skipped) with model "
               f"{report.model_version} into {report.destination}")


def _register() -> None:
    """Each floor contributes the commands of its own code; the ones that join floors are above."""
    from riskpulse.dashboards.cli import app as dashboard_app
    from riskpulse.demo import demo
    from riskpulse.models.cli import register as register_models
    from riskpulse.models.retraining.cli import register as register_retraining
    from riskpulse.streams.alerts.cli import app as alerts_app
    from riskpulse.streams.cli import register as register_streaming
    from riskpulse.streams.enrich.pii import app as pii_app
    from riskpulse.streams.ops.stack import app as stack_app
    from riskpulse.streams.store.migrate import app as db_app

    app.command("worker")(worker)
    register_streaming(app)
    register_models(app)
    app.add_typer(stack_app, name="stack")
    app.add_typer(db_app, name="db")
    app.command("score")(score)
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(pii_app, name="pii")
    app.add_typer(dashboard_app, name="dashboard")
    register_retraining(app)
    app.command("demo")(demo)


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
