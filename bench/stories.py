"""Near-duplicate stories on replays of real texts with 40% planted copies: grouping quality, cost, false alerts.

    python bench/stories.py [--originals 6000] [--share 0.4] [--seeds 7,8,9] [--rounds 3] [--rates 10,2]
        [--delays 900,60] [--json]

1. Grouping: real texts (news tweets, BANKING77 test queries, CFPB narratives cut at 8,000 characters; exact
   repeats after normalising dropped) replayed with planted copies (tests/reprints.py: retweets, re-linked,
   truncated, lightly reworded, pasted complaints) making up ``--share`` of the messages. Truth: each original
   is its own story, each copy its original's. Pairwise and B-cubed precision/recall, recall per kind of copy,
   and how many originals were merged into another original's story (false merges, or natural near-duplicates
   that the truth counts apart).
2. Cost: ``StoryIndex.assign`` alone, and the worker's ``process_batch`` (null classifier, PII masking on,
   rows discarded) without and with stories, interleaved over ``--rounds`` (medians), in messages per
   CPU-second of this process (a shared machine's load does not decide the ratio); memory per entry of a
   full index (tracemalloc) and the CPU time to rebuild an index from stored rows (``StoryIndex.load``).
3. False alerts: the alert corpus (tests/integration/alerts_corpus.py, ~32k labelled news tweets, no spike
   planted) replayed once as it is and once with 40% planted copies that keep their original's labels,
   spread out after their original (``--delays``: 900 s on average) or in a syndication burst (60 s),
   through the default topic rule and a more sensitive one (60 s, z >= 3), counting messages and counting
   stories; every alert is a false one.
``--json`` prints one JSON object per result.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import random
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the replay builders live with the tests

from riskpulse.core.clock import from_epoch  # noqa: E402
from riskpulse.streams.alerts.detector import Detector, Observation  # noqa: E402
from riskpulse.streams.alerts.rules import DEFAULT_RULES, RuleSet, load_rules  # noqa: E402
from riskpulse.streams.enrich.stories import StoryIndex, StoryParams, normalise  # noqa: E402
from riskpulse.streams.worker.batching import NullClassifier, RawRecord, process_batch  # noqa: E402
from tests.integration.alerts_corpus import load_corpus  # noqa: E402
from tests.reprints import Planted, bcubed, pairwise, replay  # noqa: E402


def _texts(path: Path, limit: int | None = None) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [row["text"][:limit] for row in csv.DictReader(fh) if row["text"].strip()]


def real_originals(data: Path, count: int, seed: int) -> list[tuple[str, str, str]]:
    """(id, source, text) of ``count`` real texts, distinct after normalising, in a seeded random order."""
    news = [t for name in ("twitter-financial-news-sentiment", "twitter-financial-news-topic")
            for split in ("train", "validation") for t in _texts(data / name / f"{split}.csv")]
    customer = _texts(data / "banking77" / "test.csv") + _texts(data / "cfpb-complaints-sample" / "train.csv", 8000)
    seen: set[str] = set()
    distinct = []
    for source, texts in (("news", news), ("customer", customer)):
        for text in texts:
            key = normalise(text)
            if key and key not in seen:
                seen.add(key)
                distinct.append((source, text))
    random.Random(seed).shuffle(distinct)
    return [(f"o{i}", source, text) for i, (source, text) in enumerate(distinct[:count])]


def assign_in_batches(index: StoryIndex, stream: list[Planted], batch: int = 256) -> list[str]:
    """Story ids for a stream fed as the worker feeds it, a batch at a time."""
    return [s for i in range(0, len(stream), batch) for s in index.assign((m.id, m.ts, m.text) for m in stream[i : i + batch])]


def grouping(stream: list[Planted]) -> dict:
    started = time.process_time()
    predicted = assign_in_batches(StoryIndex(), stream)
    seconds = time.process_time() - started
    truth = [m.story for m in stream]
    story_of = dict(zip((m.id for m in stream), predicted))
    kinds: dict[str, list[int]] = {}
    for m, p in zip(stream, predicted):
        if m.kind != "original":
            for kind in m.kind.split("+"):
                hit = kinds.setdefault(kind, [0, 0])
                hit[0] += p == story_of[m.story]
                hit[1] += 1
    pp, pr = pairwise(truth, predicted)
    bp, br = bcubed(truth, predicted)
    return {
        "messages": len(stream), "copies": sum(m.kind != "original" for m in stream),
        "true_stories": len(set(truth)), "found_stories": len(set(predicted)),
        "pairwise_precision": round(pp, 4), "pairwise_recall": round(pr, 4),
        "bcubed_precision": round(bp, 4), "bcubed_recall": round(br, 4),
        "originals_merged": sum(m.kind == "original" and p != m.id for m, p in zip(stream, predicted)),
        "recall_by_kind": {k: round(hit / n, 3) for k, (hit, n) in sorted(kinds.items())},
        "assign_msgs_per_cpu_s": round(len(stream) / seconds),
    }


class Discard:
    """A store that takes rows and keeps none: the worker's CPU work without ClickHouse."""

    def write_batch(self, table, rows) -> None:
        pass


