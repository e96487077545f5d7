"""The alerting agent: scored topic → detector → ClickHouse + alerts topic + webhook outbox.

Recovery (why no faust tables): detector state for *closed* windows is snapshotted to
ClickHouse (``alert_state``) as windows close, and a scored record is acked only after
every window it counts in has closed and been snapshotted. After a crash the
uncommitted records — exactly those of still-open windows — are redelivered and
recounted, while records of closed windows are recognised as already counted. Faust
tables would need the scored topic co-partitioned by alert key; a topic key spans all
partitions, so alerting runs as its own consumer group (``riskpulse alerts run``), one
active instance, which sees every partition and never shares a process with scoring; a second
instance started by mistake stands by without detecting or notifying (:mod:`.standby`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from riskpulse.streams.alerts.detector import Alert, AlertEvent, Detector, Observation
from riskpulse.streams.ops import metrics
from riskpulse.streams.alerts.dispatcher import Dispatcher
from riskpulse.streams.alerts.explain import Explainer
from riskpulse.streams.alerts.rules import RuleSet, load_rules
from riskpulse.streams.alerts.standby import OneActiveAssignor
from riskpulse.streams.alerts.webhooks import check_targets, webhook_secret
from riskpulse.streams.enrich.entities import watchlist_ids, watchlist_path
from riskpulse.streams.store.alerts import AlertRepo
from riskpulse.core.retry import retry
from riskpulse.core.schema import ScoredMessage
from riskpulse.core.settings import Settings

log = logging.getLogger("riskpulse.alerts")


def observation(msg: ScoredMessage) -> Observation:
    return Observation(
        id=msg.id, ts=msg.ts.timestamp(), topic=msg.topic, source=msg.source, channel=msg.channel,
        negative=msg.sentiment == "negative", text=msg.text, model_version=msg.model_version,
        entities=tuple(msg.entities), story_id=msg.story_id,
    )


LATE_WARNING_EVERY_S = 60.0


def settle_time(rules: RuleSet, ts: float) -> float:
    """Event time at which every window holding an event at ``ts`` has closed."""
    return max(math.floor(ts / r.window_s) * r.window_s + r.window_s + r.grace_s for r in rules.rules)


class PartitionWatermarks:
    """Event time as far as every active partition has got: the slowest one decides.

    Partitions are consumed at different speeds (a backlog on one, a quiet key on
    another), so the latest event time seen anywhere would close windows before a
    lagging partition's records arrive. A partition silent for ``idle_s`` stops counting.
    """

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self.parts: dict[int, tuple[float, float]] = {}

    def expect(self, partitions: list[int]) -> None:
        """Partitions just assigned. One not read yet holds event time back until it is read, or until the
        others have been arriving for ``idle_s`` without it (an empty partition): its silence counts from
        the first record read anywhere, not from the assignment, since a worker may take longer than
        ``idle_s`` to score its first batch.

        Only partitions already read used to count, so the first records of a backlog read from one
        partition (a worker that scored it in one large batch) closed every window before another
        partition's records of the same hours arrived, and those were all dropped as late.
        """
        self.parts = {p: self.parts.get(p, (-math.inf, math.inf)) for p in partitions}

    def see(self, partition: int, ts: float, now: float) -> None:
        if any(seen == math.inf for _, seen in self.parts.values()):  # the first record since an assignment
            self.parts = {p: (t, now if seen == math.inf else seen) for p, (t, seen) in self.parts.items()}
        latest = self.parts.get(partition, (ts, now))[0]
        self.parts[partition] = (max(latest, ts), now)

    def current(self, now: float) -> float:
        active = [ts for ts, seen in self.parts.values() if now - seen < self.idle_s]
        return min(active) if active else max((ts for ts, _ in self.parts.values()), default=0.0)

    def pause(self, seconds: float) -> None:
        """Time the service could not read (waiting on the store) does not make a partition idle."""
        self.parts = {p: (ts, seen + seconds) for p, (ts, seen) in self.parts.items()}


class AlertService:
    """Detector + persistence, called from the agent (one thread: the executor).

    ``clock`` (seconds, ``time.monotonic`` by default) times arrivals: partitions' idleness and
    how long the stream has been quiet; tests pass a fake one. ``explainer`` (an
    :class:`~riskpulse.streams.alerts.explain.Explainer` in the service) explains each alert as it opens or updates.
    """

    def __init__(
        self, settings: Settings, rules: RuleSet, repo: AlertRepo, dispatcher: Dispatcher | None,
        clock: Callable[[], float] = time.monotonic, explainer: Callable[[Alert], dict[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.repo = repo
        self.dispatcher = dispatcher
        self.clock = clock
        watched = watchlist_ids(watchlist_path(settings)) if any(r.watchlist_only for r in rules.rules) else frozenset()
        self.explainer = explainer
        self.detector = Detector(rules, repo.load_states(), watched, self.explainer)
        self.last_arrival = clock()
        self.watermarks = PartitionWatermarks(settings.alert_idle_advance_s)
        self.active = True
        self._late_unreported, self._late_reported_at = 0, -math.inf
        log.info("alert detector restored %d keys, watermark %s", len(self.detector.states), self.detector.watermark)

    def activate(self, dispatcher: Dispatcher | None) -> None:
        """Take over as the group's active service: detector state as the store has it now, then notify."""
        self.detector = Detector(self.rules, self.repo.load_states(), self.detector.watched, self.explainer)
        self.watermarks = PartitionWatermarks(self.settings.alert_idle_advance_s)
        self.last_arrival = self.clock()
        self.dispatcher = dispatcher
        if dispatcher is not None:
            dispatcher.start()
        self.active = True
        log.info("alert detector active: restored %d keys, watermark %s", len(self.detector.states),
                 self.detector.watermark)

    def expect(self, partitions: list[int]) -> None:
        """The scored partitions this service now holds (see :meth:`PartitionWatermarks.expect`)."""
        self.watermarks.expect(partitions)

    def deactivate(self) -> None:
        """Stand by: another service holds the partitions; stop notifying."""
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self.dispatcher, self.active = None, False

    def observe(self, msgs: list[tuple[int, ScoredMessage]]) -> list[AlertEvent]:
        """(partition, message) pairs of one batch → alert events, stored before returning."""
        now = self.clock()
        late = self.detector.late
        for partition, msg in msgs:
            self.detector.add(observation(msg))
            self.watermarks.see(partition, msg.ts.timestamp(), now)
        if msgs:
            self.last_arrival = now
        if self.detector.late > late:
            self._report_late(self.detector.late - late, msgs, now)
        return self._unstalled(now, self._commit(self.detector.advance(self.watermarks.current(now))))

    def _report_late(self, dropped: int, msgs: list[tuple[int, ScoredMessage]], now: float) -> None:
        """Late records are counted in no window, so say so: a metric always, a warning at most every minute."""
        metrics.ALERT_LATE.inc(dropped)
        self._late_unreported += dropped
        if now - self._late_reported_at >= LATE_WARNING_EVERY_S:
            oldest = min(msg.ts for _, msg in msgs)
            log.warning("%d scored records (per rule key) reached the alerts service after their windows closed and "
                        "were counted in none (this batch's oldest: %s, partitions %s; event time now %s)",
                        self._late_unreported, oldest.isoformat(), sorted({p for p, _ in msgs}),
                        datetime.fromtimestamp(self.detector.watermark, timezone.utc).isoformat())
            self._late_unreported, self._late_reported_at = 0, now

    def tick(self) -> list[AlertEvent]:
        """When the stream goes quiet, let event time follow the clock so windows still close."""
        now = self.clock()
        if not self.active:
            return []
        watermark = self.watermarks.current(now)  # a partition never read may just have gone idle
        idle = now - self.last_arrival
        if idle >= self.settings.alert_idle_advance_s and self.detector.watermark > 0:
            self.last_arrival = now
            watermark = max(watermark, self.detector.watermark + idle)
        if watermark <= self.detector.watermark:
            return []
        return self._unstalled(now, self._commit(self.detector.advance(watermark)))

    def _unstalled(self, since: float, events: list[AlertEvent]) -> list[AlertEvent]:
        """``events``, with the time since ``since`` (a commit retrying while ClickHouse is down) not counted as
        quiet: records wait unread in Kafka meanwhile, and the next tick must not move event time past them
        (a 60 s outage closed a planted burst's windows before its records were read: the alert was lost)."""
        stalled = self.clock() - since
        if stalled > 0:
            self.last_arrival += stalled
            self.watermarks.pause(stalled)
        return events

    def _commit(self, events: list[AlertEvent]) -> list[AlertEvent]:
        """Alerts first, then state: a crash in between re-detects the same (deterministic) alert.

        While ClickHouse refuses, retry with backoff: records stay unacked, nothing is lost.
        """
        alerts, states = [e.alert for e in events], self.detector.take_dirty()

        def save() -> None:
            self.repo.save_alerts(alerts)
            self.repo.save_states(states)

        retry(save, f"storing {len(alerts)} alerts and {len(states)} key states")
        for event in events:
            metrics.ALERT_EVENTS.labels(event.alert.rule, event.kind).inc()
        if self.dispatcher is not None:
            self.dispatcher.submit(events)
        return events


