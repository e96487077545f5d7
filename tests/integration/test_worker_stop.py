"""SIGTERM stops the worker and the alerts service within the grace period even with the broker
dead (seen before: both hung for over 30 s until kill -9). Own broker and server: this test kills
its broker, which the session's shared stack must not suffer."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from riskpulse.core.settings import Settings
from riskpulse.streams.ops.stack import Stack
from riskpulse.streams.store.migrate import migrate_settings
from tests.integration.pipeline_support import CLI, Worker, child_env, run_settings
from tests.fixtures.stack import free_ports

GRACE_S = 5.0


def test_sigterm_with_the_broker_dead_stops_within_the_grace_period(tmp_path: Path, quick_registry: Path) -> None:
    kafka, controller, native, http = free_ports(4)
    base = Settings(home=tmp_path / "home", store="server", kafka_port=kafka, kafka_controller_port=controller,
                    clickhouse_port=native, clickhouse_http_port=http)
    settings = run_settings(base, "stop", quick_registry, stop_grace_s=GRACE_S, alerts_web_port=free_ports(1)[0])
    stack = Stack(base)
    stack.up(timeout=120)
    try:
        migrate_settings(base)
        worker = Worker.start(settings, tmp_path / "worker.log")
        alerts_log = (tmp_path / "alerts.log").open("ab")
        alerts = subprocess.Popen([*CLI, "alerts", "run"], env=child_env(settings), stdout=alerts_log,
                                  stderr=subprocess.STDOUT)
        try:
            worker.wait_ready()
            deadline = time.monotonic() + 180
            while "[^Worker]: Ready" not in (tmp_path / "alerts.log").read_text(errors="replace"):
                assert alerts.poll() is None and time.monotonic() < deadline, (tmp_path / "alerts.log").read_text()[-3000:]
                time.sleep(0.5)
            os.kill(stack.services[0].pid(), signal.SIGKILL)  # the broker dies without a word
            time.sleep(3)
            started = time.monotonic()
            for proc in (worker.proc, alerts):
                proc.send_signal(signal.SIGTERM)
            for name, proc in (("worker", worker.proc), ("alerts", alerts)):
                proc.wait(timeout=GRACE_S + 15)  # a TimeoutExpired here is the old hang
                assert time.monotonic() - started <= GRACE_S + 15, name
        finally:
            for proc in (worker.proc, alerts):
                if proc.poll() is None:
                    proc.kill()
            alerts_log.close()
    finally:
        stack.down()