def worker_cost(stream: list[Planted], rounds: int, batch: int = 256) -> dict:
    """process_batch msgs per CPU-second without and with a story index (interleaved rounds, medians): CPU time,
    not wall time, so that the other users of a shared machine do not decide the ratio."""
    records = [RawRecord(json.dumps({"id": m.id, "source": m.source, "channel": "replay", "ts": from_epoch(m.ts).isoformat(),
                                     "text": m.text}).encode(), "riskpulse.raw", 0, n) for n, m in enumerate(stream)]
    runs: dict[str, list[float]] = {"without stories": [], "with stories": []}
    for _ in range(rounds):
        for name in runs:
            index = StoryIndex() if name == "with stories" else None
            started = time.process_time()
            for i in range(0, len(records), batch):
                process_batch(records[i : i + batch], NullClassifier(), Discard(), None, index)
            runs[name].append(len(records) / (time.process_time() - started))
    without, with_ = (statistics.median(runs[n]) for n in runs)
    return {"without_msgs_per_s": round(without), "with_msgs_per_s": round(with_), "ratio": round(with_ / without, 3),
            "story_us_per_msg": round(1e6 / with_ - 1e6 / without), "runs": {n: [round(r) for r in v] for n, v in runs.items()}}


def memory_and_rebuild(stream: list[Planted]) -> dict:
    """Bytes per entry of a full index (sized to the stream), and the CPU time to refill one from stored rows."""
    tracemalloc.start()
    index = StoryIndex(StoryParams(max_entries=len(stream)))
    ids = assign_in_batches(index, stream)
    per_entry = tracemalloc.get_traced_memory()[0] / len(index)
    tracemalloc.stop()
    rows = [(m.id, s, m.ts, m.text) for m, s in zip(stream, ids)]
    started = time.process_time()
    StoryIndex().load(rows)
    seconds = time.process_time() - started
    return {"bytes_per_entry": round(per_entry), "rebuild_rows_per_s": round(len(rows) / seconds),
            "rebuild_s_for_100k": round(100_000 / (len(rows) / seconds), 1)}


@dataclass(frozen=True)
class Labels:
    topic: str
    negative: bool