def register_alerts(
    app: Any, settings: Settings, service: AlertService, new_dispatcher: Callable[[], Dispatcher] | None = None,
) -> Any:
    """Attach the alerting agent and its idle timer to a faust ``app``; returns the agent.

    With ``new_dispatcher``, the service stands by until the group gives it the scored topic's
    partitions (all of them: :class:`OneActiveAssignor`), and stands by again if it loses them.
    """
    scored = app.topic(settings.topic_scored, key_serializer="raw", value_serializer="raw")
    alerts_topic = app.topic(settings.topic_alerts, key_serializer="raw", value_serializer="raw")
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskpulse-alerts")
    held: deque[tuple[float, Any]] = deque()
    streams: list[Any] = []  # the agent's stream, for acks from the timer

    async def publish(events: list[AlertEvent]) -> None:
        """Alert events onto the alerts topic, acknowledged by the broker before records are acked."""
        futures = [
            await alerts_topic.send(key=e.alert.key.encode(), value=json.dumps({"event": e.kind, **e.alert.to_dict()}).encode())
            for e in events
        ]
        await asyncio.gather(*futures)

    async def release() -> None:
        """Ack records whose windows are closed and persisted."""
        while streams and held and held[0][0] <= service.detector.watermark:
            await streams[0].ack(held.popleft()[1])

    @app.agent(scored, name="riskpulse.alerts")
    async def alerts(stream):
        loop = asyncio.get_running_loop()
        streams[:] = [stream]
        async for batch in stream.noack_take(500, within=0.2):
            msgs = []
            for event in batch:
                try:
                    msg = ScoredMessage.model_validate_json(event.message.value)
                except ValueError as exc:
                    m = event.message
                    log.error("skipping bad scored record %s[%s]@%s: %s", m.topic, m.partition, m.offset, exc)
                    await stream.ack(event)
                    continue
                msgs.append((event.message.partition, msg))
                held.append((settle_time(service.rules, msg.ts.timestamp()), event))
            events = await loop.run_in_executor(executor, service.observe, msgs)
            await publish(events)
            await release()

    @app.timer(1.0)
    async def idle_tick() -> None:
        events = await asyncio.get_running_loop().run_in_executor(executor, service.tick)
        await publish(events)
        await release()

    if new_dispatcher is not None:
        service.active = False
        app.conf.PartitionAssignor = OneActiveAssignor

        @app.on_partitions_assigned.connect
        async def take_role(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
            holds = sorted(tp.partition for tp in assigned if tp.topic == settings.topic_scored)
            loop = asyncio.get_running_loop()
            if holds:
                if not service.active:
                    await loop.run_in_executor(executor, lambda: service.activate(new_dispatcher()))
                    log.warning("alerts service active in group %s: partitions %s of %s",
                                settings.alerts_consumer_group, holds, settings.topic_scored)
                await loop.run_in_executor(executor, service.expect, holds)
            else:
                if service.active:
                    held.clear()  # their partitions are another member's now
                    await loop.run_in_executor(executor, service.deactivate)
                log.warning("alerts service standing by: another `riskpulse alerts run` in group %s holds %s",
                            settings.alerts_consumer_group, settings.topic_scored)

    return alerts


def run_alerts(settings: Settings) -> None:
    """`riskpulse alerts run`: validate rules, migrate, restore, then consume until stopped."""
    from riskpulse.streams.store import alerts as alert_tables
    from riskpulse.streams.store.backends import open_store
    from riskpulse.streams.store.migrate import migrate
    from riskpulse.streams.worker.app import create_app, run_app
    from riskpulse.streams.topics import ensure_topics

    rules = load_rules(settings.rules_file)  # fails start with line and field on a bad file
    check_targets((t.url for r in rules.rules for t in r.webhooks), webhook_secret(settings)[0])  # forgeable?
    ensure_topics(settings)
    store, dispatch_store = open_store(settings), open_store(settings)
    migrate(store, [alert_tables])
    service = AlertService(settings, rules, AlertRepo(store), None, explainer=Explainer(store, rules))
    app = create_app(settings.model_copy(update={
        "consumer_group": settings.alerts_consumer_group, "web_port": settings.alerts_web_port,
    }))
    register_alerts(app, settings, service, lambda: Dispatcher(settings, rules, AlertRepo(dispatch_store)))
    log.info("alerts: %d rules from %s, %s → %s + webhooks", len(rules.rules), settings.rules_file or "default",
             settings.topic_scored, settings.topic_alerts)
    try:
        run_app(app, settings)
    finally:
        service.deactivate()
        store.close()
        dispatch_store.close()
