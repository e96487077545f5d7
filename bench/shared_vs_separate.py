"""Shared encoder (one pass, two heads) vs two separate single-task models, same settings.

Trains three models in one run with identical TrainArgs apart from the task list — the
multi-task model, a sentiment-only model and a topic-only model — into a scratch registry
(nothing is promoted), then prints each validation set's macro-F1 side by side. The design
card keeps the shared encoder unless it loses more than 1 macro-F1 point on a task: two models
cost two encoder passes per message.

    python bench/shared_vs_separate.py [--epochs 3] [--quick] [--threads N] [--home DIR]
                                       [--shared-version DIR]  # reuse a trained model; same TrainArgs
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import fields, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MAX_LOSS = 0.01  # macro-F1 the shared encoder may give up on a task


def validation_f1(version_dir: Path) -> dict[str, float]:
    """Macro-F1 per validation set, as the training run recorded it."""
    metrics = json.loads((version_dir / "metrics.json").read_text())
    return {dataset: report["macro_f1"] for dataset, report in metrics["validation"].items()}


def main() -> None:
    from riskpulse.models.training.trainer import TrainArgs, train
    from riskpulse.core.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the trainer's for the device")
    parser.add_argument("--quick", action="store_true", help="subsampled one-epoch runs (a smoke check, not a verdict)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--home", type=Path, default=Path(".riskpulse/bench-shared-vs-separate"))
    parser.add_argument("--shared-version", type=Path, help="a version directory trained with the same settings")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    settings = get_settings().model_copy(update={"home": opts.home, "registry_dir": None})
    variants = {"shared": ("topic", "sentiment"), "sentiment-only": ("sentiment",), "topic-only": ("topic",)}
    results: dict[str, dict] = {}
    base = TrainArgs(epochs=opts.epochs, quick=opts.quick)
    if opts.shared_version:
        variants.pop("shared")
        trained = json.loads((opts.shared_version / "training.json").read_text())
        base = TrainArgs(**{f.name: trained[f.name] for f in fields(TrainArgs) if f.name in trained})
        base.tasks = tuple(base.tasks)
        results["shared"] = {"version": opts.shared_version.name, "seconds": trained["seconds"],
                             "f1": validation_f1(opts.shared_version)}
    for name, tasks in variants.items():
        started = time.monotonic()
        args = replace(base, threads=opts.threads, tasks=tasks, tag=name,
                       forked_layers=base.forked_layers if len(tasks) > 1 else 0)
        version = train(settings, args, promote=False)
        results[name] = {"version": version, "seconds": time.monotonic() - started,
                         "f1": validation_f1(settings.registry_root / "versions" / version)}

    print(f"\n{'validation set':34} {'shared':>8} {'separate':>9} {'shared-separate':>16}")
    verdict = []
    for dataset, shared_f1 in results["shared"]["f1"].items():
        separate = results["sentiment-only"]["f1"].get(dataset, results["topic-only"]["f1"].get(dataset))
        delta = shared_f1 - separate
        print(f"{dataset:34} {shared_f1:8.4f} {separate:9.4f} {delta:+16.4f}")
        if dataset.startswith("twitter-financial-news") and delta < -MAX_LOSS:
            verdict.append(f"shared loses {-delta:.3f} macro-F1 on {dataset}")
    for name, r in results.items():
        print(f"{name:15} {r['version']:40} trained in {r['seconds'] / 60:5.1f} min")
    extra = f" (+ {base.forked_layers} forked layer(s), 1/6 of MiniLM each)" if base.forked_layers else ""
    print(f"encoder passes per message: shared 1{extra}, separate 2")
    print("verdict:", "; ".join(verdict) if verdict else f"shared is within {MAX_LOSS:.2f} macro-F1 of separate on both bars")


if __name__ == "__main__":
    main()
