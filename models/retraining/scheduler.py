"""`riskpulse scheduler`: retraining on a timetable that survives restarts and never runs twice.

* **Timetable.** APScheduler 3 with a cron trigger (``settings.retrain_cron``, UTC) or, when
  ``settings.retrain_interval_s`` > 0, an interval trigger.
* **Persistent.** The job lives in a SQLite job store under ``<home>/scheduler``: a restart keeps
  the next slot, and a slot missed while the scheduler was down runs once (coalesced) if it is
  within ``retrain_misfire_grace_s``. APScheduler moves the job to its next slot as it starts a
  run, so a restart after a crash does not repeat the slot.
* **One at a time.** A scheduler holds ``scheduler.lock`` for as long as it schedules; a second
  one started on the same home waits as a standby and takes over when the first exits or dies
  (the kernel drops a dead process's lock). Each run also takes the retrain lock, so a manual
  ``riskpulse retrain`` and a scheduled run never overlap.
* **Crash-safe.** A run killed mid-way is left ``running`` in ``retrain_runs``; the next scheduler
  start (or the next run) marks it failed. Registry writes are atomic, so nothing is half-applied.
* **Daily digest.** The same scheduler writes (and mails, if configured) the alerts' daily digest on
  ``settings.digest_cron`` (``riskpulse.streams.alerts.digest``), a second job in the same store; an
  empty cron removes it. Two executor threads, so a long retrain does not hold the digest back.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from riskpulse.core.clock import from_epoch
from riskpulse.core.settings import Settings, get_settings
from riskpulse.streams.ops import metrics

log = logging.getLogger("riskpulse.retraining")
JOB_ID = "retrain"
DIGEST_JOB_ID = "digest"
# where the job function lived before the `riskpulse` import root; stores written then are migrated
OLD_JOB_FUNCS = ("models.scheduler:scheduled_run",)


def scheduler_dir(settings: Settings) -> Path:
    path = settings.home / "scheduler"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_trigger(settings: Settings, clock: Callable[[], float] = time.time):
    """The timetable: an interval's first slot is one interval after ``clock()`` (epoch seconds).

    A cron trigger's slots are computed by APScheduler from its own clock when the job is added.
    """
    from apscheduler.triggers.interval import IntervalTrigger

    if settings.retrain_interval_s > 0:
        first = from_epoch(clock() + settings.retrain_interval_s)
        return IntervalTrigger(seconds=settings.retrain_interval_s, start_date=first, timezone="UTC")
    return cron_trigger("RISKPULSE_RETRAIN_CRON", settings.retrain_cron, "0 3 * * *")


def cron_trigger(setting: str, crontab: str, example: str):
    """A UTC cron trigger from a crontab setting, or a RetrainError naming the setting."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(crontab, timezone="UTC")
    except ValueError as error:
        from riskpulse.models.retraining.retrainer import RetrainError

        raise RetrainError(f"{setting}={crontab!r} is not a 5-field crontab ({error}); e.g. {example!r}") from None


def scheduled_run() -> None:
    """The stored job. APScheduler keeps it by reference, so it reads settings itself."""
    from riskpulse.models.retraining.retrainer import RetrainBusy, run_once

    try:
        record = run_once(get_settings(), trigger="scheduled")
    except RetrainBusy as busy:
        log.warning("scheduled retrain skipped: %s", busy)
        return
    metrics.RETRAIN_RUNS.labels(record.status).inc()
    log.info("scheduled retrain %s finished: %s (%s)", record.run_id, record.status, record.reason)


def scheduled_digest() -> None:
    """The stored digest job: the day before's digest, written and mailed as the settings say."""
    from riskpulse.streams.alerts.digest import run_digest

    html_path, _ = run_digest(get_settings())
    log.info("scheduled digest written: %s", html_path)


def digest_trigger(settings: Settings):
    """The digest's cron trigger (UTC), or None when ``digest_cron`` is empty."""
    if not settings.digest_cron.strip():
        return None
    return cron_trigger("RISKPULSE_DIGEST_CRON", settings.digest_cron, "0 6 * * *")


