"""`riskpulse dashboard`: start the Streamlit app; `riskpulse dashboard hash-password`: make a user entry."""

from __future__ import annotations

import getpass
import logging
import os
import subprocess
import sys
from pathlib import Path

import typer

from riskpulse.dashboards.auth import ROLES, hash_password, require_users
from riskpulse.core.settings import Settings, get_settings

log = logging.getLogger("riskpulse.dashboard")
APP = Path(__file__).with_name("app.py")  # installed with the package: `streamlit run` needs a file path

app = typer.Typer(add_completion=False, help="The Streamlit monitoring dashboard.")


def streamlit_command(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that serve the dashboard as ``settings`` describe. The app imports
    ``riskpulse`` as an installed package, so it runs from any working directory."""
    argv = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless", "true",
        "--server.address", settings.dashboard_host,
        "--server.port", str(settings.dashboard_port),
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]
    return argv, dict(os.environ)


@app.callback(invoke_without_command=True)
def serve(ctx: typer.Context) -> None:
    """Serve the dashboard on settings.dashboard_host:dashboard_port until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    require_users(settings.dashboard_host, settings.dashboard_users, settings.dashboard_require_login)
    argv, env = streamlit_command(settings)
    log.info("dashboard on http://%s:%s (store=%s)", settings.dashboard_host, settings.dashboard_port, settings.store)
    raise typer.Exit(subprocess.call(argv, env=env))


@app.command("hash-password")
def hash_password_cmd(
    user: str = typer.Argument(..., help="The login name."),
    role: str = typer.Option("analyst", help=f"One of {', '.join(ROLES)}: read; also label and acknowledge; "
                             "also promote models and read the audit trail."),
) -> None:
    """Print a `user:role:hash` entry for RISKPULSE_DASHBOARD_USERS (password asked twice, never echoed)."""
    if ":" in user or "," in user:
        raise typer.BadParameter("user names cannot contain ':' or ','")
    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}")
    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Again: "):
        raise typer.BadParameter("the two passwords differ; run the command again")
    typer.echo(f"{user}:{role}:{hash_password(password)}")
