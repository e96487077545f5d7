"""Fixed-size batches vs cost-planned batches (``RISKPULSE_INFERENCE_PASS_TOKENS``) inside one engine call.

A worker's call is as large as its Kafka batch: 4,096 texts under a backlog, a few dozen at a steady rate. The
engine sorts a call's texts by token length and cuts them into batches; cut every ``batch_size`` rows, a short
call pads every tweet to the longest complaint beside it. This scores the same stream-like texts (tweets, chat
queries, complaints: ``bench/classifier.py``'s mix) in calls of each size with both plans, interleaved in one
process on one loaded model, and checks that both give the same labels.

    python bench/batch_plan.py [--registry DIR] [--data DIR] [--calls 1,8,35,64,256,4096] [--n 1024] [--pass-tokens 40] [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.classifier import messages  # noqa: E402


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def score(engine, texts: list[str], call: int, pass_tokens: float | None) -> tuple[float, list]:
    """(msgs/s, scores) with the engine cutting each call of ``call`` texts by ``pass_tokens`` (None: fixed rows)."""
    engine.pass_tokens = pass_tokens
    scores = []
    started = time.perf_counter()
    for i in range(0, len(texts), call):
        scores.extend(engine.classify(texts[i : i + call]))
    return len(texts) / (time.perf_counter() - started), scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", help="model registry root (default: settings)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--calls", default="1,8,35,64,256,4096", help="texts per engine call, comma-separated")
    parser.add_argument("--n", type=int, default=1024, help="texts scored per call size and plan")
    parser.add_argument("--pass-tokens", type=float, default=None, help="the planned variant's setting (default: the device's)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per plan, interleaved; medians are reported")
    parser.add_argument("--json", action="store_true", help="one JSON object per call size")
    args = parser.parse_args()

    from riskpulse.core.settings import Settings
    from riskpulse.models.serving.inference import Engine

    settings = Settings(**({"registry_dir": args.registry} if args.registry else {}))
    engine = Engine.load(settings)
    planned_tokens = args.pass_tokens if args.pass_tokens is not None else engine.pass_tokens
    if not planned_tokens:
        raise SystemExit(f"the engine on {engine.device} cuts fixed batches by default: give --pass-tokens to compare")
    texts = messages(args.data, args.n)
    engine.classify(texts[:64])
    where = f"{cpu_name()}, {os.cpu_count()} CPUs, {engine.device}, {engine.precision.describe()}, batch_size {engine.batch_size}"
    if not args.json:
        print(f"{len(texts)} texts per call size and plan, {args.rounds} rounds; {where}")
        print(f"{'texts/call':>10} {'fixed rows':>12} {'planned':>12} {'planned/fixed':>14} {'same labels':>12}")
    for call in (int(c) for c in args.calls.split(",")):
        rates: dict[str, list[float]] = {"fixed": [], "planned": []}
        labels: dict[str, list] = {}
        for _ in range(args.rounds):
            for name, tokens in (("fixed", None), ("planned", planned_tokens)):
                rate, scores = score(engine, texts, call, tokens)
                rates[name].append(rate)
                labels[name] = [(s.topic, s.sentiment) for s in scores]
        fixed, planned = statistics.median(rates["fixed"]), statistics.median(rates["planned"])
        same = sum(a == b for a, b in zip(labels["fixed"], labels["planned"])) / len(texts)
        if args.json:
            print(json.dumps({"call_texts": call, "fixed_msgs_per_s": round(fixed, 1), "planned_msgs_per_s": round(planned, 1),
                              "ratio": round(planned / fixed, 3), "pass_tokens": planned_tokens, "same_labels": round(same, 4),
                              "texts": len(texts), "rounds": args.rounds, "machine": where}))
        else:
            print(f"{call:>10} {fixed:>9.1f}/s {planned:>9.1f}/s {planned / fixed:>13.2f}x {same:>11.2%}")


if __name__ == "__main__":
    main()
