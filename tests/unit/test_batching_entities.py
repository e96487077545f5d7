"""The worker's batch stores each message's entity mentions with it, before the batch may be acked."""

from __future__ import annotations

import pytest

from riskpulse.streams.enrich.entities import Catalogue, EntityExtractor
from riskpulse.streams.store.entities import ENTITY_MENTIONS_TABLE
from riskpulse.streams.store.messages import MESSAGES_TABLE
from riskpulse.streams.worker.batching import process_batch
from tests.fakes import FakeEngine, FakeStore, good, record


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor(Catalogue.load())


def test_mentions_are_stored_and_the_scored_record_carries_entity_ids(extractor):
    store = FakeStore()
    texts = ["JPMorgan and $AAPL fall; JPMorgan again", "Nothing named here", "招商银行 app is down"]
    result = process_batch([record(good(i, t), i) for i, t in enumerate(texts)], FakeEngine(), store, extractor)
    assert [m.entities for m in result.scored] == [["JPM", "AAPL"], [], ["3968.HK"]]
    rows = store.tables[ENTITY_MENTIONS_TABLE]
    assert [(r["message_id"], r["entity_id"], texts[int(r["message_id"][2:])][r["span_start"]:r["span_end"]]) for r in rows] == [
        ("m-0", "JPM", "JPMorgan"), ("m-0", "AAPL", "$AAPL"), ("m-0", "JPM", "JPMorgan"), ("m-2", "3968.HK", "招商银行"),
    ]
    by_id = {m.id: m for m in result.scored}
    assert all(r["sentiment"] == by_id[r["message_id"]].sentiment and r["ts"] == by_id[r["message_id"]].ts for r in rows)
    assert len(store.tables[MESSAGES_TABLE]) == 3


def test_a_failed_mention_write_fails_the_batch_so_nothing_is_acked(extractor):
    class FailsOnMentions(FakeStore):
        def write_batch(self, table, rows):
            if table == ENTITY_MENTIONS_TABLE:
                raise ConnectionError("store is down")
            super().write_batch(table, rows)

    with pytest.raises(ConnectionError):
        process_batch([record(good(0, "Goldman Sachs cuts"), 0)], FakeEngine(), FailsOnMentions(), extractor)


def test_without_a_finder_no_mentions_are_written():
    store = FakeStore()
    result = process_batch([record(good(0, "Goldman Sachs cuts"), 0)], FakeEngine(), store)
    assert result.scored[0].entities == [] and ENTITY_MENTIONS_TABLE not in store.tables
