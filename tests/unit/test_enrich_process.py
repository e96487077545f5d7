"""The enrichment child process finds what the worker's own thread would, and a dead child costs one retried batch."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

from riskpulse.core.settings import Settings
from riskpulse.streams.enrich.enrich_process import EnrichProcess, EnrichProcessError
from riskpulse.streams.enrich.entities import load_extractor
from riskpulse.streams.enrich.stories import Sketcher, StoryIndex
from riskpulse.streams.worker.batching import process_batch
from tests.fakes import FakeEngine, FakeStore, record

TEXTS = ["JPMorgan and $AAPL fall; JPMorgan again", "Nothing named here", "招商银行 app is down",
         "$IOFB - Iowa First Bancshares Corp. announces dividend", ""]
HEADLINE = "Piper Sandler downgrades DocuSign to sell, citing elevated risks amid CEO transition  https://t.co/1EmtywmYpr"


@pytest.fixture
def enrich():
    process = EnrichProcess(Settings())
    yield process
    process.close()


def test_the_child_finds_and_sketches_what_the_worker_thread_would(enrich):
    sketches = enrich.sketcher.submit(TEXTS)  # two requests in flight, answered in either order
    assert enrich.entities.submit(TEXTS).result() == load_extractor(Settings()).extract_batch(TEXTS)
    mine = Sketcher().sketch(TEXTS)
    theirs = sketches.result()
    assert (theirs.sizes, theirs.anchors, theirs.names) == (mine.sizes, mine.anchors, mine.names)
    assert np.array_equal(theirs.signatures, mine.signatures) and len(theirs) == len(TEXTS)
    assert enrich.entities.submit([]).result() == []


def test_a_batch_through_the_child_is_stored_with_its_mentions_and_stories(enrich):
    store = FakeStore()
    index = StoryIndex()
    index.sketcher = enrich.sketcher
    texts = [HEADLINE, "RT @desk: " + HEADLINE, *TEXTS[:3]]
    raw = [json.dumps({"id": f"m-{i}", "source": "news", "ts": "2026-01-02T00:00:00Z", "text": t}).encode() for i, t in enumerate(texts)]
    result = process_batch([record(r, i) for i, r in enumerate(raw)], FakeEngine(), store, enrich.entities, index)
    assert [m.entities for m in result.scored][2:] == [["JPM", "AAPL"], [], ["3968.HK"]]
    assert result.scored[1].story_id == result.scored[0].id != result.scored[2].story_id
    assert len(store.tables["entity_mentions"]) == 2 * 2 + 4  # Piper Sandler and DocuSign in each copy


def test_a_killed_child_fails_its_batch_and_the_next_request_starts_another(enrich):
    pending = enrich.entities.submit(TEXTS)
    first = enrich._child
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    with pytest.raises(EnrichProcessError):
        pending.result()
    assert enrich.entities.submit(TEXTS[:1]).result()[0][0].entity_id == "JPM"
    assert enrich._child.pid != first.pid


def test_a_request_the_child_cannot_do_fails_that_batch_only(enrich):
    with pytest.raises(EnrichProcessError, match="entities"):
        enrich.entities.submit([None]).result()  # not a text: the extractor raises in the child
    assert enrich.entities.submit(TEXTS[:1]).result()[0][0].entity_id == "JPM"


def test_the_child_exits_when_the_worker_closes_it(enrich):
    child = enrich._child
    enrich.close()
    assert child.poll() is not None


def test_big_answers_left_uncollected_neither_block_the_child_nor_pile_up(enrich):
    texts = ["$AAPL falls as Apple Inc. warns; JPMorgan Chase and Goldman Sachs cut targets "] * 1000
    for _ in range(10):  # each answer is far larger than a pipe's buffer; a failed batch never collects its own
        enrich.entities.submit(texts)
        enrich.sketcher.submit(texts)
    assert enrich.entities.submit(TEXTS[:1]).result()[0][0].entity_id == "JPM"
    assert len(enrich._answers) <= 2 * 8 + 2


def test_a_request_sent_while_the_child_works_does_not_wait_for_the_work_before_it(enrich):
    """A batch's texts fill the pipe many times over; the child takes each request off it as it comes, so the
    worker sends the next one and goes on (it classifies meanwhile) instead of waiting for the child to finish."""
    import time

    texts = [f"Apple Inc. and JPMorgan Chase cut targets on Iowa First Bancshares Corp. ({i})" for i in range(6_000)]
    slow = enrich.entities.submit(texts)  # ~0.3 s of work in the child on a fast CPU, 1 s on a slow one
    enrich.sketcher.submit(texts)  # ~0.6 MB: returned only once the child had read it all
    time.sleep(0.05)
    assert slow._request not in enrich._answers  # so the child was still on the first request
    assert len(slow.result()) == len(texts)
