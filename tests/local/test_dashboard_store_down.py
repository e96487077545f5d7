"""The dashboard with its ClickHouse server down (a closed port): a clear message naming the server, not a
stack trace (Streamlit AppTest). The outage mid-stream on the real server is in tests/faults."""

from __future__ import annotations

from pathlib import Path

from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from riskpulse.core.settings import get_settings
from riskpulse.dashboards import common
from tests.fixtures.stack import free_ports

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")


def test_store_unreachable_is_said_plainly(monkeypatch, tmp_path):
    (closed,) = free_ports(1)   # nothing listens there
    monkeypatch.setenv("RISKPULSE_HOME", str(tmp_path))
    monkeypatch.setenv("RISKPULSE_STORE", "server")
    monkeypatch.setenv("RISKPULSE_CLICKHOUSE_PORT", str(closed))
    previous = st_config.get_option("server.address")
    st_config.set_option("server.address", "127.0.0.1")
    get_settings.cache_clear()
    common.store.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=60).run()
    finally:
        st_config.set_option("server.address", previous)
        get_settings.cache_clear()
        common.store.clear()
    assert not at.exception, at.exception
    (error,) = at.error
    assert error.value.startswith("The message store is unreachable"), error.value
    assert f"127.0.0.1:{closed}" in error.value and "does not answer" in error.value
    assert not at.metric
