"""The one `riskpulse` entry point; each area contributes its sub-commands."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="RiskPulse: streaming sentiment monitor for risk teams.")


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kafka-python logs every connection at INFO; health checks and producers would drown the output.
    logging.getLogger("kafka").setLevel(logging.DEBUG if verbose else logging.WARNING)


def _register() -> None:
    """Sub-commands live beside the code they drive."""
    from riskpulse.streams.cli import register as register_streaming

    register_streaming(app)
    from riskpulse.models.cli import register as register_models

    register_models(app)
    from riskpulse.streams.ops.stack import app as stack_app

    app.add_typer(stack_app, name="stack")
    from riskpulse.streams.store.migrate import app as db_app

    app.add_typer(db_app, name="db")
    from riskpulse.streams.worker.score import score

    app.command("score")(score)
    from riskpulse.streams.alerts.cli import app as alerts_app

    app.add_typer(alerts_app, name="alerts")
    from riskpulse.dashboards.cli import app as dashboard_app

    app.add_typer(dashboard_app, name="dashboard")
    from riskpulse.models.retraining.cli import register as register_retraining

    register_retraining(app)
    from riskpulse.demo import demo

    app.command("demo")(demo)


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
