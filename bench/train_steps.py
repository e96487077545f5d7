"""Training step cost: the recipe's knobs side by side, on this machine, in one process.

Issue 10's budget is the default `riskpulse train` in 30 minutes on a 2-core CPU without native bf16.
A full run takes most of that, so the knobs that set a step's cost (batch size, dropout, the
optimizer's per-tensor or foreach loop) are compared here on the first `--rows` rows of one shuffled,
length-bucketed epoch of the real training mix, each variant on the same rows and model, interleaved
over `--rounds` rounds (medians): ratios under the same load. "before" is the step until 2026-11-28,
"now" today's default; the epoch count, the budget's other half, is not a step knob. The step is the
trainer's (same model, frozen embeddings, optimizer factory, clipping) with hard-label cross-entropy
only: distillation was measured to add no time a step. Quality is not measured here: a cheaper
variant is only a candidate until a full run scores it (README, Models).

    python bench/train_steps.py [--rows 1920] [--rounds 3] [--variant NAME:batch=64,dropout=0,foreach=1 ...] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import time

import numpy as np
import torch
from torch import nn

from riskpulse.core.settings import Settings
from riskpulse.models.serving.network import build_model, bundled_base_model, pad_ids, token_ids
from riskpulse.models.serving.precision import choose_precision, cpu_model
from riskpulse.models.training.data import SENTIMENT_LABELS, TOPIC_LABELS, training_data
from riskpulse.models.training.trainer import (
    IGNORE, REFERENCE_BATCH, TrainArgs, _batches, capped_rows, hard_targets, make_optimizer, scaled_lr, set_dropout,
)

DEFAULT_VARIANTS = ("before:batch=32,dropout=0.1,foreach=0", "foreach:batch=32,dropout=0.1,foreach=1",
                    "now:batch=32,dropout=0,foreach=1", "batch64:batch=64,dropout=0,foreach=1")


def parse_variant(text: str) -> tuple[str, dict[str, float]]:
    name, _, spec = text.partition(":")
    knobs = {"batch": 32.0, "dropout": 0.1, "foreach": 1.0}
    for part in filter(None, spec.split(",")):
        key, _, value = part.partition("=")
        if key not in knobs:
            raise SystemExit(f"--variant {text!r}: knobs are {sorted(knobs)}")
        knobs[key] = float(value)
    return name, knobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1920, help="training rows each variant steps through per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", help="NAME:batch=B,dropout=P,foreach=0|1 (repeatable)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="one JSON object per variant")
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    settings, args = Settings(), TrainArgs()
    device = torch.device("cpu")
    precision = choose_precision(device, settings.precision)
    data = training_data(settings.shared_data, args.holdout, args.holdout_seed)
    rows = capped_rows(data.train, args)
    base, tokenizer = build_model(bundled_base_model(), len(TOPIC_LABELS), len(SENTIMENT_LABELS), args.forked_layers)
    base.encoder.embeddings.requires_grad_(False)
    encoded = token_ids(tokenizer, [r.text for r in rows], args.max_length)
    lengths = np.array([len(ids) for ids in encoded])
    ids_all, mask_all = (torch.from_numpy(a) for a in pad_ids(encoded, tokenizer.pad_token_id or 0))
    topic, sentiment = (torch.tensor(targets) for targets in hard_targets(rows))

    variants = [parse_variant(v) for v in (options.variant or DEFAULT_VARIANTS)]
    # the same rows for every batch size: the first --rows of one epoch's order, bucketed again per size
    order = _batches(lengths.tolist(), REFERENCE_BATCH, random.Random(args.seed))
    subset = np.concatenate(order[: max(1, options.rows // REFERENCE_BATCH)])
    runs = {}
    for name, knobs in variants:
        model = copy.deepcopy(base).train()
        set_dropout(model, knobs["dropout"])
        batch_size = int(knobs["batch"])
        optimizer = make_optimizer(model, args, scaled_lr(args.lr, batch_size), batch_size, device)
        if not knobs["foreach"]:
            for group in optimizer.param_groups:
                group["foreach"] = False
        batches = [subset[b] for b in _batches(lengths[subset].tolist(), batch_size, random.Random(args.seed))]
        runs[name] = (model, optimizer, batches, bool(knobs["foreach"]), knobs)

    def steps(model, optimizer, batches, foreach) -> float:
        started = time.perf_counter()
        for batch in batches:
            index = torch.from_numpy(batch)
            width = int(lengths[batch].max())
            with precision.autocast():
                t_logits, s_logits = model(ids_all[index, :width], mask_all[index, :width])
            loss = sum(nn.functional.cross_entropy(logits.float(), targets[index], ignore_index=IGNORE)
                       for logits, targets in ((t_logits, topic), (s_logits, sentiment)) if (targets[index] != IGNORE).any())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=foreach)
            optimizer.step()
        return time.perf_counter() - started

    for model, optimizer, batches, foreach, _ in runs.values():  # warm-up: first calls of each shape
        steps(model, optimizer, batches[:2], foreach)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(options.rounds):
        for name, (model, optimizer, batches, foreach, _) in runs.items():
            seconds[name].append(steps(model, optimizer, batches, foreach))

    first = variants[0][0]
    print(f"# {cpu_model()}, {torch.get_num_threads()} threads, {precision.describe()}; "
          f"{options.rounds} rounds, medians; ratio = time per row against {first!r}")
    def seconds_per_row(name: str) -> float:
        return statistics.median(seconds[name]) / sum(len(b) for b in runs[name][2])

    for name, (_, _, batches, _, knobs) in runs.items():
        per_row = seconds_per_row(name)
        ratio = per_row / seconds_per_row(first)
        result = {"variant": name, **knobs, "rows": sum(len(b) for b in batches), "steps": len(batches),
                  "mean_width": round(float(np.mean([lengths[b].max() for b in batches])), 1),
                  "rows_per_s": round(1 / per_row, 1), "epoch_min": round(len(rows) * per_row / 60, 1),
                  "ratio": round(ratio, 3), "rounds_s": [round(s, 2) for s in seconds[name]],
                  "precision": precision.name, "cpu": cpu_model()}
        if options.json:
            print(json.dumps(result))
        else:
            print(f"{name:>12}: batch {int(knobs['batch']):>3}, dropout {knobs['dropout']:.2f}, foreach {int(knobs['foreach'])}"
                  f" | {result['rows_per_s']:7.1f} rows/s, an epoch's steps ~{result['epoch_min']:5.1f} min | x{ratio:.3f}"
                  f"  (rounds {result['rounds_s']})")


if __name__ == "__main__":
    main()
