"""Classifier throughput: RiskPulse Engine vs a naive HF pipeline vs a bare batched torch loop.

Same machine, same 2,000 real messages (financial tweets, BANKING77 queries, CFPB complaints),
same weights, same max length. Each method runs in its own subprocess so its peak memory is its
own. The pipeline gets a sentiment-only ``BertForSequenceClassification`` view of the model
(encoder + sentiment head; its pooler differs from our mean pooling, the compute is the same)
and is called one message at a time, as naive service code would. The bare loop is the limit:
fixed-order batches, no sorting, no bookkeeping. All three run at the engine's precision: fp16 on
CUDA, bf16 autocast on CPUs with native bf16 (``RISKPULSE_CPU_BF16``), else fp32.

    python bench/classifier.py [--model VERSION] [--device cpu|cuda] [--n 2000]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def messages(data: Path, n: int) -> list[str]:
    """A stream-like mix: 75% tweets, 20% chat queries, 5% long complaints."""
    def column(path: Path, k: int) -> list[str]:
        with path.open(newline="", encoding="utf-8") as fh:
            return [row["text"] for row in csv.DictReader(fh) if row["text"].strip()][:k]
    n_bank, n_cfpb = n // 5, n // 20
    texts = (column(data / "twitter-financial-news-sentiment/validation.csv", n - n_bank - n_cfpb)
             + column(data / "banking77/test.csv", n_bank) + column(data / "cfpb-complaints-sample/test.csv", n_cfpb))
    return texts[:n]


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


def run_one(method: str, args: argparse.Namespace) -> dict:
    import torch

    from models.inference import Engine, cpu_bf16_enabled
    from models.network import load_model
    from models.registry import Registry
    from streams.settings import Settings

    settings = Settings(device=args.device, max_length=args.max_length, inference_batch_size=args.batch_size)
    texts = messages(args.data, args.n)
    registry = Registry(settings.registry_root)
    version = registry.resolve(args.model)
    low_precision_cpu = cpu_bf16_enabled(torch.device(args.device), settings.cpu_bf16)  # as the engine decides; all three get it
    if method == "engine":
        engine = Engine.load(settings, version)
        engine.classify(texts[:64])
        run = lambda: engine.classify(texts)  # noqa: E731
    elif method == "pipeline":
        from transformers import pipeline

        view = Path(tempfile.mkdtemp(prefix="rp-bench-"))
        sentiment_view(registry.path(version), view)
        dtype = torch.float16 if args.device.startswith("cuda") else torch.bfloat16 if low_precision_cpu else None
        pipe = pipeline("text-classification", model=str(view), device=torch.device(args.device), torch_dtype=dtype)
        for t in texts[:16]:
            pipe(t, truncation=True, max_length=args.max_length)
        run = lambda: [pipe(t, truncation=True, max_length=args.max_length) for t in texts]  # noqa: E731
    else:
        model, tokenizer, _ = load_model(registry.path(version))
        model.to(args.device)
        if args.device.startswith("cuda"):
            model.half()

        def run() -> None:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=low_precision_cpu):
                for i in range(0, len(texts), args.batch_size):
                    enc = tokenizer(texts[i : i + args.batch_size], padding=True, truncation=True,
                                    max_length=args.max_length, return_tensors="pt").to(args.device)
                    topic, sentiment = model(enc["input_ids"], enc["attention_mask"])
                    topic.softmax(-1).max(-1), sentiment.softmax(-1).max(-1)
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
        run()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    run()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"method": method, "version": version, "n": len(texts), "seconds": seconds,
            "msgs_per_s": len(texts) / seconds, "peak_mb": peak_mb(args.device), "threads": torch.get_num_threads(),
            "precision": "fp16" if args.device.startswith("cuda") else "bf16" if low_precision_cpu else "fp32"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="registry version; default current")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--only", choices=["engine", "pipeline", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run_one(args.only, args)))
        return
    results = {}
    for method in ("engine", "pipeline", "bare"):
        cmd = [sys.executable, __file__, "--only", method, "--device", args.device, "--n", str(args.n),
               "--max-length", str(args.max_length), "--batch-size", str(args.batch_size), "--data", str(args.data)]
        if args.model:
            cmd += ["--model", args.model]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[method] = json.loads(out.strip().splitlines()[-1])
        r = results[method]
        print(f"{method:<9} {r['msgs_per_s']:9.1f} msgs/s  {r['seconds']:7.2f} s  peak {r['peak_mb']:8.1f} MB"
              f"  ({r['n']} msgs, {args.device} {r['precision']}, {r['threads']} threads, model {r['version']})", flush=True)
    engine = results["engine"]["msgs_per_s"]
    print(f"engine / naive pipeline = {engine / results['pipeline']['msgs_per_s']:.2f}x   (goal >= 3x)")
    print(f"engine / bare batched loop = {engine / results['bare']['msgs_per_s']:.2f}   (goal >= 0.9)")


if __name__ == "__main__":
    main()
