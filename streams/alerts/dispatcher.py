"""Durable webhook delivery in a background thread: group → outbox → signed POST.

Every notification is written to the ClickHouse outbox (one row per target, status
``pending``) before the first attempt, and every attempt's outcome is written back, so
a worker killed at any point resumes on restart: pending rows are retried, and alerts
that were detected but never notified are regrouped from the ``alerts`` table. A row
that fails past the retry budget becomes ``dead`` with the last error (the webhook
dead-letter). The thread never touches the event loop, so a slow receiver cannot hold
up scoring.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from riskpulse.streams.alerts.detector import Alert, AlertEvent
from riskpulse.streams.alerts.notify import Grouper, Notification, group_key, render
from riskpulse.streams.alerts.rules import RuleSet
from riskpulse.streams.store.alerts import AlertRepo
from riskpulse.streams.alerts.webhooks import backoff_s, post_once
from riskpulse.core.clock import from_epoch
from riskpulse.core.settings import Settings

log = logging.getLogger("riskpulse.alerts")
RESTORE_HORIZON_S = 7 * 24 * 3600
ACKS_REFRESH_S = 10.0


def delivery_id(notification_id: str, url: str) -> str:
    """The ``webhook-id``: fixed per notification and target, so it is the idempotency key."""
    return "msg_" + hashlib.sha256(f"{notification_id}|{url}".encode()).hexdigest()[:24]


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        rules: RuleSet,
        repo: AlertRepo,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.secret = settings.webhook_secret.get_secret_value()
        self.repo = repo
        self.grouper = Grouper(rules)
        self.client = client or httpx.Client(timeout=settings.webhook_timeout_s)
        self.clock = clock
        self.rng = rng or random.Random()
        self.inbox: queue.Queue[Alert] = queue.Queue()
        self.pending: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._acked_ids: set[str] = set()
        self._acked_at = -ACKS_REFRESH_S
        self._thread: threading.Thread | None = None

    def restore(self) -> None:
        """Pick up where a previous worker stopped: pending deliveries, unnotified alerts."""
        now = self.clock()
        self.pending = {r["delivery_id"]: r for r in self.repo.deliveries("pending", limit=100_000)}
        notified = self.repo.last_notified()
        alerts = self.repo.recent_alerts(now - RESTORE_HORIZON_S)
        for alert in alerts:
            rule = next((r for r in self.grouper.rules.rules if r.name == alert.rule), None)
            if rule is not None:  # alerts of rules no longer in the file are left alone
                self.grouper.add(alert, now, notified.get(group_key(rule, alert), {}))
        log.info("dispatcher restored: %d pending deliveries, %d groups", len(self.pending), len(self.grouper.groups))

    def submit(self, events: list[AlertEvent]) -> None:
        """Called from the agent; returns at once."""
        for e in events:
            self.inbox.put(e.alert)

    def run_once(self) -> None:
        now = self.clock()
        while True:
            try:
                self.grouper.add(self.inbox.get_nowait(), now)
            except queue.Empty:
                break
        notifications = self.grouper.due(now, self._acked(now))
        if notifications:
            self._enqueue(notifications, now)
        for row in sorted(self.pending.values(), key=lambda r: r["next_attempt_at"]):
            if row["next_attempt_at"] <= self.clock() and not self._stop.is_set():
                self._attempt(row)

    def _acked(self, now: float) -> set[str]:
        """Acknowledged alert ids (set by `riskpulse alerts ack`), re-read at most every 10 s."""
        if now - self._acked_at >= ACKS_REFRESH_S and any(g.last_sent is not None for g in self.grouper.groups.values()):
            self._acked_ids, self._acked_at = self.repo.acked_ids(), now
        return self._acked_ids

    def _enqueue(self, notifications: list[Notification], now: float) -> None:
        rows = []
        seq = time.time_ns()
        for i, n in enumerate(notifications):
            for target in n.rule.webhooks:
                rows.append({
                    "delivery_id": delivery_id(n.notification_id, target.url), "notification_id": n.notification_id,
                    "group_key": n.group_key, "rule": n.rule.name, "url": target.url, "format": target.format,
                    "body": render(n, target.format, now).decode(), "alert_states": json.dumps(n.states, sort_keys=True),
                    "status": "pending", "attempts": 0, "last_error": "", "created_at": from_epoch(now),
                    "seq": seq + i, "next_attempt_at": now,
                })
            if not n.rule.webhooks:
                log.info("notification %s for %s has no webhook targets", n.notification_id, n.group_key)
        self.repo.save_deliveries(rows)
        self.pending.update({r["delivery_id"]: r for r in rows})
        for n in notifications:
            log.info("notification %s: %s %s, %d alert(s)", n.notification_id, n.status, n.group_key, len(n.alerts))

    def _attempt(self, row: dict[str, Any]) -> None:
        result = post_once(self.client, row["url"], self.secret, row["delivery_id"], row["body"].encode())
        attempts = row["attempts"] + 1
        if result.ok:
            status, next_at = "delivered", 0.0
        elif result.retryable and attempts < self.settings.webhook_max_attempts:
            status = "pending"
            delay = backoff_s(attempts, self.settings.webhook_backoff_s, self.settings.webhook_backoff_cap_s, self.rng)
            next_at = self.clock() + delay
        else:
            status, next_at = "dead", 0.0
        updated = {**row, "status": status, "attempts": attempts, "last_error": result.error, "next_attempt_at": next_at}
        self.repo.save_deliveries([updated])
        if status == "pending":
            self.pending[row["delivery_id"]] = updated
            log.info("webhook %s to %s failed (attempt %d): %s", row["delivery_id"], row["url"], attempts, result.error)
        else:
            del self.pending[row["delivery_id"]]
            level = logging.INFO if status == "delivered" else logging.ERROR
            log.log(level, "webhook %s to %s %s after %d attempt(s) %s", row["delivery_id"], row["url"], status,
                    attempts, result.error)

    def start(self) -> None:
        self.restore()
        self._thread = threading.Thread(target=self._loop, name="riskpulse-alert-dispatcher", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.alert_tick_s):
            try:
                self.run_once()
            except Exception:  # keep delivering; the outbox holds the state
                log.exception("alert dispatcher cycle failed; retrying next tick")

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.settings.webhook_timeout_s + 2)
        self.client.close()

