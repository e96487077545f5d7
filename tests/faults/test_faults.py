"""The fault suite: each test owns a broker and a clickhouse-server (it kills or stops them), real worker and
alerts processes and a real HTTP receiver, injects one fault and checks what a risk team relies on: nothing
lost, nothing counted twice, every planted alert heard once. Scenarios are shared with bench/faults.py
(tests/faults/scenarios.py); streams here are shorter (4,000 messages) than the report's.

Webhook receiver outages (an hour, injected clock), slow / 500 / 429 receivers and two alert services by
mistake are tested in tests/integration/test_alerts_delivery.py and test_alerts.py; bench/faults.py reports them.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from riskpulse.core.settings import Settings
from riskpulse.streams.worker.app import COMMIT_INTERVAL_S
from tests.faults import scenarios
from tests.faults.scenarios import STOP_GRACE_S, FaultResult

pytestmark = pytest.mark.faults

# The outage. 20 s passed where 60 s lost the alert planted during the outage (3 bench runs of 3, before
# 2d73bc1): the alerts service's idle tick, queued behind a store write retried for the whole outage, moved event
# time on by the outage's length and closed the burst's windows before their records were read.
CLICKHOUSE_DOWN_S = 60


def assert_exact(result: FaultResult, scored_exact: bool = True) -> None:
    print(result.as_json())
    assert result.produced > 0
    assert (result.lost, result.store_duplicated) == (0, 0), result.as_json()
    if scored_exact:
        assert result.scored_duplicated == 0, result.as_json()
    assert result.stored == result.produced, result.as_json()
    assert result.notes.get("scored_missing", 0) == 0, "stored but never emitted on the scored topic"


def assert_alerts(result: FaultResult) -> None:
    assert result.alerts_expected >= 1
    assert result.alerts_delivered == result.alerts_expected, result.notes
    assert result.alerts_duplicated == 0, result.notes["notifications"]
    assert result.notes["unverified_requests"] == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_broker_restart_mid_stream(tmp_path: Path, sig: signal.Signals) -> None:
    """Worker, alerts service and producer reconnect by themselves; the stream and a later burst survive.

    After kill -9 the scored topic may carry some records twice (89 and 120 of 6,000 ids in two bench runs,
    250 of 4,000 in one CI run, none in others): records the worker emitted but could not commit are redelivered after the rejoin (its
    group session expired during the outage, so faust seeks back to the committed offsets). The store counts
    them once (FINAL) and the alert detector an id once per window (c88a886); the report shows them, and this
    test only bounds them."""
    rate = 400
    result = scenarios.broker_restart(tmp_path, sig, n=4000, rate=rate, down_s=10, alerts=sig == signal.SIGKILL)
    assert_exact(result, scored_exact=sig == signal.SIGTERM)
    # What can come back is what the worker had emitted but not yet committed when the broker died: up to
    # one commit interval of traffic plus the batches in its pipeline (250 of 4,000 seen once, 0 in others).
    defaults = Settings()
    window = int(rate * COMMIT_INTERVAL_S) + defaults.batch_pipeline_depth * defaults.batch_max_size
    assert result.scored_duplicated <= window, f"more redelivered than one commit interval and the pipeline's batches ({window})"
    assert result.notes["refused_by_producer"] == 0
    assert result.notes["worker_restarts"] == 0, "the worker process must ride it out, not restart"
    if sig == signal.SIGKILL:
        assert_alerts(result)
        assert [labels for labels, _ in result.notes["alerts_stored"]] == [{"topic": scenarios.BURST_TOPIC}]


def test_clickhouse_down_mid_stream(tmp_path: Path) -> None:
    """The worker holds its partitions and retries; a burst during the outage is still delivered once."""
    result = scenarios.clickhouse_down(tmp_path, down_s=CLICKHOUSE_DOWN_S, n=4000, rate=200)
    assert_exact(result)
    assert result.notes["worker_restarts"] == 0
    assert_alerts(result)
    (said,) = result.notes["dashboard_during_outage"]
    assert said.startswith("The message store is unreachable") and "does not answer" in said
    assert result.notes["dashboard_after"] == []


def test_worker_sigterm_in_a_rolling_deploy(tmp_path: Path) -> None:
    result = scenarios.rolling_deploy(tmp_path, n=4000, rate=300)
    assert_exact(result)
    assert result.notes["stop_s"] <= STOP_GRACE_S + 3, result.notes
    assert result.notes["stop_exit_code"] == 0, "a clean stop, not the grace period's forced exit"
    assert result.notes["stored_by_stopped"] and result.notes["stored_by_survivor"]


def test_read_only_and_full_disk(tmp_path: Path, quick_registry: Path) -> None:
    result = scenarios.disk_faults(tmp_path, quick_registry, n=400)
    assert_exact(result)
    notes = result.notes
    datadir = tmp_path / "home" / "disk-workers-data"
    assert notes["datadir_exit_code"] == 1 and any(f"faust data dir {datadir} is not writable" in line
                                                   for line in notes["datadir_error"]), notes
    assert notes["promote_exit_code"] != 0 and f"{tmp_path / 'registry' / 'current'} is not writable" in notes["promote_error"][0]
    if not notes["full_disk_error"].startswith("not run"):
        assert f"under {tmp_path / 'registry' / 'versions'}: No space left on device" in notes["full_disk_error"]
    assert notes["stored_by_version"] == {notes["served"]: result.produced}, "the worker kept its model"
    assert notes["current_after"] == notes["served"] and notes["worker_restarts"] == 0


def test_hostile_records_mixed_into_a_clean_stream(tmp_path: Path) -> None:
    result = scenarios.hostile_stream(tmp_path, n_good=3000, n_hostile=10_000)
    assert (result.lost, result.store_duplicated, result.scored_duplicated) == (0, 0, 0), result.as_json()
    assert not result.notes["hostile_not_as_schema_says"], result.notes
    assert result.notes["refused_errors"] == ["MessageSizeTooLargeError"]
    assert result.notes["worker_restarts"] == 0


def test_backlog_replayed_after_an_outage(tmp_path: Path) -> None:
    """Open and resolve happen within one catch-up second: the receiver still hears the alert firing, with its
    window's times, though the rule does not send resolutions."""
    result = scenarios.backlog_replay(tmp_path, n=4000)
    assert_exact(result)
    assert_alerts(result)
