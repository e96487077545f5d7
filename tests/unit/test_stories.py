"""Near-duplicate stories: what joins a story, what stays apart, and ids that survive redelivery and restarts."""

from __future__ import annotations

import json
import random

from riskpulse.core.schema import ScoredMessage
from riskpulse.streams.enrich.stories import StoryIndex, StoryParams, _band_rows, normalise
from riskpulse.streams.store.messages import MESSAGES_TABLE
from riskpulse.streams.worker.batching import process_batch
from tests.fakes import FakeEngine, FakeStore, record
from tests.reprints import bcubed, pairwise, relink, replay, retweet, reword, truncate

HEADLINE = "Piper Sandler downgrades DocuSign to sell, citing elevated risks amid CEO transition  https://t.co/1EmtywmYpr"
OTHERS = [
    "Buy Las Vegas Sands as travel to Singapore builds, Wells Fargo says  https://t.co/fLS2w57iCz",
    "Analysts react to Tesla's latest earnings, break down what's next for electric car maker  https://t.co/kwhoE6W06u",
    "Why don't I see my top up in my wallet? I topped up yesterday and nothing arrived",
    "The ECB kept rates on hold and signalled patience as euro-zone inflation cooled for a third month",
    "Oil prices slid more than 3% after OPEC+ said it would raise output from next quarter",
]


def test_normalising_drops_what_reprinting_changes():
    assert normalise("RT @zerohedge: Fed holds &amp; signals cuts https://t.co/x") == "fed holds signals cuts"
    assert normalise("Fed holds and signals cu… https://t.co/y") == "fed holds and signals"  # the cut word goes
    assert normalise("rt @a: RT @b: Same") == "same"


def test_retweets_relinked_truncated_and_reworded_copies_join_the_first_message():
    rng = random.Random(1)
    copies = [retweet(HEADLINE, rng), relink(HEADLINE, rng), truncate(HEADLINE, rng), reword(HEADLINE, rng)]
    index = StoryIndex()
    ids = index.assign([("first", 0.0, HEADLINE)] + [(f"copy-{i}", 1.0 + i, text) for i, text in enumerate(copies)])
    assert ids == ["first"] * 5, list(zip(ids, copies))


def test_chinese_copies_without_spaces_join_and_a_cut_copy_keeps_its_text():
    complaint = "招商银行信用卡中心多次重复扣款，客服电话一直打不通，要求立即退款并给出书面解释。"
    other = "工商银行手机银行今天无法登录，转账一直失败，请尽快修复系统问题。"
    index = StoryIndex()
    ids = index.assign([("a", 0.0, complaint), ("b", 1.0, "转发：" + complaint + " https://t.co/x"),
                        ("c", 2.0, complaint[:30] + "…"), ("d", 3.0, other)])
    assert ids == ["a", "a", "a", "d"]


def test_distinct_messages_and_template_headlines_with_other_figures_stay_apart():
    texts = OTHERS + ["Twitter EPS misses by $0.02, beats on revenue", "Luminex EPS misses by $0.08, beats on revenue"]
    index = StoryIndex()
    assert index.assign((f"m-{i}", float(i), text) for i, text in enumerate(texts)) == [f"m-{i}" for i in range(len(texts))]


def test_template_headlines_about_different_companies_stay_apart_but_a_prefixed_copy_joins():
    texts = ["VerticalScope to Report Second Quarter 2022 Financial Results on August 9, 2022  https://t.co/FFKwhn0fLN",
             "KORU Medical Systems to Report Second Quarter 2022 Financial Results on August 9, 2022  https://t.co/UhTckx53rx",
             "Klabin reports Q4 results", "Nordic Semiconductor ASA reports Q4 results",
             "BREAKING: VerticalScope to Report Second Quarter 2022 Financial Results on August 9, 2022 - Reuters"]
    index = StoryIndex()
    assert index.assign((f"m-{i}", float(i), text) for i, text in enumerate(texts)) == ["m-0", "m-1", "m-2", "m-3", "m-0"]


def test_a_redelivered_message_gets_its_story_back_without_growing_the_index():
    index = StoryIndex()
    first = index.assign([("a", 0.0, HEADLINE), ("b", 1.0, "RT @x: " + HEADLINE), ("c", 2.0, OTHERS[0])])
    assert index.assign([("b", 1.0, "RT @x: " + HEADLINE), ("c", 2.0, OTHERS[0])]) == first[1:]
    assert first == ["a", "a", "c"] and len(index) == 3


