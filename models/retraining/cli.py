"""`riskpulse retrain` (one run now, or the history) and `riskpulse scheduler` (runs on a timetable)."""

from __future__ import annotations

import math

import typer

from riskpulse.core import RiskPulseError
from riskpulse.core.settings import get_settings


def _figure(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def retrain(
    history: bool = typer.Option(False, "--history", help="List recent runs instead of running one."),
    limit: int = typer.Option(20, help="Runs to list with --history."),
) -> None:
    """Retrain once from new analyst labels; promote the challenger only if it beats the champion."""
    from riskpulse.models.retraining.retrainer import RetrainBusy, run_once

    settings = get_settings()
    if history:
        from riskpulse.streams.store.backends import open_store
        from riskpulse.streams.store.retrain_runs import recent_runs

        store = open_store(settings)
        try:
            for run in recent_runs(store, limit):
                typer.echo(
                    f"{run['run_id']}  {run['status']:<8}  champion {run['champion_version'] or '-'}  "
                    f"challenger {run['challenger_version'] or '-'}  topic F1 {_figure(run['champion_topic_f1'])}"
                    f"->{_figure(run['challenger_topic_f1'])}  sentiment F1 {_figure(run['champion_sentiment_f1'])}"
                    f"->{_figure(run['challenger_sentiment_f1'])}  {run['reason']}"
                )
        finally:
            store.close()
        return
    try:
        record = run_once(settings)
    except RetrainBusy as busy:
        typer.echo(f"error: {busy}", err=True)
        raise typer.Exit(3) from None
    except RiskPulseError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"run {record.run_id}: {record.status} — {record.reason}\n"
        f"labels: {record.new_labels} new, {record.train_labels} trained, {record.heldout_labels} held back, "
        f"{record.unknown_labels} unknown; champion {record.champion_version}, challenger {record.challenger_version or '-'}"
    )
    if record.status == "failed":
        raise typer.Exit(1)


def scheduler() -> None:
    """Retrain on RISKPULSE_RETRAIN_CRON (or every RISKPULSE_RETRAIN_INTERVAL_S) until stopped."""
    from riskpulse.models.retraining.scheduler import run_forever

    run_forever(get_settings())


def register(app: typer.Typer) -> None:
    app.command("retrain")(retrain)
    app.command("scheduler")(scheduler)
