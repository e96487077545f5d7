"""Keeps the unit tier pure: a test that asks for a fixture of the local or integration tier fails."""

from __future__ import annotations

import pytest

# fixtures that train or load a model, open chDB, or start servers (see tests/local, tests/integration)
OTHER_TIERS = {
    "engine": "loads the quick model", "quick_registry": "trains or loads the quick model",
    "chdb_settings": "opens chDB", "chdb_store": "opens chDB", "filled_store": "opens chDB",
    "stack": "starts Kafka and ClickHouse", "server_store": "needs a ClickHouse server",
    "http_receiver": "starts an HTTP server",
}


@pytest.hookimpl(tryfirst=True)  # before any fixture is set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    used = sorted(set(getattr(item, "fixturenames", ())) & OTHER_TIERS.keys())
    if used:
        why = "; ".join(f"{name} ({OTHER_TIERS[name]})" for name in used)
        pytest.fail(f"{item.nodeid} is in tests/unit but uses {why}: move it to tests/local or tests/integration",
                    pytrace=False)
