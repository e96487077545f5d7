"""`riskpulse alerts …`: run the alerting worker, inspect and acknowledge alerts, redrive dead webhook
deliveries, write the daily digest, print the signing secret, test a webhook."""

from __future__ import annotations

import getpass
import socket
import json
import time

import typer

from riskpulse.core import RiskPulseError
from riskpulse.core.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Negative-sentiment spike alerts and their webhooks.")


def _repo():
    from riskpulse.streams.store.alerts import AlertRepo
    from riskpulse.streams.store.backends import open_store

    return AlertRepo(open_store(get_settings()))


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


@app.command("run")
def run() -> None:
    """Consume scored messages, detect spikes, store/publish alerts, deliver webhooks."""
    from riskpulse.streams.alerts.agent import run_alerts

    try:
        run_alerts(get_settings())
    except RiskPulseError as exc:
        _fail(exc)


@app.command("check-rules")
def check_rules(path: str = typer.Argument(None, help="Rules file (default RISKPULSE_RULES_FILE or deploy/alert-rules.yaml).")) -> None:
    """Validate a rules file and print what it defines."""
    from pathlib import Path

    from riskpulse.streams.alerts.rules import load_rules

    try:
        rules = load_rules(Path(path) if path else get_settings().rules_file)
    except RiskPulseError as exc:
        _fail(exc)
    for r in rules.rules:
        typer.echo(f"{r.name}: key={list(r.key)} window={r.window_s:g}s z>={r.threshold_z:g} "
                   f"min_volume={r.min_volume} targets={len(r.webhooks)}")


@app.command("list")
def list_alerts(
    status: str = typer.Option(None, help="open or resolved (default: all)."),
    limit: int = typer.Option(50, min=1),
) -> None:
    """Latest alerts, newest first."""
    repo = _repo()
    try:
        rows = repo.list_alerts(status, limit)
    finally:
        repo.store.close()
    for r in rows:
        ack = f" acked by {r['acked_by']}" if r.get("acked_by") else ""
        typer.echo(f"{r['alert_id']}  {r['status']:<8} {r['severity']:<8} {r['rule']}  {r['key']}  "
                   f"share={r['share']:.2f} z={r['peak_z']:.1f} opened={r['opened_at']:%Y-%m-%d %H:%M:%S}{ack}")
    if not rows:
        typer.echo("no alerts")


@app.command("show")
def show(alert_id: str) -> None:
    """One alert with its evidence, explanation and webhook deliveries, as JSON."""
    repo = _repo()
    try:
        rows = repo.list_alerts(None, 1, alert_id)
        deliveries = [d for d in repo.deliveries(None, 100_000) if alert_id in json.loads(d["alert_states"])]
    finally:
        repo.store.close()
    if not rows:
        _fail(RiskPulseError(f"no alert {alert_id}; see `riskpulse alerts list`"))
    alert = {k: (str(v) if hasattr(v, "isoformat") else v) for k, v in rows[0].items()}
    alert["examples"] = json.loads(alert["examples"])
    alert["explanation"] = json.loads(alert.get("explanation") or "{}")
    alert["deliveries"] = [
        {k: d[k] for k in ("delivery_id", "url", "status", "attempts", "last_error")} for d in deliveries
    ]
    typer.echo(json.dumps(alert, indent=2, default=str))


@app.command("ack")
def ack(alert_id: str, note: str = typer.Option("", help="Why, for the record."),
        by: str = typer.Option(None, help="Who (default: this user).")) -> None:
    """Acknowledge an alert: it stays open but is no longer repeated (and the audit table says who)."""
    from riskpulse.streams.store import audit
    from riskpulse.streams.store.migrate import migrate

    repo = _repo()
    try:
        if not repo.list_alerts(None, 1, alert_id):
            _fail(RiskPulseError(f"no alert {alert_id}; see `riskpulse alerts list`"))
        repo.ack(alert_id, by or getpass.getuser(), note)
        migrate(repo.store, [audit])  # the audit table may be newer than this store
        audit.record(repo.store, user=by or getpass.getuser(), role="cli", action="acknowledge", target=alert_id,
                     detail={"note": note}, address=socket.gethostname())
    finally:
        repo.store.close()
    typer.echo(f"acknowledged {alert_id}")


@app.command("deliveries")
def deliveries(status: str = typer.Option(None, help="pending, delivered, dead (the webhook dead-letter) or redrive.")) -> None:
    """Webhook deliveries from the outbox."""
    repo = _repo()
    try:
        rows = repo.deliveries(status)
    finally:
        repo.store.close()
    for d in rows:
        typer.echo(f"{d['delivery_id']}  {d['status']:<9} attempts={d['attempts']} {d['url']}  {d['last_error']}")


