"""Classifier throughput: RiskPulse Engine vs a naive HF pipeline vs a bare batched torch loop.

Same machine, same 2,000 real messages (financial tweets, BANKING77 queries, CFPB complaints),
same weights, same max length. Each method runs in its own subprocess so its peak memory is its
own. The pipeline gets a sentiment-only ``BertForSequenceClassification`` view of the model
(encoder + sentiment head; its pooler differs from our mean pooling, the compute is the same)
and is called one message at a time, as naive service code would. The bare loop is the limit:
fixed-order batches tokenized and run one after the other, no bookkeeping. All three run at the
precision ``riskpulse.models.serving.precision`` chooses for the device (``RISKPULSE_PRECISION``), on every device
asked for (CPU, and CUDA when present) and every batch size, printed side by side; the engine
also runs at its own default batch size for the device.

    python bench/classifier.py [--model VERSION] [--devices cpu,cuda] [--batch-sizes 64,256] [--n 2000] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIPELINE_MAX_N = 2000


def messages(data: Path, n: int) -> list[str]:
    """A stream-like mix: 75% tweets, 20% chat queries, 5% long complaints."""
    def column(path: Path, k: int) -> list[str]:
        with path.open(newline="", encoding="utf-8") as fh:
            return [row["text"] for row in csv.DictReader(fh) if row["text"].strip()][:k]
    n_bank, n_cfpb = n // 5, n // 20
    texts = (column(data / "twitter-financial-news-sentiment/validation.csv", n - n_bank - n_cfpb)
             + column(data / "banking77/test.csv", n_bank) + column(data / "cfpb-complaints-sample/test.csv", n_cfpb))
    # The files hold 5,463 such texts; a larger n repeats them (the engine caches nothing, so a repeat
    # costs what a new text of its length would), so one timed pass lasts long enough on a GPU.
    return [texts[i % len(texts)] for i in range(n)]


def peak_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sentiment_view(version_dir: Path, out: Path) -> None:
    """Save encoder + sentiment head as a plain HF sequence-classification model for `pipeline`."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification

    labels = json.loads((version_dir / "labels.json").read_text())["sentiment"]
    config = AutoConfig.from_pretrained(str(version_dir), num_labels=len(labels),
                                        id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    model = BertForSequenceClassification(config)
    state = load_file(str(version_dir / "model.safetensors"))
    def plain(key: str) -> str:  # forked top layers: layer.J.sentiment.I.* is plain layer J+I
        forked = re.match(r"encoder\.layer\.(\d+)\.sentiment\.(\d+)\.(.*)", key)
        return f"encoder.layer.{int(forked[1]) + int(forked[2])}.{forked[3]}" if forked else key

    mapped = {"bert." + plain(k.removeprefix("encoder.")): v
              for k, v in state.items() if k.startswith("encoder.") and ".topic." not in k}
    mapped["classifier.weight"], mapped["classifier.bias"] = state["sentiment_head.weight"], state["sentiment_head.bias"]
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    assert not unexpected and all(k.startswith("bert.pooler") for k in missing), (missing, unexpected)
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(version_dir)).save_pretrained(str(out))


def bare_loop(model, tokenizer, texts: list[str], batch_size: int, max_length: int, precision) -> None:
    """The limit: fixed-order batches tokenized and run one after the other, no bookkeeping. `model` is
    already on `precision.device` (cast where the precision casts weights; under autocast elsewhere)."""
    import torch

    autocast = contextlib.nullcontext() if precision.casts_weights else precision.autocast()
    with torch.inference_mode(), autocast:
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i : i + batch_size], padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt").to(precision.device)
            topic, sentiment = model(enc["input_ids"], enc["attention_mask"])
            topic.float().softmax(-1).max(-1)[0].tolist(), sentiment.float().softmax(-1).max(-1)[0].tolist()


