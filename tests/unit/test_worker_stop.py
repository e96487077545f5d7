"""A worker's stop is bounded: past the grace period the process exits instead of waiting on the broker."""

from __future__ import annotations

import signal
import threading

import faust

from riskpulse.streams.worker.app import BoundedWorker


def _worker(grace_s: float, exits: list[int], exited: threading.Event) -> BoundedWorker:
    def fake_exit(code: int) -> None:
        exits.append(code)
        exited.set()

    app = faust.App("stop-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    return BoundedWorker(app, stop_grace_s=grace_s, exit=fake_exit, loglevel="INFO")


def test_a_stop_that_hangs_exits_after_the_grace_period(monkeypatch) -> None:
    exits: list[int] = []
    exited = threading.Event()
    worker = _worker(0.05, exits, exited)
    stopping = []
    monkeypatch.setattr(faust.Worker, "_schedule_shutdown", lambda self, sig: stopping.append(sig))  # never finishes
    worker._schedule_shutdown(signal.SIGTERM)
    worker._schedule_shutdown(signal.SIGTERM)  # a second signal starts no second timer
    assert exited.wait(5), "the grace period passed without an exit"
    assert exits == [128 + signal.SIGTERM.value] and stopping == [signal.SIGTERM, signal.SIGTERM]


def test_a_timely_stop_is_not_cut_short(monkeypatch) -> None:
    exits: list[int] = []
    exited = threading.Event()
    worker = _worker(60, exits, exited)
    monkeypatch.setattr(faust.Worker, "_schedule_shutdown", lambda self, sig: None)
    worker._schedule_shutdown(signal.SIGINT)
    assert worker._deadline is not None and worker._deadline.daemon  # it never holds the process open
    worker._deadline.cancel()
    assert not exits
