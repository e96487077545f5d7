"""The entity finder's child process finds what the in-thread extractor finds, and a dead child costs one retried batch."""

from __future__ import annotations

import os
import signal

import pytest

from riskpulse.core.settings import Settings
from riskpulse.streams.enrich.entities import load_extractor
from riskpulse.streams.enrich.entity_process import EntityProcess, EntityProcessError, entity_finder
from riskpulse.streams.worker.batching import process_batch
from tests.fakes import FakeEngine, FakeStore, good, record

TEXTS = ["JPMorgan and $AAPL fall; JPMorgan again", "Nothing named here", "招商银行 app is down",
         "$IOFB - Iowa First Bancshares Corp. announces dividend", ""]


@pytest.fixture
def finder():
    process = EntityProcess(Settings())
    yield process
    process.close()


def test_the_child_finds_what_the_extractor_finds(finder):
    assert finder.submit(TEXTS).result() == load_extractor(Settings()).extract_batch(TEXTS)
    assert finder.submit([]).result() == []


def test_a_batch_through_the_child_is_stored_with_its_mentions(finder):
    store = FakeStore()
    result = process_batch([record(good(i, t), i) for i, t in enumerate(TEXTS[:3])], FakeEngine(), store, finder)
    assert [m.entities for m in result.scored] == [["JPM", "AAPL"], [], ["3968.HK"]]
    assert len(store.tables["entity_mentions"]) == 4


def test_a_killed_child_fails_its_batch_and_the_next_submit_starts_another(finder):
    pending = finder.submit(TEXTS)
    first = finder._child
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    with pytest.raises(EntityProcessError):
        pending.result()
    assert finder.submit(TEXTS[:1]).result()[0][0].entity_id == "JPM"
    assert finder._child.pid != first.pid


def test_the_child_exits_when_the_worker_closes_it(finder):
    child = finder._child
    finder.close()
    assert child.poll() is not None


def test_settings_choose_where_entities_are_found():
    assert entity_finder(Settings(entities=False)) is None
    assert entity_finder(Settings(entities_process=False)) is load_extractor(Settings())