def _ensure_digest_job(scheduler, trigger) -> None:
    """Like the retrain job: kept with its next slot unless the timetable changed; removed when off."""
    job = scheduler.get_job(DIGEST_JOB_ID)
    if trigger is None:
        if job is not None:
            scheduler.remove_job(DIGEST_JOB_ID)
            log.info("digest job removed: RISKPULSE_DIGEST_CRON is empty")
        return
    if job is not None and str(job.trigger) == str(trigger):
        log.info("digest job kept from the job store: %s, next run %s", job.trigger, job.next_run_time)
        return
    job = scheduler.add_job(scheduled_digest, trigger, id=DIGEST_JOB_ID, name="digest", replace_existing=True)
    log.info("digest job scheduled: %s, next run %s", trigger, job.next_run_time)


def recover_at_start(settings: Settings) -> None:
    """Mark runs a dead process left `running` as failed, unless a live run holds the lock."""
    from riskpulse.models.serving.registry import Registry
    from riskpulse.models.retraining.retrainer import recover_interrupted, run_lock
    from riskpulse.streams.store.backends import open_store

    lock = run_lock(settings)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("a retrain run is in progress; leaving its record alone")
        return
    try:
        store = open_store(settings)
        try:
            recover_interrupted(store, Registry(settings.registry_root).current())
        finally:
            store.close()
    finally:
        lock.release()


def _ensure_job(scheduler, trigger) -> None:
    """Keep the stored job (and its next slot) unless the timetable changed."""
    job = scheduler.get_job(JOB_ID)
    if job is not None and str(job.trigger) == str(trigger):
        log.info("retrain job kept from the job store: %s, next run %s", job.trigger, job.next_run_time)
        return
    job = scheduler.add_job(scheduled_run, trigger, id=JOB_ID, name="retrain", replace_existing=True)
    log.info("retrain job scheduled: %s, next run %s", trigger, job.next_run_time)


def job_store_path(settings: Settings) -> Path:
    return scheduler_dir(settings) / "jobs.sqlite"


def migrate_job_store(path: Path) -> int:
    """Point stored jobs that name the job function by its old dotted path at the current one.

    APScheduler keeps a job's function as a ``module:name`` string inside its pickled state and
    drops a job whose function no longer imports, losing its next slot; rewriting the string keeps
    the job and the slot. Returns how many jobs were rewritten."""
    import pickle
    import sqlite3

    from apscheduler.util import obj_to_ref

    if not path.is_file():
        return 0
    with sqlite3.connect(path) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='apscheduler_jobs'").fetchone():
            return 0
        moved = 0
        for job_id, blob in db.execute("SELECT id, job_state FROM apscheduler_jobs").fetchall():
            state = pickle.loads(blob)
            if state.get("func") in OLD_JOB_FUNCS:
                log.info("job store %s: job %s moves from %s to its new module", path, job_id, state["func"])
                state["func"] = obj_to_ref(scheduled_run)
                db.execute("UPDATE apscheduler_jobs SET job_state = ? WHERE id = ?",
                           (pickle.dumps(state, pickle.HIGHEST_PROTOCOL), job_id))
                moved += 1
    return moved


def serve(settings: Settings, stop: threading.Event) -> None:
    """Wait to be the active scheduler, then run retraining on the timetable until `stop` is set."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    trigger = build_trigger(settings)
    digest = digest_trigger(settings)
    folder = scheduler_dir(settings)
    leader = FileLock(str(folder / "scheduler.lock"))
    waiting = False
    while True:
        try:
            leader.acquire(timeout=1)
            break
        except Timeout:
            if stop.is_set():
                return
            if not waiting:
                log.info("another scheduler is active on %s; standing by until it stops", folder)
                waiting = True
    log.info("scheduler active on %s (retrain %s)", folder, trigger)
    try:
        recover_at_start(settings)
        migrate_job_store(job_store_path(settings))
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{job_store_path(settings)}")},
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.retrain_misfire_grace_s},
            timezone="UTC",
        )
        scheduler.start(paused=True)
        _ensure_job(scheduler, trigger)
        _ensure_digest_job(scheduler, digest)
        scheduler.resume()
        stop.wait()
        log.info("scheduler stopping; waiting for a running retrain to finish")
        scheduler.shutdown(wait=True)
    finally:
        leader.release()


def run_forever(settings: Settings) -> None:
    """`serve` with SIGINT/SIGTERM turned into a clean stop."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    metrics.serve_metrics(settings.scheduler_metrics_port)
    serve(settings, stop)