def test_memory_is_bounded_by_horizon_and_entries():
    index = StoryIndex(StoryParams(horizon_s=3600, max_entries=3))
    index.assign([("old", 0.0, HEADLINE)])
    assert index.assign([("late-copy", 3601.0, HEADLINE)]) == ["late-copy"]  # the original fell out of the horizon
    index.assign((f"o-{i}", 3602.0 + i, text) for i, text in enumerate(OTHERS))
    assert len(index) == 3
    assert index.assign([("copy", 4000.0, OTHERS[0])]) == ["copy"]  # evicted by count
    assert index.assign([("copy-2", 4001.0, OTHERS[-1])]) == ["o-4"]  # still held


def test_a_message_dated_in_the_far_future_does_not_evict_every_story():
    import time

    now = time.time()
    index = StoryIndex(StoryParams(horizon_s=2 * 3600))
    index.assign([("today", now, HEADLINE), ("broken-clock", now + 10 * 365 * 86400, OTHERS[0])])
    assert index.assign([("copy", now + 60, "RT @wsj: " + HEADLINE)]) == ["today"]


def test_an_index_reloaded_from_stored_rows_continues_as_if_it_had_never_stopped():
    originals = [(f"o{i}", "news", text) for i, text in enumerate([HEADLINE, *OTHERS])]
    stream = replay(originals, copy_share=0.4, seed=3, mean_delay_s=60)
    messages = [(m.id, m.ts, m.text) for m in stream]
    continuous = StoryIndex().assign(messages)
    half = len(messages) // 2
    before = StoryIndex().assign(messages[:half])
    restarted = StoryIndex()
    restarted.load((mid, story, ts, text) for (mid, ts, text), story in zip(messages[:half], before))
    assert before + restarted.assign(messages[half:]) == continuous
    assert restarted.assign(messages[:half]) == before  # a batch redelivered after the restart


def test_a_planted_replay_is_grouped_with_high_precision_and_recall():
    originals = [(f"o{i}", "news", text) for i, text in enumerate([HEADLINE, *OTHERS])]
    stream = replay(originals, copy_share=0.4, seed=11)
    predicted = StoryIndex().assign((m.id, m.ts, m.text) for m in stream)
    truth = [m.story for m in stream]
    assert min(pairwise(truth, predicted) + bcubed(truth, predicted)) >= 0.9, list(zip(truth, predicted))


def test_cluster_scores_know_perfect_and_merged_groupings():
    truth = ["a", "a", "b", "b"]
    assert pairwise(truth, ["x", "x", "y", "y"]) == (1.0, 1.0)
    assert pairwise(truth, ["x", "x", "x", "x"]) == (2 / 6, 1.0)
    assert bcubed(truth, ["x", "y", "z", "w"]) == (1.0, 0.5)


def _raw(i: int, text: str) -> bytes:
    return json.dumps({"id": f"m-{i}", "source": "news", "channel": f"wire-{i}", "ts": f"2026-01-02T00:00:{i:02d}Z",
                       "text": text}).encode()


def test_the_worker_stores_and_emits_each_message_with_its_story_and_a_redelivery_keeps_them():
    store, index = FakeStore(), StoryIndex()
    batch = [record(_raw(0, HEADLINE), 0), record(_raw(1, OTHERS[0]), 1), record(_raw(2, "RT @wsj: " + HEADLINE), 2)]
    result = process_batch(batch, FakeEngine(), store, stories=index)
    assert [m.story_id for m in result.scored] == ["m-0", "m-1", "m-0"]
    assert [r["story_id"] for r in store.tables[MESSAGES_TABLE]] == ["m-0", "m-1", "m-0"]
    assert ScoredMessage.model_validate_json(result.scored[2].model_dump_json()).story_id == "m-0"
    again = process_batch(batch[1:], FakeEngine(), store, stories=index)
    assert [m.story_id for m in again.scored] == ["m-1", "m-0"] and "stories" in again.seconds


def test_without_a_grouper_every_message_is_its_own_story():
    result = process_batch([record(_raw(0, HEADLINE), 0), record(_raw(1, HEADLINE), 1)], FakeEngine(), FakeStore())
    assert [m.story_id for m in result.scored] == ["m-0", "m-1"]


