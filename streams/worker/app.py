"""The faust app behind `riskpulse worker`.

App id = consumer group, so every worker started with the same settings joins one
group and the raw topic's partitions are split between them. Each worker needs its
own web port (``RISKPULSE_WEB_PORT``).
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import faust

from riskpulse.streams.worker.agents import Scorer, register_scorer
from riskpulse.streams.worker.batching import BatchWriter, Classifier, EntityFinder, StoryGrouper
from riskpulse.streams.worker.delivery import prompt_consumer
from riskpulse.core import RiskPulseError
from riskpulse.core.settings import Settings
from riskpulse.streams.kafka_auth import faust_credentials
from riskpulse.streams.ops.metrics import add_metrics_page

log = logging.getLogger("riskpulse.worker")

COMMIT_INTERVAL_S = 1.0


def worker_datadir(settings: Settings) -> Path:
    return settings.home / f"{settings.consumer_group}-data"


def check_writable(path: Path) -> None:
    """faust writes its data dir as it starts; read-only or full, it died there with a bare traceback."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise RiskPulseError(f"faust data dir {path} is not writable ({exc.strerror or exc}); make it writable, "
                             "free space, or point RISKPULSE_HOME elsewhere") from exc


def create_app(settings: Settings) -> faust.App:
    """A faust app configured for at-least-once processing with manual acks, with ``/metrics`` on its web port;
    its consumer, producer and admin clients log in with the settings' Kafka credentials, and with ``prompt_delivery`` its
    consumer hands records to the streams without making tasks for each (:mod:`riskpulse.streams.worker.delivery`)."""
    app = faust.App(
        settings.consumer_group,
        broker=f"kafka://{settings.bootstrap_servers}",
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(worker_datadir(settings)),  # not the working directory
        autodiscover=False,
        web_port=settings.web_port,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=COMMIT_INTERVAL_S,
        broker_commit_every=max(settings.batch_max_size, 100),
        stream_wait_empty=True,
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_s / 5),
        producer_acks=-1,
        producer_max_batch_size=settings.producer_max_batch_bytes,
        topic_partitions=settings.raw_partitions,
        topic_replication_factor=settings.topic_replication_factor,  # for topics faust creates itself
    )
    if settings.prompt_delivery:
        app.transport.Consumer = prompt_consumer(app.transport.Consumer)
    add_metrics_page(app, settings.consumer_group)
    return app


class BoundedWorker(faust.Worker):
    """faust's worker with a stop that takes at most ``stop_grace_s``.

    Stopping waits on the broker (final commits, leaving the group): with the broker down, SIGTERM
    was seen to hang for over 30 s until ``kill -9``. Past the grace period the process exits at once;
    offsets it had not committed are redelivered to the group, and the idempotent tables count those
    records once, so a forced stop loses nothing and double-counts nothing.
    """

    def __init__(self, app: faust.App, *, stop_grace_s: float, exit: Callable[[int], None] = os._exit, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self._stop_grace_s, self._exit = stop_grace_s, exit
        self._deadline: threading.Timer | None = None

    def _repr_name(self) -> str:
        return "Worker"  # logs keep faust's "[^Worker]: Ready", which operators and tests wait for

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if self._deadline is None:
            self._deadline = threading.Timer(self._stop_grace_s, self._give_up, args=(signal,))
            self._deadline.daemon = True
            self._deadline.start()
        super()._schedule_shutdown(signal)

    def _give_up(self, received: signal.Signals) -> None:
        log.error("stop on %s took over %.0f s (broker or store unreachable?): exiting now; "
                  "uncommitted records will be redelivered", received.name, self._stop_grace_s)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._exit(128 + received.value)


def run_app(app: faust.App, settings: Settings) -> None:
    """Run a faust app until SIGTERM/SIGINT, stopping within ``settings.stop_grace_s``."""
    BoundedWorker(app, stop_grace_s=settings.stop_grace_s, loglevel="INFO").execute_from_commandline()


def build_worker_app(settings: Settings, engine: Classifier, store: BatchWriter, stories: StoryGrouper | None = None,
                     entities: EntityFinder | None = None) -> tuple[faust.App, Scorer]:
    """The app with its scoring agent; store calls (and story grouping) run on one dedicated thread."""
    app = create_app(settings)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskpulse-store")
    return app, register_scorer(app, settings, engine, store, executor, stories, entities)


def run_worker(settings: Settings, engine: Classifier) -> None:
    """Open the store, make sure topics exist, then consume with `engine` until stopped. The
    caller (the CLI) chooses the engine, so the streaming floor never imports the models."""
    from riskpulse.streams.enrich.enrich_process import EnrichProcess
    from riskpulse.streams.enrich.entities import load_extractor
    from riskpulse.streams.enrich.stories import worker_stories
    from riskpulse.streams.store import entities, messages
    from riskpulse.streams.store.migrate import migrate
    from riskpulse.streams.store.backends import open_store
    from riskpulse.streams.topics import ensure_topics

    check_writable(worker_datadir(settings))
    ensure_topics(settings)
    store = open_store(settings)
    migrate(store, [messages, entities])
    log.info(
        "worker %s: model %s, store %s, %s → %s (batch ≤%d / %.2fs), web port %d",
        settings.consumer_group, engine.version, settings.store, settings.topic_raw,
        settings.topic_scored, settings.batch_max_size, settings.batch_max_wait_s, settings.web_port,
    )
    # each worker groups its partitions with its own index, refilled from (and synced with) every partition's messages
    stories = worker_stories(settings, store)
    entities = load_extractor(settings) if settings.entities and not settings.enrich_process else None
    enrich = EnrichProcess(settings) if settings.enrich_process and (settings.entities or stories is not None) else None
    if enrich is not None:
        entities = enrich.entities if settings.entities else None
        if stories is not None:
            stories.sketcher = enrich.sketcher
    app, _ = build_worker_app(settings, engine, store, stories, entities)
    try:
        run_app(app, settings)
    finally:
        if enrich is not None:
            enrich.close()
        store.close()
