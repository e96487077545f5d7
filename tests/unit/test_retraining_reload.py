"""Hot reload between batches, and the scheduler's persistent timetable (fakes for the model, fake clocks)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from riskpulse.core.clock import from_epoch
from riskpulse.models.serving.registry import Registry
from riskpulse.models.serving.reloading import ReloadingEngine
from riskpulse.core.settings import Settings
from tests.fakes import FakeClock, FakeEngine


@pytest.fixture
def registry(tmp_path):
    registry = Registry(tmp_path / "models")
    for version in ("v1", "v2", "v3-broken"):
        with registry.write(version) as out:
            (out / "labels.json").write_text("{}")
    registry.promote("v1")
    return registry


def _engine(registry, loads):
    def loader(settings, version):
        version = version or registry.current()
        loads.append(version)
        if "broken" in version:
            raise OSError("corrupt weights")
        return FakeEngine(version, topic="Macro")

    clock = FakeClock()
    settings = Settings(registry_dir=registry.root, model_reload_check_s=5)
    return ReloadingEngine(settings, loader=loader, clock=clock), clock


def test_switches_between_batches_after_a_promotion(registry):
    loads = []
    engine, clock = _engine(registry, loads)
    assert {s.model_version for s in engine.classify(["a", "b"])} == {"v1"}
    registry.promote("v2")
    clock.now = 1
    assert {s.model_version for s in engine.classify(["c"])} == {"v1"}  # not checked yet
    clock.now = 6
    batch = engine.classify(["d", "e", "f"])
    assert {s.model_version for s in batch} == {"v2"} and engine.version == "v2"
    assert loads == ["v1", "v2"]


def test_a_version_that_fails_to_load_is_skipped_once_and_old_model_keeps_serving(registry):
    loads = []
    engine, clock = _engine(registry, loads)
    registry.promote("v3-broken")
    for t in (6, 12, 18):
        clock.now = t
        assert engine.classify(["x"])[0].model_version == "v1"
    assert loads == ["v1", "v3-broken"]
    registry.promote("v2")
    clock.now = 24
    assert engine.classify(["x"])[0].model_version == "v2"


def test_rollback_is_followed_too(registry):
    loads = []
    engine, clock = _engine(registry, loads)
    registry.promote("v2")
    assert engine.maybe_reload(force=True)
    registry.promote("v1")
    assert engine.maybe_reload(force=True) and engine.version == "v1"


def test_job_store_keeps_the_next_slot_across_restarts(tmp_path):
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from riskpulse.models.retraining.scheduler import _ensure_job, build_trigger

    url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"

    clock = FakeClock(int(time.time()))  # the interval's first slot counts from this clock, moved by hand

    def restart(settings):
        scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)}, timezone="UTC")
        scheduler.start(paused=True)
        _ensure_job(scheduler, build_trigger(settings, clock))
        slot = scheduler.get_job("retrain")
        scheduler.shutdown()
        return slot

    hourly = Settings(home=tmp_path, retrain_interval_s=3600)
    first = restart(hourly)
    assert first.next_run_time == from_epoch(clock() + 3600)
    clock.advance(60)
    assert restart(hourly).next_run_time == first.next_run_time  # a fresh job would be 60 s later
    nightly = restart(Settings(home=tmp_path, retrain_cron="30 2 * * *"))
    assert "cron" in str(nightly.trigger) and (nightly.next_run_time.hour, nightly.next_run_time.minute) == (2, 30)


def test_a_job_stored_under_the_old_module_path_keeps_its_slot(tmp_path):
    """Job stores written before the `riskpulse` import root name `models.scheduler:scheduled_run`."""
    import pickle
    import sqlite3

    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from riskpulse.models.retraining.scheduler import _ensure_job, build_trigger, migrate_job_store

    path = tmp_path / "jobs.sqlite"
    settings = Settings(home=tmp_path, retrain_interval_s=3600)
    clock = FakeClock(int(time.time()))

    def restart():
        scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{path}")}, timezone="UTC")
        scheduler.start(paused=True)
        _ensure_job(scheduler, build_trigger(settings, clock))
        job = scheduler.get_job("retrain")
        scheduler.shutdown()
        return job

    first = restart()
    with sqlite3.connect(path) as db:  # what an old release left behind
        state = pickle.loads(db.execute("SELECT job_state FROM apscheduler_jobs").fetchone()[0])
        state["func"] = "models.scheduler:scheduled_run"
        db.execute("UPDATE apscheduler_jobs SET job_state = ?", (pickle.dumps(state),))
    assert migrate_job_store(path) == 1 and migrate_job_store(path) == 0
    clock.advance(60)  # a re-created job's first slot would be 60 s later
    again = restart()
    assert again.next_run_time == first.next_run_time  # kept, not re-created
    assert again.func_ref == "riskpulse.models.retraining.scheduler:scheduled_run"


def test_bad_crontab_names_the_setting():
    from riskpulse.models.retraining.retrainer import RetrainError
    from riskpulse.models.retraining.scheduler import build_trigger

    with pytest.raises(RetrainError, match="RISKPULSE_RETRAIN_CRON"):
        build_trigger(Settings(retrain_cron="every day"))


def test_second_scheduler_stands_by_until_the_first_stops(tmp_path, monkeypatch, caplog):
    import riskpulse.models.retraining.scheduler as sched

    caplog.set_level(logging.INFO, logger="riskpulse.retraining")
    active = []
    monkeypatch.setattr(sched, "recover_at_start", lambda settings: active.append(threading.current_thread().name))
    settings = Settings(home=tmp_path, retrain_cron="0 3 * * *")
    stops = [threading.Event(), threading.Event()]
    threads = [threading.Thread(target=sched.serve, args=(settings, stop), name=f"s{i}") for i, stop in enumerate(stops)]
    for t in threads:
        t.start()
    deadline = threading.Event()

    def standing_by() -> bool:  # the other one tried the leader lock, was refused, and waits
        return any("standing by" in r.getMessage() for r in caplog.records)

    for _ in range(100):  # wait for what happens (one active, one refused), not for time to pass
        if active and standing_by():
            break
        deadline.wait(0.1)
    assert standing_by()
    assert len(active) == 1
    first = int(active[0][1])
    stops[first].set()
    threads[first].join(10)
    for _ in range(50):
        if len(active) == 2:
            break
        deadline.wait(0.1)
    assert active == [f"s{first}", f"s{1 - first}"]
    stops[1 - first].set()
    threads[1 - first].join(10)
