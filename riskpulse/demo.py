"""`riskpulse demo`: the README's main job — the whole pipeline on the bundled sample.

Brings the stack up, trains a quick model when the registry has none, starts a worker,
the alert detector and the dashboard as their own processes (a worker and a dashboard cannot share one
chDB directory, so the demo uses the ClickHouse server), replays the sample with its
timestamps moved up to now, and keeps everything running until Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import typer

from riskpulse.core.resources import sample_messages
from riskpulse.core.settings import Settings, get_settings

log = logging.getLogger("riskpulse.demo")
SAMPLE = sample_messages()


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(RISKPULSE_STORE="server", RISKPULSE_HOME=str(settings.home.resolve()), HF_HUB_OFFLINE="1")
    return env


def _spawn(args: list[str], settings: Settings, log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "riskpulse.cli", *args],
        env=_child_env(settings),
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _ensure_model(settings: Settings) -> str:
    from riskpulse.models.serving.registry import Registry

    registry = Registry(settings.registry_root)
    current = registry.current()
    if current:
        return current
    from riskpulse.models.training.trainer import TrainArgs, train

    typer.echo("no model in the registry yet: training a quick one (a few minutes on CPU) …")
    return train(settings, TrainArgs(quick=True), promote=True)


def _retimed_sample(path: Path):
    """The sample's messages with event times shifted so the newest is now."""
    from riskpulse.streams.ingest.producers import file_messages

    messages = list(file_messages(path, "news"))
    shift = datetime.now(timezone.utc) - max(m.ts for m in messages)
    return [m.model_copy(update={"ts": m.ts + shift}) for m in messages]


def _wait_scored(settings: Settings, expected: int, timeout_s: float) -> int:
    from riskpulse.streams.store.backends import open_store

    store = open_store(settings)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            scored = store.query("SELECT count() AS n FROM (SELECT id FROM messages FINAL)")[0]["n"]
            if scored >= expected or time.monotonic() > deadline:
                return scored
            time.sleep(2)
    finally:
        store.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def demo(
    sample: Path = typer.Option(SAMPLE, exists=True, dir_okay=False, help="JSONL/CSV file to replay."),
    rate: float = typer.Option(300, help="Replay rate, messages per second."),
    keep_running: bool = typer.Option(True, "--keep-running/--exit", help="Serve the dashboard until Ctrl-C."),
) -> None:
    """Run the whole pipeline on the bundled sample and serve the dashboard."""
    from riskpulse.streams.store.migrate import migrate_settings
    from riskpulse.streams.ingest.producers import send_messages
    from riskpulse.streams.ops.stack import Stack
    from riskpulse.streams.topics import ensure_topics

    settings = get_settings().model_copy(update={"store": "server"})
    logs = settings.home / "logs"
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop cleans up like Ctrl-C
    Stack(settings).up()
    migrate_settings(settings)
    ensure_topics(settings)
    version = _ensure_model(settings)
    typer.echo(f"model {version}; starting worker, alerts and dashboard (logs in {logs})")
    children = [
        _spawn(["worker"], settings, logs / "worker.log"),
        _spawn(["alerts", "run"], settings, logs / "alerts.log"),
        _spawn(["dashboard"], settings, logs / "dashboard.log"),
    ]
    try:
        messages = _retimed_sample(sample)
        send_messages(messages, settings, rate=rate, total=len(messages))
        scored = _wait_scored(settings, len(messages), timeout_s=300)
        typer.echo(f"{scored} of {len(messages)} sample messages scored and stored")
        typer.echo(f"dashboard: http://{settings.dashboard_host}:{settings.dashboard_port}")
        while keep_running and all(child.poll() is None for child in children):
            time.sleep(1)
        for child in children:
            if child.poll() not in (None, 0):
                typer.echo(f"a demo process exited with {child.returncode}: see {logs}", err=True)
                raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("stopping worker, alerts and dashboard; `riskpulse stack down` stops Kafka and ClickHouse")
    finally:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
