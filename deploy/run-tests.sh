#!/usr/bin/env bash
# Runs both test tiers: tests/unit (fakes, fast) and tests/integration (real Kafka broker,
# real ClickHouse server and chDB, real HTTP receiver, real headless Chromium).
# Screenshots and logs land in test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p test-artifacts
python -m pytest tests/unit -q
python -m pytest tests/integration -q
