"""Durable webhook delivery: group → outbox → signed POST, one lane per receiver.

Every notification is written to the ClickHouse outbox (one row per target, status ``pending``)
before the first attempt, and every attempt's outcome is written back, so a service killed at any
point resumes on restart: pending rows are retried, and alerts that were detected but never
notified are regrouped from the ``alerts`` table.

Attempt outcomes are written in one INSERT per tick (a receiver that fails fast would otherwise
crowd the store with single-row writes); one not yet written when the process dies is sent again
after the restart under the same ``webhook-id``, which receivers deduplicate on.

A failing delivery is retried with capped exponential backoff (or when the receiver's
``Retry-After`` says) until ``webhook_retry_horizon_s`` (a day by default) has passed since it was
made; then it becomes ``dead`` with the last error, and ``riskpulse alerts redrive`` queues it
again. Each receiver has its own lane with its own threads, so a slow or failing receiver holds up
only itself; within a lane, one group's notifications go out in the order they were made (a later
one waits while an earlier one is undelivered), so a receiver never hears an alert resolve before
it heard it fire. Nothing here touches the event loop, so no receiver can slow down detection.
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

from riskpulse.core import retry as store_retry
from riskpulse.core.clock import from_epoch, to_epoch
from riskpulse.core.settings import Settings
from riskpulse.streams.alerts.detector import Alert, AlertEvent
from riskpulse.streams.alerts.notify import Grouper, Notification, group_key, render
from riskpulse.streams.alerts.rules import RuleSet
from riskpulse.streams.ops import metrics
from riskpulse.streams.alerts.webhooks import Attempt, backoff_s, check_targets, post_once, webhook_secret
from riskpulse.streams.store.alerts import UNDELIVERED, AlertRepo

log = logging.getLogger("riskpulse.alerts")
RESTORE_HORIZON_S = 7 * 24 * 3600
ACKS_REFRESH_S = 10.0
REDRIVE_CHECK_S = 10.0


def delivery_id(notification_id: str, url: str) -> str:
    """The ``webhook-id``: fixed per notification and target, so it is the idempotency key."""
    return "msg_" + hashlib.sha256(f"{notification_id}|{url}".encode()).hexdigest()[:24]


class Lane:
    """One receiver's undelivered rows, and which of its groups have a request in flight."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.rows: dict[str, dict[str, Any]] = {}
        self.busy: set[str] = set()
        self.threads: list[threading.Thread] = []

    def heads(self) -> list[dict[str, Any]]:
        """Each idle group's oldest undelivered row: the only one of the group that may be sent."""
        first: dict[str, dict[str, Any]] = {}
        for row in sorted(self.rows.values(), key=lambda r: r["seq"]):
            first.setdefault(row["group_key"], row)
        return [r for g, r in first.items() if g not in self.busy]

    def take(self, now: float, skip: set[str] = frozenset()) -> dict[str, Any] | None:
        """The most overdue sendable row, its group marked busy; None if none is due."""
        due = [r for r in self.heads() if r["next_attempt_at"] <= now and r["delivery_id"] not in skip]
        if not due:
            return None
        row = min(due, key=lambda r: (r["next_attempt_at"], r["seq"]))
        self.busy.add(row["group_key"])
        return row

    def wake_at(self) -> float | None:
        return min((r["next_attempt_at"] for r in self.heads()), default=None)