def run_one(method: str, device_name: str, batch_size: int | None, args: argparse.Namespace) -> dict:
    import torch

    from riskpulse.models.serving.inference import Engine, default_batch_size
    from riskpulse.models.serving.network import load_model
    from riskpulse.models.serving.precision import choose_precision
    from riskpulse.models.serving.registry import Registry
    from riskpulse.core.settings import Settings

    settings = Settings(device=device_name, max_length=args.max_length, inference_batch_size=batch_size)
    device = torch.device(device_name)
    batch_size = batch_size or default_batch_size(device)
    cuda = device.type == "cuda"
    texts = messages(args.data, args.n)
    registry = Registry(settings.registry_root)
    version = registry.resolve(args.model)
    precision = choose_precision(device, settings.precision)  # as the engine decides; all three get it
    if method == "engine":
        engine = Engine.load(settings, version)
        run = lambda: engine.classify(texts)  # noqa: E731
        run()  # warmed on the whole set, as the bare loop is (on an H200 a first pass ran at 0.29x the warm bare loop)
    elif method == "pipeline":
        from transformers import pipeline

        texts = texts[:PIPELINE_MAX_N]  # one message at a time: its rate does not need 20,000 of them

        view = Path(tempfile.mkdtemp(prefix="rp-bench-"))
        sentiment_view(registry.path(version), view)
        pipe = pipeline("text-classification", model=str(view), device=device,
                        torch_dtype=precision.dtype if precision.reduced else None)
        for t in texts[:16]:
            pipe(t, truncation=True, max_length=args.max_length)
        run = lambda: [pipe(t, truncation=True, max_length=args.max_length) for t in texts]  # noqa: E731
    else:
        model, tokenizer, _ = load_model(registry.path(version))
        model.to(device).eval()
        if precision.casts_weights:
            model.to(precision.dtype)
        run = lambda: bare_loop(model, tokenizer, texts, batch_size, args.max_length, precision)  # noqa: E731
        run()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timings = []
    for _ in range(1 if method == "pipeline" else args.repeats):  # median of a few passes: a shared host is noisy
        # (the pipeline's 2,000 single calls average out on their own)
        start = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    seconds = statistics.median(timings)
    return {"method": method, "device": device_name, "hardware": precision.hardware,
            "precision": precision.name, "batch_size": None if method == "pipeline" else batch_size,
            "version": version, "n": len(texts), "seconds": round(seconds, 3), "msgs_per_s": round(len(texts) / seconds, 1),
            "peak_mb": round(peak_mb(device_name), 1), "threads": torch.get_num_threads()}


def measure(method: str, device: str, batch_size: int | None, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--only", method, "--devices", device, "--n", str(args.n), "--repeats", str(args.repeats),
           "--max-length", str(args.max_length), "--data", str(args.data)]
    cmd += ["--batch-sizes", str(batch_size)] if batch_size else []
    cmd += ["--model", args.model] if args.model else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    import torch

    from riskpulse.models.serving.inference import default_batch_size

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="registry version; default current")
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per method; the median is reported")
    parser.add_argument("--batch-sizes", default="64", help="comma separated; the engine's own default is added")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--json", action="store_true", help="one JSON object per method, device and batch size")
    parser.add_argument("--only", choices=["engine", "pipeline", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.only:
        print(json.dumps(run_one(args.only, args.devices, sizes[0], args)))
        return
    for device in args.devices.split(","):
        pipeline = measure("pipeline", device, None, args)
        report(pipeline, args.json)
        for size in sorted(set(sizes) | {default_batch_size(torch.device(device))}):
            engine, bare = measure("engine", device, size, args), measure("bare", device, size, args)
            for r in (engine, bare):
                report(r, args.json)
            ratios = {"engine_vs_bare": round(engine["msgs_per_s"] / bare["msgs_per_s"], 3),
                      "engine_vs_pipeline": round(engine["msgs_per_s"] / pipeline["msgs_per_s"], 3)}
            if args.json:
                print(json.dumps({"method": "ratios", "device": device, "precision": engine["precision"],
                                  "batch_size": size, **ratios}), flush=True)
            else:
                print(f"  {device} batch {size}: engine / bare batched loop = {ratios['engine_vs_bare']:.2f} (goal >= 0.9),"
                      f" engine / naive pipeline = {ratios['engine_vs_pipeline']:.2f}x (goal >= 3x)", flush=True)


def report(r: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(r), flush=True)
        return
    batch = f"batch {r['batch_size']:>4}" if r["batch_size"] else "one by one"
    print(f"{r['method']:<9} {r['device']:<6} {r['precision']:<4} {batch:<10} {r['msgs_per_s']:9.1f} msgs/s"
          f"  {r['seconds']:7.2f} s  peak {r['peak_mb']:8.1f} MB  ({r['n']} msgs, {r['threads']} threads,"
          f" {r['hardware']}, model {r['version']})", flush=True)


if __name__ == "__main__":
    main()
