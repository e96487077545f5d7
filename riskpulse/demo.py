"""`riskpulse demo`: the README's main job — the whole pipeline on the bundled sample.

Brings the stack up, trains a quick model when the registry has none, starts a worker,
the alert detector and the dashboard as their own processes (a worker and a dashboard cannot share one
chDB directory, so the demo uses the ClickHouse server), replays the sample with its
timestamps moved up to now, and keeps everything running until Ctrl-C.

The sample carries a planted story (see its SOURCE.md): Wells Fargo's news turns negative in one
10-minute window. The demo runs the shipped alert rules, its entity rule pointed at a local webhook
receiver that it starts and that verifies every signature, waits for the alert's signed webhook and
prints it with its explanation, and where to look next.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import typer
import yaml

from riskpulse.core.resources import deploy_file, sample_messages
from riskpulse.core.settings import Settings, get_settings

log = logging.getLogger("riskpulse.demo")
SAMPLE = sample_messages()
ENTITY_RULE = "watchlist-entity-negative-spike"  # the shipped rule the planted story trips
WINDOW_S = 600  # its window: the sample is moved by whole windows so the planted burst fills one
WEBHOOK_WAIT_S = 240  # the rule's group_wait, plus scoring the sample on a busy CPU


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(RISKPULSE_STORE="server", RISKPULSE_HOME=str(settings.home.resolve()), HF_HUB_OFFLINE="1")
    if settings.rules_file is not None:
        env["RISKPULSE_RULES_FILE"] = str(settings.rules_file.resolve())
    return env


def _demo_rules(settings: Settings, webhook_url: str, run: str) -> Path:
    """The shipped rules (or RISKPULSE_RULES_FILE's) with this run's name on each (a rerun starts with fresh
    detector state: the replay's event times lie before the last run's) and the entity rule notifying ``webhook_url``."""
    data = yaml.safe_load((settings.rules_file or deploy_file("alert-rules.yaml")).read_text(encoding="utf-8"))
    for rule in data["rules"]:
        if rule["name"] == ENTITY_RULE:
            rule["webhooks"] = [*(rule.get("webhooks") or []), {"url": webhook_url}]
        rule["name"] = f"{rule['name']}-{run}"
    path = settings.home / "demo" / "alert-rules.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


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
    """The sample's messages with event times shifted by whole rule windows so the newest is within one of now."""
    from riskpulse.streams.ingest.producers import file_messages

    messages = list(file_messages(path, "news"))
    shift = (datetime.now(timezone.utc) - max(m.ts for m in messages)).total_seconds() // WINDOW_S * WINDOW_S
    return [m.model_copy(update={"ts": m.ts + timedelta(seconds=shift)}) for m in messages]


def _wait_scored(settings: Settings, expected: int, timeout_s: float, since: datetime) -> int:
    """Messages stored since ``since`` (this run's), once they reach ``expected`` or ``timeout_s`` passes."""
    from riskpulse.streams.store.backends import open_store

    store = open_store(settings)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            scored = store.query("SELECT count() AS n FROM (SELECT id FROM messages FINAL WHERE processed_at >= %(since)s)",
                                 {"since": since.replace(microsecond=0)})[0]["n"]
            if scored >= expected or time.monotonic() > deadline:
                return scored
            time.sleep(2)
    finally:
        store.close()


def _show_alert(receiver, log_path: Path) -> None:
    """What the receiver verified, in words; or why nothing came."""
    from riskpulse.streams.alerts.receiver import describe

    heard = receiver.wait_for_verified(WEBHOOK_WAIT_S)
    if not heard:
        rejected = [h.error for h in receiver.heard]
        typer.echo(f"no verified webhook within {WEBHOOK_WAIT_S}s{': rejected ' + '; '.join(rejected) if rejected else ''}"
                   " — see the alerts log", err=True)
        return
    typer.echo("\nsigned webhook received and verified by the demo's receiver:")
    for line in describe(heard[0].body):
        typer.echo("  " + line)
    typer.echo(f"receiver log (every request, explanation and body): {log_path}")


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
    from riskpulse.streams.alerts.receiver import WebhookReceiver
    from riskpulse.streams.alerts.webhooks import webhook_secret

    receiver = WebhookReceiver(webhook_secret(settings)[0], logs / "webhooks.log").start()
    run = datetime.now(timezone.utc).strftime("demo-%m%d-%H%M")
    settings = settings.model_copy(update={"rules_file": _demo_rules(settings, receiver.url, run)})
    typer.echo(f"model {version}; starting worker, alerts (rules {settings.rules_file}) and dashboard (logs in {logs}); "
               f"webhook receiver on {receiver.url}")
    started = datetime.now(timezone.utc)
    children = [
        _spawn(["worker"], settings, logs / "worker.log"),
        _spawn(["alerts", "run"], settings, logs / "alerts.log"),
        _spawn(["dashboard"], settings, logs / "dashboard.log"),
    ]
    try:
        messages = _retimed_sample(sample)
        send_messages(messages, settings, rate=rate, total=len(messages))
        scored = _wait_scored(settings, len(messages), timeout_s=900, since=started)
        typer.echo(f"{scored} of {len(messages)} sample messages scored and stored")
        _show_alert(receiver, logs / "webhooks.log")
        dashboard = f"http://{settings.dashboard_host}:{settings.dashboard_port}"
        typer.echo(f"\ndashboard: {dashboard}\n  {dashboard}/alerts: the alert, why it fired, its webhook delivery\n"
                   f"  {dashboard}/entities: pick Wells Fargo (WFC): its trend with the burst, its messages, its alert\n"
                   f"  logs: {logs} (worker, alerts, dashboard, webhooks)")
        while keep_running and all(child.poll() is None for child in children):
            time.sleep(1)
        for child in children:
            if child.poll() not in (None, 0):
                typer.echo(f"a demo process exited with {child.returncode}: see {logs}", err=True)
                raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("stopping worker, alerts and dashboard; `riskpulse stack down` stops Kafka and ClickHouse")
    finally:
        receiver.stop()
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
