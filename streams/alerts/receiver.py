"""A small local webhook receiver: verifies each request's Standard Webhooks signature, answers, and
writes what it heard — with the alert's explanation in words — to a log file.

What the demo starts to show a signed alert arriving; also handy to try a rules file against before a
real receiver exists. A request whose signature or timestamp does not check out is answered 401 and
logged as rejected; a repeated ``webhook-id`` (a retry) is answered 200 and logged once.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from riskpulse.streams.alerts.webhooks import WebhookVerificationError, verify

log = logging.getLogger("riskpulse.alerts")


def describe(body: dict[str, Any]) -> list[str]:
    """A standard webhook body as lines a person reads: each alert and why it fired."""
    data = body.get("data", {})
    lines = [f"{body.get('type')} rule={data.get('rule')} severity={data.get('severity')} "
             f"schema_version={data.get('schema_version', 1)}"]
    for alert in data.get("alerts", []):
        lines.append(f"  alert {alert['alert_id']} {alert['key']} {alert['status']}: {alert['share']:.0%} negative of "
                     f"{alert['count']} in {alert['window_start']} .. {alert['window_end']} "
                     f"(baseline {alert['baseline_mean']:.0%}, z={alert['z']:.1f})")
        why = alert.get("explanation") or {}
        if "window" not in why:
            lines.append(f"  (no explanation{': ' + why['error'] if 'error' in why else ''})")
            continue
        win, base = why["window"], why["baseline"]
        lines.append(f"  window: {win['messages']} messages, {win['stories']} stories, {win['negative_share']:.0%} negative; "
                     f"baseline: {base['messages_per_window']:g} per window over {base['windows']:g} windows, "
                     f"{base['negative_share']:.0%} negative")
        lines.append("  top entities: " + ", ".join(f"{e['name']} [{e['id']}] {e['messages']}" for e in why["top_entities"]))
        lines.append("  top sources: " + ", ".join(f"{s['source']}/{s['channel']} {s['messages']}" for s in why["top_sources"]))
        lines.append("  distinctive terms: " + ", ".join(f"{t['term']} (z={t['z']:g})" for t in why["terms"]))
        lines += [f"  example ({e['confidence']:.2f}, {e['copies']} cop{'y' if e['copies'] == 1 else 'ies'}): "
                  f"{' '.join(e['text'].split())}" for e in why["examples"]]
    return lines


@dataclass
class Heard:
    """One request the receiver answered."""

    webhook_id: str
    verified: bool
    error: str
    body: dict[str, Any] = field(default_factory=dict)


class WebhookReceiver:
    """``ThreadingHTTPServer`` on ``host:port`` (0: a free port) that verifies with ``secret``; ``start()``/``stop()``."""

    def __init__(self, secret: str, log_path: Path, host: str = "127.0.0.1", port: int = 0, tolerance_s: int = 300) -> None:
        self.secret = secret
        self.log_path = log_path
        self.tolerance_s = tolerance_s
        self.heard: list[Heard] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = receiver.handle(dict(self.headers.items()), body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/riskpulse"

    def start(self) -> "WebhookReceiver":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        """Verify, record and log one request; the HTTP status to answer."""
        webhook_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id", "")
        try:
            verify(self.secret, headers, body, self.tolerance_s)
        except WebhookVerificationError as exc:
            self._record(Heard(webhook_id, False, str(exc)), [f"REJECTED {webhook_id or '(no id)'}: {exc}"])
            return 401
        with self._lock:
            if any(h.webhook_id == webhook_id and h.verified for h in self.heard):
                return 200  # a retry of one already accepted
        payload = json.loads(body)
        self._record(Heard(webhook_id, True, "", payload),
                     [f"VERIFIED {webhook_id}", *describe(payload), "  body: " + json.dumps(payload, sort_keys=True)])
        return 200

    def _record(self, heard: Heard, lines: list[str]) -> None:
        with self._arrived:
            self.heard.append(heard)
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n\n")
            self._arrived.notify_all()
        log.info("webhook receiver: %s %s", "verified" if heard.verified else "rejected", heard.webhook_id)

    def wait_for_verified(self, timeout_s: float) -> list[Heard]:
        """The verified requests heard so far, waiting up to ``timeout_s`` for the first."""
        with self._arrived:
            self._arrived.wait_for(lambda: any(h.verified for h in self.heard), timeout=timeout_s)
            return [h for h in self.heard if h.verified]
