"""An alert explained from what clickhouse-server 18.16 holds (the same checks as on chDB in tests/local)."""

import pytest

from tests.explain_store_checks import check_explanation

pytestmark = pytest.mark.integration


def test_alert_explanation_on_clickhouse_server(server_store):
    check_explanation(server_store)
