"""Stories through the real worker: `riskpulse worker --null-model` on the real broker and ClickHouse server
groups a replay of real texts with 40% planted copies, spread over many channels (so over all partitions)."""

from __future__ import annotations

import uuid

import pytest

from riskpulse.core.clock import from_epoch
from riskpulse.core.schema import Message
from riskpulse.streams.topics import ensure_topics
from tests.integration.pipeline_support import Worker, produce_mixed, real_texts, run_settings, wait_drained
from tests.reprints import bcubed, pairwise, replay

pytestmark = pytest.mark.integration


def test_the_worker_stores_copies_under_their_original_story(stack, server_store, tmp_path):
    settings = run_settings(stack, f"s{uuid.uuid4().hex[:8]}", tmp_path / "no-model")
    ensure_topics(settings)
    texts = list(dict.fromkeys(real_texts(600)))
    planted = replay([(f"o{i}", "news", text) for i, text in enumerate(texts)], copy_share=0.4, seed=3, mean_delay_s=60)
    messages = [Message(id=m.id, source="news", channel=f"wire-{n % 17}", ts=from_epoch(m.ts), text=m.text)
                for n, m in enumerate(planted)]
    produce_mixed(settings, messages, [])
    worker = Worker.start(settings, tmp_path / "worker.log", args=("--null-model",))
    try:
        wait_drained(settings, [worker])
    finally:
        assert worker.stop() == 0, worker.tail()
    stored = {r["id"]: r["story_id"] for r in server_store.query("SELECT id, story_id FROM messages FINAL")}
    assert set(stored) == {m.id for m in planted}
    truth, predicted = [m.story for m in planted], [stored[m.id] for m in planted]
    # partitions are consumed in any order, so a copy may come first and name the story: compare groupings
    scores = pairwise(truth, predicted) + bcubed(truth, predicted)
    assert min(scores) >= 0.9, f"pairwise P/R, B-cubed P/R: {scores}"
    assert sum(stored[m.id] != m.id for m in planted) >= 0.3 * len(planted)  # copies did join stories
