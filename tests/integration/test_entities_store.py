"""entity_mentions on clickhouse-server 18.16: the same DDL and queries as on chDB (tests/local)."""

import pytest

from tests.entities_store_checks import check_entity_mentions

pytestmark = pytest.mark.integration


def test_entity_mentions_on_the_server(server_store):
    check_entity_mentions(server_store)