class Dispatcher:
    """Groups alerts into notifications, stores them in the outbox and delivers them.

    ``start()`` runs it on threads (a planner, and ``webhook_concurrency`` per receiver);
    ``run_once()`` does one planning step and every attempt due at ``clock()`` on the calling
    thread, which is how tests drive it with a fake clock.
    """

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
        self.secret, self.secret_source = webhook_secret(settings)
        check_targets((t.url for r in rules.rules for t in r.webhooks), self.secret)
        self.repo = repo
        self.grouper = Grouper(rules)
        self.client = client or httpx.Client(timeout=settings.webhook_timeout_s)
        self.clock = clock
        self.rng = rng or random.Random()
        self.inbox: queue.Queue[Alert] = queue.Queue()
        self.lanes: dict[str, Lane] = {}
        self._cond = threading.Condition()  # guards lanes; notified when rows arrive or a group frees up
        self._repo_lock = threading.Lock()  # a store connection serves one thread at a time
        self._stop = threading.Event()
        self._running = False
        self._seq = 0
        self._acked_ids: set[str] = set()
        self._acked_at = -ACKS_REFRESH_S
        self._redrive_at = 0.0
        self._planner: threading.Thread | None = None
        self._outcomes: dict[str, dict[str, Any]] = {}  # attempt outcomes not yet written (under _cond)

    @property
    def pending(self) -> dict[str, dict[str, Any]]:
        """Every undelivered row, by delivery id."""
        with self._cond:
            return {i: r for lane in self.lanes.values() for i, r in lane.rows.items()}

    # --- planning: alerts → notifications → outbox rows ----------------------------------
    def restore(self) -> None:
        """Pick up where a previous service stopped: undelivered rows, unnotified alerts."""
        now = self.clock()
        with self._repo_lock:
            rows = self.repo.deliveries(UNDELIVERED, limit=1_000_000)
            notified = self.repo.last_notified()
            alerts = self.repo.recent_alerts(now - RESTORE_HORIZON_S)
        self._queue([self._redriven(r, now) if r["status"] == "redrive" else r for r in rows])
        for alert in alerts:
            rule = next((r for r in self.grouper.rules.rules if r.name == alert.rule), None)
            if rule is not None:  # alerts of rules no longer in the file are left alone
                self.grouper.add(alert, now, notified.get(group_key(rule, alert), {}))
        log.info("dispatcher restored: %d undelivered deliveries to %d receivers, %d groups; secret from %s",
                 len(rows), len(self.lanes), len(self.grouper.groups), self.secret_source)

    def submit(self, events: list[AlertEvent]) -> None:
        """Called from the agent; returns at once."""
        for e in events:
            self.inbox.put(e.alert)

    def plan(self) -> None:
        """Group what arrived, store the notifications that are due, pick up redriven rows."""
        now = self.clock()
        while True:
            try:
                self.grouper.add(self.inbox.get_nowait(), now)
            except queue.Empty:
                break
        notifications = self.grouper.due(now, self._acked(now))
        if notifications:
            self._enqueue(notifications, now)
        if now >= self._redrive_at:
            self._redrive_at = now + REDRIVE_CHECK_S
            with self._repo_lock:
                asked = self.repo.deliveries("redrive", limit=1_000_000)
            if asked:
                self._queue([self._redriven(r, now) for r in asked])

    def _acked(self, now: float) -> set[str]:
        """Acknowledged alert ids (set by `riskpulse alerts ack`), re-read at most every 10 s."""
        if now - self._acked_at >= ACKS_REFRESH_S and any(g.last_sent is not None for g in self.grouper.groups.values()):
            with self._repo_lock:
                self._acked_ids = self.repo.acked_ids()
            self._acked_at = now
        return self._acked_ids

    def _next_seq(self) -> int:
        """Outbox order: wall-clock nanoseconds (ordered across restarts), strictly increasing here."""
        self._seq = max(self._seq + 1, time.time_ns())
        return self._seq

    def _enqueue(self, notifications: list[Notification], now: float) -> None:
        rows = []
        for n in notifications:
            seq = self._next_seq()
            for target in n.rule.webhooks:
                rows.append({
                    "delivery_id": delivery_id(n.notification_id, target.url), "notification_id": n.notification_id,
                    "group_key": n.group_key, "rule": n.rule.name, "url": target.url, "format": target.format,
                    "body": render(n, target.format, now).decode(), "alert_states": json.dumps(n.states, sort_keys=True),
                    "status": "pending", "attempts": 0, "last_error": "", "created_at": from_epoch(now),
                    "seq": seq, "next_attempt_at": now, "retry_from": now,
                })
            if not n.rule.webhooks:
                log.info("notification %s for %s has no webhook targets", n.notification_id, n.group_key)
        # grouping has moved on, so these exist only here until stored: wait out a store outage
        self._store(rows, f"storing {len(rows)} new webhook deliveries")
        self._queue(rows)
        for n in notifications:
            log.info("notification %s: %s %s, %d alert(s)", n.notification_id, n.status, n.group_key, len(n.alerts))

    def _redriven(self, row: dict[str, Any], now: float) -> dict[str, Any]:
        """An operator's redrive: pending again, with a fresh retry horizon and backoff."""
        updated = {**row, "status": "pending", "attempts": 0, "next_attempt_at": now, "retry_from": now}
        self._store([updated], f"redriving webhook {row['delivery_id']}")
        log.info("webhook %s to %s redriven", row["delivery_id"], row["url"])
        return updated

    def _queue(self, rows: list[dict[str, Any]]) -> None:
        with self._cond:
            for row in rows:
                lane = self.lanes.get(row["url"])
                if lane is None:
                    lane = self.lanes[row["url"]] = Lane(row["url"])
                    if self._running:
                        self._start_lane(lane)
                lane.rows[row["delivery_id"]] = row
            self._cond.notify_all()

    def _store(self, rows: list[dict[str, Any]], what: str) -> bool:
        """Write outbox rows, retrying while the store refuses; False only if stopped first."""
        delay = store_retry.FIRST_S
        while True:
            try:
                with self._repo_lock:
                    self.repo.save_deliveries(rows)
                return True
            except Exception as exc:  # noqa: BLE001 - any failure means "not stored yet"
                if self._stop.is_set():
                    log.warning("%s abandoned on stop (%r); the outbox keeps the earlier state", what, exc)
                    return False
                log.error("%s failed, retrying in %.1f s: %r", what, delay, exc)
                if self._stop.wait(delay):
                    return False
                delay = min(max(delay * 2, 0.1), store_retry.MAX_S)

    # --- delivery: one attempt at a time per group, lanes independent -----------------------
    def deliver_due(self) -> int:
        """Attempt, on this thread, every row due now (each at most once); returns how many."""
        done = 0
        for lane in list(self.lanes.values()):
            tried: set[str] = set()
            while True:
                with self._cond:
                    row = lane.take(self.clock(), tried)
                if row is None:
                    break
                tried.add(row["delivery_id"])
                self._attempt(lane, row)
                done += 1
        return done

    def run_once(self) -> None:
        self.plan()
        self.deliver_due()
        self.flush()

    def flush(self) -> None:
        """Write the attempt outcomes since the last flush to the outbox, in one INSERT."""
        with self._cond:
            rows, self._outcomes = list(self._outcomes.values()), {}
        if rows:
            self._store(rows, f"recording {len(rows)} webhook attempt outcomes")

    def _attempt(self, lane: Lane, row: dict[str, Any]) -> None:
        result = post_once(self.client, row["url"], self.secret, row["delivery_id"], row["body"].encode())
        updated = self._outcome(row, result, self.clock())
        metrics.webhook_attempted(row["url"], "delivered" if result.ok else "retrying" if updated["status"] == "pending" else "dead")
        with self._cond:
            lane.busy.discard(row["group_key"])
            if updated["status"] == "pending":
                lane.rows[row["delivery_id"]] = updated
            else:
                lane.rows.pop(row["delivery_id"], None)
            self._outcomes[row["delivery_id"]] = updated
            self._cond.notify_all()
        if updated["status"] == "pending":
            log.info("webhook %s to %s failed (attempt %d), next in %.0f s: %s", row["delivery_id"], row["url"],
                     updated["attempts"], updated["next_attempt_at"] - self.clock(), result.error)
        else:
            level = logging.INFO if updated["status"] == "delivered" else logging.ERROR
            log.log(level, "webhook %s to %s %s after %d attempt(s) %s", row["delivery_id"], row["url"],
                    updated["status"], updated["attempts"], result.error)

    def _outcome(self, row: dict[str, Any], result: Attempt, now: float) -> dict[str, Any]:
        """The row after an attempt: delivered, pending until its next try, or dead past the horizon."""
        attempts = row["attempts"] + 1
        retry_from = row.get("retry_from") or to_epoch(row["created_at"])
        deadline = retry_from + self.settings.webhook_retry_horizon_s
        if result.ok:
            status, next_at = "delivered", 0.0
        elif result.retryable and now < deadline:
            delay = result.retry_after_s
            if delay is None:
                delay = backoff_s(attempts, self.settings.webhook_backoff_s, self.settings.webhook_backoff_cap_s, self.rng)
            status, next_at = "pending", min(now + delay, deadline)  # the last try lands on the horizon
        else:
            status, next_at = "dead", 0.0
        return {**row, "status": status, "attempts": attempts, "last_error": result.error,
                "next_attempt_at": next_at, "retry_from": retry_from}

    # --- threads ------------------------------------------------------------------------------
    def start(self) -> None:
        self.restore()
        with self._cond:
            self._running = True
            for lane in self.lanes.values():
                self._start_lane(lane)
        self._planner = threading.Thread(target=self._plan_loop, name="riskpulse-alert-planner", daemon=True)
        self._planner.start()

    def _start_lane(self, lane: Lane) -> None:
        for i in range(self.settings.webhook_concurrency):
            thread = threading.Thread(target=self._serve, args=(lane,), name=f"riskpulse-webhook-{len(self.lanes)}-{i}",
                                      daemon=True)
            lane.threads.append(thread)
            thread.start()

    def _plan_loop(self) -> None:
        while not self._stop.wait(self.settings.alert_tick_s):
            try:
                self.plan()
                self.flush()
            except Exception:  # keep going; the outbox and the alerts table hold the state
                log.exception("alert dispatcher planning failed; retrying next tick")

    def _serve(self, lane: Lane) -> None:
        """One of a lane's senders: the next due row of an idle group, else sleep until one is."""
        while not self._stop.is_set():
            with self._cond:
                row = lane.take(self.clock())
                if row is None:
                    wake = lane.wake_at()
                    wait = self.settings.alert_tick_s if wake is None else wake - self.clock()
                    self._cond.wait(min(max(wait, 0.01), self.settings.alert_tick_s))
                    continue
            try:
                self._attempt(lane, row)
            except Exception:  # keep serving; the row stays as the store has it
                log.exception("webhook %s to %s: attempt failed unexpectedly", row["delivery_id"], lane.url)
                with self._cond:
                    lane.busy.discard(row["group_key"])

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop planning and sending; a request still in flight is abandoned (its row stays pending
        in the outbox and is sent again, under the same webhook-id, after a restart)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
            threads = [t for lane in self.lanes.values() for t in lane.threads]
        deadline = time.monotonic() + timeout_s
        alive = [t for t in [self._planner, *threads] if t is not None]
        for thread in alive:
            thread.join(max(0.0, deadline - time.monotonic()))
        try:
            with self._repo_lock:
                self.repo.save_deliveries(list(self._outcomes.values()))
        except Exception as exc:  # noqa: BLE001 - unrecorded outcomes are sent again after a restart
            log.warning("could not record %d webhook outcomes on stop: %r", len(self._outcomes), exc)
        if not any(t.is_alive() for t in alive):  # else the process exit closes the sockets
            self.client.close()