class OtherWorkersRows:
    """What ``messages.stored_since`` returns from the table other workers write to (processed_at, row)."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, dict]] = []
        self.asked = 0

    def store(self, at: float, message_id: str, story_id: str, ts: float, text: str) -> None:
        self.rows.append((at, {"id": message_id, "story_id": story_id, "epoch": ts, "text": text}))

    def query(self, sql, params):
        self.asked += 1
        since, oldest = params["since"].timestamp(), params["oldest"].timestamp()
        return [row for at, row in self.rows if at >= since and row["epoch"] >= oldest]


def test_a_shared_index_learns_what_other_workers_stored_every_sync_interval():
    from riskpulse.streams.enrich.stories import SharedStoryIndex
    from tests.fakes import FakeClock

    clock, table = FakeClock(1_000.0), OtherWorkersRows()
    worker_b = SharedStoryIndex(StoryIndex(), table, sync_s=30, clock=clock)
    table.store(1_001.0, "a-1", "a-1", 500.0, HEADLINE)  # worker A stores an original, then a complaint
    table.store(1_002.0, "a-2", "a-2", 501.0, OTHERS[2])
    clock.advance(10)
    assert worker_b.assign([("b-1", 510.0, "RT @wsj: " + OTHERS[2])]) == ["b-1"] and table.asked == 0  # too soon
    clock.advance(25)
    assert worker_b.assign([("b-2", 540.0, "RT @ft: " + HEADLINE)]) == ["a-1"] and table.asked == 1
    assert worker_b.assign([("b-3", 541.0, OTHERS[2] + " https://t.co/x")]) == ["b-1"]  # split within the interval
    assert worker_b.assign([("a-1", 500.0, HEADLINE)]) == ["a-1"] and len(worker_b) == 5


def test_bands_hold_every_key_sharing_a_band_until_it_is_removed():
    from riskpulse.streams.enrich.stories import _Bands

    bands = _Bands(3)
    bands.insert(0, [10, 20, 30])
    bands.insert(1, [10, 21, 31])  # shares band 0 with key 0
    bands.insert(2, [11, 21, 32])  # shares band 1 with key 1
    assert bands.tables == [{10: [0, 1], 11: 2}, {20: 0, 21: [1, 2]}, {30: 0, 31: 1, 32: 2}]
    bands.remove(1, [10, 21, 31])
    assert bands.tables == [{10: 0, 11: 2}, {20: 0, 21: 2}, {30: 0, 32: 2}]  # a band of one holds the key itself
    bands.remove(0, [10, 20, 30])
    bands.remove(2, [11, 21, 32])
    assert all(not table for table in bands.tables)  # nothing left behind


def test_candidates_are_the_entries_and_earlier_new_messages_sharing_a_band_and_agreeing_enough():
    index = StoryIndex()
    first, copy, other = HEADLINE, "RT @x: " + HEADLINE + " (updated)", OTHERS[3]
    index.assign([("first", 0.0, first)])
    signatures = index.sketcher.sketch([copy, other, copy + " again"]).signatures
    found = index._candidates(_band_rows(signatures, index.params.bands), signatures)
    assert [key for key, _ in found[0]] == [0]  # the stored headline (key 0)
    assert found[1] == []  # another story shares no band with it, or agrees too little
    assert [key for key, _ in found[2]] == [0, 1]  # the headline, then the first new message (key 1 once added)
    assert all(index.params.num_perm * 0.2 < agree <= index.params.num_perm for key, agree in found[0] + found[2])


def _sample_replay(copy_share: float, seed: int) -> list[tuple[str, float, str]]:
    """The bundled sample's texts with planted copies, most within a hundred messages of their original: thousands
    of messages, many sharing LSH bands by chance."""
    from importlib.resources import files

    lines = files("riskpulse.sample").joinpath("messages.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    originals = [(f"s{i}", row["source"], row["text"]) for i, row in enumerate(rows)]
    return [(m.id, m.ts, m.text) for m in replay(originals, copy_share=copy_share, seed=seed, rate=50.0, mean_delay_s=3)]


def test_a_batch_gets_the_ids_its_messages_get_one_at_a_time_through_evictions_and_story_bounds():
    """A batch is matched in parts whose candidates are all found before any of the part is added, so what a part
    evicts (a small index) or unbands (a small story bound) meanwhile must stop being a candidate, as one by one."""
    messages = _sample_replay(copy_share=0.5, seed=5)[:2500]
    messages = messages[:300] + messages[200:260] + messages[300:]  # redelivered within a batch, partly a part later
    params = StoryParams(max_entries=300, story_candidates=2, horizon_s=20.0)
    one_by_one = StoryIndex(params)
    expected = [story for message in messages for story in one_by_one.assign([message])]
    batched = StoryIndex(params)
    got = [story for start in range(0, len(messages), 1000) for story in batched.assign(messages[start:start + 1000])]
    assert got == expected
    assert len(set(expected)) < len(messages) - 200  # copies did join stories: the comparison was not vacuous
    assert len(batched) == len(one_by_one) <= 300
