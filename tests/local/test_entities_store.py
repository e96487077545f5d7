"""entity_mentions on chDB: idempotent writes, movers, trend, messages and alerts of an entity."""

from tests.entities_store_checks import check_entity_mentions


def test_entity_mentions_on_chdb(chdb_store):
    check_entity_mentions(chdb_store)