def false_alerts(corpus: list, share: float, rate: float, delay: float, seed: int) -> dict:
    """Alerts of a default and a sensitive topic rule on the unspiked alert corpus: as it is, and with planted
    copies following their original by ``delay`` seconds on average (syndication spread out, or in a burst)."""
    labels = {item.id: Labels(item.topic, item.sentiment == "negative") for item in corpus}
    originals = [(item.id, "news", item.text) for item in corpus]
    random.Random(seed).shuffle(originals)
    clean = replay(originals, 0.0, seed=seed, rate=rate)
    planted = replay(originals, share, seed=seed, rate=rate, mean_delay_s=delay)
    stories = assign_in_batches(StoryIndex(), planted)

    def opened(rules: RuleSet, stream: list[Planted], story_ids: list[str] | None) -> int:
        detector = Detector(rules)
        count = 0
        for n, m in enumerate(stream):
            label = labels[m.story]
            obs = Observation(id=m.id, ts=m.ts, topic=label.topic, source="news", channel="replay", negative=label.negative,
                              text=m.text, story_id=story_ids[n] if story_ids else "")
            count += sum(e.kind == "opened" for e in detector.observe(obs))
        return count

    default = load_rules(DEFAULT_RULES).by_name("topic-negative-spike")
    rules = {"default topic rule (300 s, z>=4, min 30)": default,
             "topic, 60 s, z>=3, min 30 (sensitive)": default.model_copy(update={"window_s": 60.0, "threshold_z": 3.0})}
    out = {}
    for name, rule in rules.items():
        per_story, per_message = RuleSet(rules=(rule,)), RuleSet(rules=(rule.model_copy(update={"distinct_stories": ()}),))
        runs = {
            "clean replay, counting stories": (opened(per_story, clean, None), len(clean)),
            "40% copies, counting messages": (opened(per_message, planted, None), len(planted)),
            "40% copies, counting stories": (opened(per_story, planted, stories), len(planted)),
        }
        out[name] = {k: {"opened": a, "messages": n, "per_10k": round(a / n * 10_000, 3)} for k, (a, n) in runs.items()}
    return {"rate": rate, "mean_delay_s": delay, "seed": seed, "alerts": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--originals", type=int, default=6000, help="real texts in the grouping replay")
    parser.add_argument("--share", type=float, default=0.4, help="share of the replay that is planted copies")
    parser.add_argument("--seeds", default="7,8,9", help="grouping replays (comma separated seeds)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of the worker cost (medians)")
    parser.add_argument("--rates", default="10,2", help="event-time msgs/s of the false-alert replays")
    parser.add_argument("--delays", default="900,60", help="mean seconds from an original to its copies (spread, burst)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the detector logs each (false) alert
    load = os.getloadavg()[0]
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        stream = replay(real_originals(args.data, args.originals, seed), args.share, seed=seed)
        results.append({"result": "grouping", "seed": seed, **grouping(stream)})
    results.append({"result": "worker_cost", **worker_cost(stream, args.rounds)})
    results.append({"result": "memory", **memory_and_rebuild(stream)})
    corpus = load_corpus(args.data)
    for rate in (float(r) for r in args.rates.split(",")):
        for delay in (float(d) for d in args.delays.split(",")):
            results.append({"result": "false_alerts", **false_alerts(corpus, args.share, rate, delay, seed=7)})
    machine = {"cpus": os.cpu_count(), "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
               "params": StoryParams().__dict__}
    if args.json:
        for result in results:
            print(json.dumps(result | machine))
        return
    print(f"replays of {args.originals:,} real texts + {args.share:.0%} planted copies; {machine}")
    print(f"\n{'seed':>4} {'msgs':>6} {'pair P':>7} {'pair R':>7} {'B3 P':>7} {'B3 R':>7} {'stories true/found':>19} "
          f"{'orig. merged':>12} {'assign msg/CPU-s':>16}")
    for r in (r for r in results if r["result"] == "grouping"):
        print(f"{r['seed']:>4} {r['messages']:>6} {r['pairwise_precision']:>7.3f} {r['pairwise_recall']:>7.3f} "
              f"{r['bcubed_precision']:>7.3f} {r['bcubed_recall']:>7.3f} {r['true_stories']:>9}/{r['found_stories']:<9} "
              f"{r['originals_merged']:>12} {r['assign_msgs_per_cpu_s']:>16,}")
        print(f"     recall by kind of copy: {r['recall_by_kind']}")
    cost = next(r for r in results if r["result"] == "worker_cost")
    print(f"\nworker process_batch (null classifier, PII masking, rows discarded): {cost['without_msgs_per_s']:,} msgs/CPU-s "
          f"without stories, {cost['with_msgs_per_s']:,} with: ratio {cost['ratio']}, +{cost['story_us_per_msg']} µs/msg")
    memory = next(r for r in results if r["result"] == "memory")
    print(f"index memory {memory['bytes_per_entry']:,} B/entry; rebuild {memory['rebuild_rows_per_s']:,} rows/CPU-s "
          f"({memory['rebuild_s_for_100k']} s for 100,000)")
    for r in (r for r in results if r["result"] == "false_alerts"):
        print(f"\nfalse alerts on the unspiked alert corpus at {r['rate']:g} msgs/s of event time, copies "
              f"{r['mean_delay_s']:g} s after their original on average:")
        for rule, runs in r["alerts"].items():
            print(f"  {rule}")
            for name, a in runs.items():
                print(f"    {name:<34} {a['opened']:>4} alerts / {a['messages']:>6,} msgs = {a['per_10k']:.3f} per 10k")


if __name__ == "__main__":
    main()
