"""One-command GPU check: train the default model on CUDA, read its validation figures, run the
classifier bench on CUDA (``--devices cuda,cpu`` adds the CPU), and print one summary.

Everything runs in a throw-away RISKPULSE_HOME, so the machine's own registry is untouched. It
needs the package installed (``pip install -e .``), ``../shared/data`` and a CUDA build of torch; a
few minutes on one GPU.

    python bench/gpu_check.py [--quick] [--n 10000] [--batch-sizes 64] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="train the --quick model instead of the default one")
    # Each method and batch size is a fresh process (~30 s of imports, loading and warm-up on an H200 host):
    # batch 64 plus the engine's default keeps the whole check near 4 minutes; 64,256,1024 at 20,000 took over 6.
    parser.add_argument("--n", type=int, default=10000, help="messages for the classifier bench")
    parser.add_argument("--batch-sizes", default="64", help="the engine's default batch size is always added")
    parser.add_argument("--devices", default="cuda", help="cuda,cpu adds the CPU side by side (minutes more)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no CUDA device (torch %s, CUDA build %s)" % (torch.__version__, torch.version.cuda))
    home = Path(tempfile.mkdtemp(prefix="rp-gpu-check-"))
    env = os.environ | {"RISKPULSE_HOME": str(home), "RISKPULSE_SHARED_DATA": str(args.data.resolve()),
                        "RISKPULSE_DEVICE": "cuda", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    train_cmd = [sys.executable, "-m", "riskpulse.cli", "train"] + (["--quick"] if args.quick else [])
    started = time.monotonic()
    subprocess.run(train_cmd, check=True, env=env, cwd=REPO)
    train_s = time.monotonic() - started

    from riskpulse.models.serving.registry import Registry

    registry = Registry(home / "models")
    version = registry.current()
    info = registry.info(version)
    bench = subprocess.run(
        [sys.executable, str(REPO / "bench" / "classifier.py"), "--devices", args.devices, "--n", str(args.n),
         "--batch-sizes", args.batch_sizes, "--data", str(args.data), "--json"],
        check=True, env=env, capture_output=True, text=True, cwd=REPO,
    ).stdout
    results = [json.loads(line) for line in bench.splitlines() if line.startswith("{")]
    summary = {
        "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "version": version,
        "train_seconds": round(train_s, 1), "precision": info["training"].get("precision"),
        "validation_macro_f1": {name: round(r["macro_f1"], 4) for name, r in info["metrics"]["validation"].items()},
        "bench": results,
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(f"\nGPU {summary['gpu']} (torch {summary['torch']}), model {version} at {summary['precision']}")
    print(f"train: {train_s:.0f} s ({'quick' if args.quick else 'default'} recipe)")
    for name, f1 in summary["validation_macro_f1"].items():
        print(f"  validation macro-F1 {name}: {f1:.4f}")
    for r in results:
        if r["method"] == "ratios":
            print(f"  {r['device']} batch {r['batch_size']}: engine/bare {r['engine_vs_bare']:.2f}, "
                  f"engine/pipeline {r['engine_vs_pipeline']:.1f}x")
        else:
            print(f"{r['method']:<9} {r['device']:<5} {r['precision']:<4} batch {r['batch_size'] or '-':>5}"
                  f" {r['msgs_per_s']:10.1f} msgs/s  peak {r['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
