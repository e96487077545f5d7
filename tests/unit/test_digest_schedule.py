"""The digest is a second job of the retraining scheduler: stored, kept across restarts, removed when off."""

import pytest

from riskpulse.core.settings import Settings
from riskpulse.models.retraining.retrainer import RetrainError
from riskpulse.models.retraining.scheduler import DIGEST_JOB_ID, _ensure_digest_job, digest_trigger, scheduled_digest


def _restart(url, settings):
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)}, timezone="UTC")
    scheduler.start(paused=True)
    _ensure_digest_job(scheduler, digest_trigger(settings))
    job = scheduler.get_job(DIGEST_JOB_ID)
    scheduler.shutdown()
    return job


def test_digest_job_is_stored_kept_and_removed(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    daily = _restart(url, Settings(home=tmp_path))
    assert (daily.next_run_time.hour, daily.next_run_time.minute) == (6, 0) and daily.func is scheduled_digest
    assert _restart(url, Settings(home=tmp_path)).next_run_time == daily.next_run_time
    moved = _restart(url, Settings(home=tmp_path, digest_cron="15 7 * * 1-5"))
    assert (moved.next_run_time.hour, moved.next_run_time.minute) == (7, 15)
    assert _restart(url, Settings(home=tmp_path, digest_cron="")) is None


def test_a_bad_digest_cron_names_the_setting():
    with pytest.raises(RetrainError, match="RISKPULSE_DIGEST_CRON"):
        digest_trigger(Settings(digest_cron="every morning"))
