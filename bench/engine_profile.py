"""Where the engine's time goes, in one process: each variant warmed on the full set, then timed.

Variants: the engine as configured (tokenizing ahead on a helper thread on a GPU), the engine
tokenizing everything in one call first, the bare batched loop of ``bench/classifier.py``, and the
engine's parts alone: preprocessing, the one tokenizer call, and the device's forward passes over
pre-padded length-sorted batches. ``--fresh`` scores with a randomly initialised head on the bundled
encoder (throughput does not depend on the weights), for a machine with no trained model.

    python bench/engine_profile.py [--device cuda] [--batch-sizes 64,512] [--n 20000] [--fresh] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch

from classifier import bare_loop, messages  # noqa: I001 (bench/ sibling)

from riskpulse.core.settings import Settings
from riskpulse.models.serving.inference import Engine
from riskpulse.models.serving.network import build_model, bundled_base_model, load_model, pad_ids, preprocess
from riskpulse.models.serving.precision import choose_precision
from riskpulse.models.serving.registry import Registry
from riskpulse.models.training.data import SENTIMENT_LABELS, TOPIC_LABELS

REPO = Path(__file__).resolve().parents[1]


def timed(run, device: torch.device) -> float:
    run()  # warm: every shape once
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-sizes", default="64,512")
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--fresh", action="store_true", help="random heads on the bundled encoder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    settings = Settings(device=args.device, max_length=args.max_length)
    labels = {"topic": list(TOPIC_LABELS), "sentiment": list(SENTIMENT_LABELS)}
    if args.fresh:
        model, tokenizer = build_model(bundled_base_model(), len(TOPIC_LABELS), len(SENTIMENT_LABELS), 1)
        version = "fresh"
    else:
        registry = Registry(settings.registry_root)
        version = registry.resolve(None)
        model, tokenizer, labels = load_model(registry.path(version))
    precision = choose_precision(device, settings.precision)
    texts = messages(args.data, args.n)
    results = []

    def record(variant: str, batch: int | None, seconds: float) -> None:
        r = {"variant": variant, "device": args.device, "precision": precision.name, "batch_size": batch,
             "n": len(texts), "seconds": round(seconds, 3), "msgs_per_s": round(len(texts) / seconds, 1), "version": version}
        results.append(r)
        print(json.dumps(r) if args.json else f"{variant:<24} batch {batch or '-':>5} {r['msgs_per_s']:10.1f} msgs/s {seconds:7.3f} s", flush=True)

    engine = Engine(model, tokenizer, labels, version, device, args.max_length, precision=precision)
    record("preprocess", None, timed(lambda: [preprocess(t) for t in texts], device))
    record("tokenize (one call)", None, timed(lambda: engine._encode(texts), device))
    encoded, _ = engine._encode(texts)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    for size in [int(b) for b in args.batch_sizes.split(",")]:
        padded = [pad_ids([encoded[i] for i in order[s : s + size]], engine.pad_id) for s in range(0, len(order), size)]

        def forward_only() -> None:
            with torch.inference_mode(), engine.precision.autocast() if not engine._weights_cast else contextlib.nullcontext():
                for ids, mask in padded:
                    engine._launch(ids, mask, engine._pack_scores)

        record("forward only (padded)", size, timed(forward_only, device))
        engine.batch_size = size
        for variant, chunk in (("engine (default)", None), ("engine (one tokenize)", len(texts))):
            engine.tokenize_chunk = chunk or (8 * size if device.type == "cuda" else None)
            record(variant, size, timed(lambda: engine.classify(texts), device))

        record("bare loop", size, timed(lambda: bare_loop(engine.model, tokenizer, texts, size, args.max_length, precision), device))


if __name__ == "__main__":
    main()