@app.command("redrive")
def redrive(
    ids: list[str] = typer.Argument(None, help="Delivery ids (msg_…) to send again; none: list the dead ones."),
    all_dead: bool = typer.Option(False, "--all", help="Every dead delivery (of --url, if given)."),
    url: str = typer.Option(None, help="Only deliveries to this receiver URL."),
) -> None:
    """List dead-lettered webhook deliveries, or queue them to be sent again (same webhook-id)."""
    repo = _repo()
    try:
        if not ids and not all_dead:
            rows = repo.deliveries("dead", 100_000, url=url)
            for d in rows:
                typer.echo(f"{d['delivery_id']}  attempts={d['attempts']} created={d['created_at']:%Y-%m-%d %H:%M:%S} "
                           f"{d['url']}  {d['last_error']}")
            typer.echo(f"{len(rows)} dead deliveries; send them again with `riskpulse alerts redrive --all"
                       f"{' --url ' + url if url else ''}` or `riskpulse alerts redrive ID …`" if rows else "no dead deliveries")
            return
        if ids:
            found = {d["delivery_id"]: d["status"] for d in repo.deliveries(None, len(ids), url=url, ids=ids)}
            wrong = [f"{i} ({found[i]})" if i in found else f"{i} (no such delivery)" for i in ids if found.get(i) != "dead"]
            if wrong:
                _fail(RiskPulseError("only dead deliveries can be redriven: " + ", ".join(wrong)))
        queued = repo.redrive(ids or None, url)
    finally:
        repo.store.close()
    typer.echo(f"queued {len(queued)} dead deliveries; a running `riskpulse alerts run` sends them within "
               "10 s, in order behind anything its group still has undelivered (or at its next start)")


@app.command("digest")
def digest(day: str = typer.Option(None, help="UTC day YYYY-MM-DD; default yesterday.")) -> None:
    """Write the daily digest (HTML + CSV under <home>/digests; mailed when SMTP is configured)."""
    from datetime import date

    from riskpulse.streams.alerts.digest import run_digest

    try:
        html_path, csv_path = run_digest(get_settings(), date.fromisoformat(day) if day else None)
    except (RiskPulseError, ValueError, OSError) as exc:
        _fail(exc)
    typer.echo(f"{html_path}\n{csv_path}")


@app.command("secret")
def secret() -> None:
    """Print the webhook signing secret receivers verify with (this install's own, made on first use)."""
    from riskpulse.streams.alerts.webhooks import webhook_secret

    try:
        value, source = webhook_secret(get_settings())
    except RiskPulseError as exc:
        _fail(exc)
    typer.echo(f"webhook signing secret from {source} (Standard Webhooks, whsec_…; keep it private):", err=True)
    typer.echo(value)


@app.command("test-webhook")
def test_webhook(url: str, fmt: str = typer.Option("standard", "--format", help="standard or slack.")) -> None:
    """Send one signed sample notification to URL and report the receiver's answer."""
    import httpx

    from riskpulse.streams.alerts.detector import Alert
    from riskpulse.streams.alerts.notify import Notification, render
    from riskpulse.streams.alerts.rules import Rule, WebhookTarget
    from riskpulse.streams.alerts.webhooks import post_once, webhook_secret

    settings = get_settings()
    try:
        secret_value, _source = webhook_secret(settings)
    except RiskPulseError as exc:
        _fail(exc)
    now = time.time()
    rule = Rule(name="test-webhook", key=("topic",), window_s=300, webhooks=(WebhookTarget(url=url, format=fmt),))
    sample = Alert(
        alert_id="alt_test", rule=rule.name, key="topic=Sample", labels={"topic": "Sample"}, severity="info",
        status="open", opened_at=now, updated_at=now, resolved_at=None, window_start=now - 300, window_end=now,
        count=40, negatives=30, share=0.75, baseline_mean=0.12, baseline_std=0.05, z=12.6, peak_z=12.6, windows=1,
        examples=({"id": "sample-1", "text": "This is a sample message from `riskpulse alerts test-webhook`."},),
        model_versions=("sample",),
    )
    n = Notification(f"ntf_test_{int(now)}", "test-webhook{topic=Sample}", rule, {"topic": "Sample"}, "firing", (sample,))
    msg_id = f"msg_test_{int(now * 1000)}"
    with httpx.Client(timeout=settings.webhook_timeout_s) as client:
        result = post_once(client, url, secret_value, msg_id, render(n, fmt, now))
    if not result.ok:
        _fail(RiskPulseError(f"{url} did not accept the signed sample: {result.error}"))
    typer.echo(f"{url} accepted signed sample {msg_id}")
