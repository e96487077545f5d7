#!/usr/bin/env bash
# Runs the three test tiers in order: tests/unit (pure, fakes only, seconds), tests/local (this machine
# only: chDB, the quick model, tiny trainings, Streamlit AppTest) and tests/integration (real Kafka
# broker, real ClickHouse server and chDB, real HTTP receiver, real headless Chromium), then tests/faults (the
# fault suite: broker restarts, ClickHouse down, worker SIGTERM, read-only/full disks, hostile records, backlog).
# Screenshots and logs land in test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p test-artifacts
# Which case this run is (CPUs differ from run to run): the CPU, and the precision training and serving pick.
python -c 'import torch; from riskpulse.models.serving.precision import choose_precision; print("riskpulse:", choose_precision(torch.device("cpu")).describe(), "| CUDA:", torch.cuda.is_available())'
python -m pytest tests/unit -q
python -m pytest tests/local -q
python -m pytest tests/integration -q
python -m pytest tests/faults -q -m faults   # each test owns a broker + ClickHouse server and kills or stops parts of it
