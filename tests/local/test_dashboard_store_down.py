"""The dashboard with its ClickHouse server down (a closed port): a clear message naming the server, not a
stack trace (Streamlit AppTest). The outage mid-stream on the real server is in tests/faults."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.fixtures.dashboard import dashboard_process
from tests.fixtures.stack import free_ports

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")


def test_store_unreachable_is_said_plainly(monkeypatch, tmp_path):
    (closed,) = free_ports(1)   # nothing listens there
    with dashboard_process(monkeypatch, home=str(tmp_path), store="server", clickhouse_port=str(closed)):
        at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    (error,) = at.error
    assert error.value.startswith("The message store is unreachable"), error.value
    assert f"127.0.0.1:{closed}" in error.value and "does not answer" in error.value
    assert not at.metric
