"""The daily digest from clickhouse-server 18.16 (the same checks as on chDB in tests/local)."""

import pytest

from tests.digest_store_checks import check_digest

pytestmark = pytest.mark.integration


def test_daily_digest_on_clickhouse_server(server_store, tmp_path):
    check_digest(server_store, tmp_path / "home")
