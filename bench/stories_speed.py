"""Story grouping's cost, this checkout's code beside an earlier revision's, in one process.

The null-model pipeline on a 2-core CPU waits on story grouping (bench/pipeline.py's stage times), and a
shared VM's speed moves ±20% from run to run, so a change to ``streams/enrich/stories.py`` is measured
against the revision before it here: both modules are loaded side by side, each sketches and groups the
same real texts (~33,000 distinct, as ``bench/pipeline.py`` sends them) in worker-sized batches, interleaved
over ``--rounds`` (medians). Also checks that both give every message the same story id (a speed change
must not change the grouping).

    python bench/stories_speed.py [--against HEAD~1] [--messages 33000] [--batch 4096] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the bench's texts come from the integration tests' helper

from riskpulse.streams.enrich import stories as current  # noqa: E402
from tests.integration.pipeline_support import good_messages  # noqa: E402


def module_at(revision: str, workdir: Path):
    """``streams/enrich/stories.py`` as it was at ``revision``, imported under a name of its own."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{revision}:streams/enrich/stories.py"],
                            check=True, capture_output=True, text=True).stdout
    path = workdir / "stories_then.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("stories_then", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["stories_then"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def run(module, messages: list[tuple[str, float, str]], batch: int) -> tuple[float, float, list[str]]:
    """(sketch s, group s, story ids): every batch sketched, then grouped with its sketches, as a worker does."""
    sketcher, index = module.Sketcher(), module.StoryIndex()
    sketch_s = group_s = 0.0
    ids: list[str] = []
    for start in range(0, len(messages), batch):
        part = messages[start:start + batch]
        began = time.process_time()
        sketched = sketcher.sketch([text for _, _, text in part])
        sketched_at = time.process_time()
        ids += index.assign(part, sketched)
        sketch_s += sketched_at - began
        group_s += time.process_time() - sketched_at
    return sketch_s, group_s, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD~1", help="the git revision to compare with")
    parser.add_argument("--messages", type=int, default=33_000)
    parser.add_argument("--batch", type=int, default=4096, help="messages a worker batch holds (RISKPULSE_BATCH_MAX_SIZE)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    messages = [(m.id, m.ts.timestamp(), m.text) for m in good_messages("speed", args.messages)]
    with tempfile.TemporaryDirectory() as tmp:
        versions = {args.against: module_at(args.against, Path(tmp)), "this checkout": current}
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in versions}
        ids: dict[str, list[str]] = {}
        for _ in range(args.rounds):
            for name, module in versions.items():
                sketch_s, group_s, ids[name] = run(module, messages, args.batch)
                times[name].append((sketch_s, group_s))
    same = ids[args.against] == ids["this checkout"]
    results = []
    for name in versions:
        sketch = statistics.median(s for s, _ in times[name]) / len(messages) * 1e6
        group = statistics.median(g for _, g in times[name]) / len(messages) * 1e6
        results.append({"version": name, "messages": len(messages), "batch": args.batch, "rounds": args.rounds,
                        "sketch_us_per_msg": round(sketch, 1), "group_us_per_msg": round(group, 1), "same_story_ids": same})
    then, now = results
    for stage in ("sketch", "group"):
        ratio = then[f"{stage}_us_per_msg"] / now[f"{stage}_us_per_msg"]
        results.append({"stage": stage, "speedup": round(ratio, 2)})
    if args.json:
        for result in results:
            print(json.dumps(result))
        return
    print(f"{len(messages)} real texts in batches of {args.batch}, CPU µs a message, median of {args.rounds} interleaved rounds")
    print(f"{'':16s}{'sketch':>10s}{'group':>10s}")
    for r in (then, now):
        print(f"{r['version']:16s}{r['sketch_us_per_msg']:10.1f}{r['group_us_per_msg']:10.1f}")
    print(f"{'speed-up':16s}{then['sketch_us_per_msg'] / now['sketch_us_per_msg']:9.2f}x"
          f"{then['group_us_per_msg'] / now['group_us_per_msg']:9.2f}x")
    print("same story id for every message" if same else "STORY IDS DIFFER between the two versions")


if __name__ == "__main__":
    main()
