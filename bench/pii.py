"""PII masking: per-type precision and recall on the labelled synthetic set, and what masking costs.

    python bench/pii.py [--messages 2000] [--repeat 3] [--json]

Quality: tests/pii_corpus.py's EN/ZH customer complaints (every one carries PII and near misses),
scored by exact span (type, start, end). Cost, in the same run and on the same texts: the worker's
own batch function (parse → mask → classify → store) with the null classifier and a store that keeps
nothing, masked and not, side by side, on (a) the labelled set, the worst case where every message
has numbers to check, and (b) the 3,000 real messages of the bundled sample; plus the masker alone.
Rates are messages per CPU-second of this (single-threaded) process, best of ``--repeat`` runs, so
other work on a shared machine slows them less than wall-clock rates (caches and SMT still do).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the labelled set is built by the tests' corpus module

from riskpulse.core.resources import sample_messages  # noqa: E402
from riskpulse.core.schema import Message  # noqa: E402
from riskpulse.streams.enrich.pii import PiiMasker  # noqa: E402
from riskpulse.streams.worker.batching import NullClassifier, RawRecord, process_batch  # noqa: E402
from tests import pii_corpus  # noqa: E402

BATCH = 256


class DiscardingStore:
    """The store's ``write_batch`` that keeps nothing: the bench times the worker's CPU path only."""

    def write_batch(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        pass


def records(texts: Sequence[str]) -> list[RawRecord]:
    now = datetime.now(timezone.utc)
    return [
        RawRecord(Message(id=f"b-{i}", source="customer", channel="bench", ts=now, text=text).to_bytes(), "bench", 0, i)
        for i, text in enumerate(texts)
    ]


def best_rate(run: Callable[[], None], count: int, repeat: int) -> float:
    seconds = []
    for _ in range(repeat):
        started = time.process_time()
        run()
        seconds.append(time.process_time() - started)
    return count / min(seconds)


def batch_rates(raw: list[RawRecord], masker: PiiMasker, repeat: int) -> tuple[float, float]:
    """Best msg/s of the batch function without and with masking, runs interleaved so both meet the same load."""
    engine, store = NullClassifier(), DiscardingStore()

    def run(with_masker: PiiMasker | None) -> None:
        for start in range(0, len(raw), BATCH):
            process_batch(raw[start:start + BATCH], engine, store, masker=with_masker)

    plain, masked = [], []
    for _ in range(repeat):
        plain.append(best_rate(lambda: run(None), len(raw), 1))
        masked.append(best_rate(lambda: run(masker), len(raw), 1))
    return max(plain), max(masked)


def sample_texts() -> list[str]:
    with sample_messages().open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="labelled messages to build (half EN, half ZH)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure; the best is reported")
    parser.add_argument("--json", action="store_true", help="one JSON object per result")
    args = parser.parse_args()
    masker = PiiMasker()
    labelled = pii_corpus.build(args.messages)
    masker.find(labelled[0].text)  # phonenumbers loads its region metadata on first use

    score = pii_corpus.score(labelled, [[(s.type, s.start, s.end) for s in masker.find(m.text)] for m in labelled])
    results: list[dict[str, Any]] = [
        {"result": "quality", "type": kind, **figures} for kind, figures in score.as_dict().items()
    ]
    results.append({"result": "quality", "type": "any (leaked values)", "gold": sum(s.gold for s in score.per_type.values()),
                    "leaked": len(score.leaked)})

    for name, texts in (("labelled set (all PII)", [m.text for m in labelled]), ("bundled sample (real)", sample_texts())):
        raw = records(texts)
        plain, masked = batch_rates(raw, masker, args.repeat)
        alone = best_rate(lambda: [masker.mask(t) for t in texts], len(texts), args.repeat)
        results.append({"result": "cost", "texts": name, "messages": len(texts), "batch_unmasked_msg_s": round(plain),
                        "batch_masked_msg_s": round(masked), "masked_over_unmasked": round(masked / plain, 3),
                        "masker_alone_msg_s": round(alone)})

    results.append({"result": "machine", "cpu": cpu_model(), "load_average": [round(v, 2) for v in os.getloadavg()],
                    "phone_regions": list(masker.phone_regions)})
    if args.json:
        for result in results:
            print(json.dumps(result, ensure_ascii=False))
        return
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"CPU: {cpu_model()} (load average {load}); phone regions {', '.join(masker.phone_regions)}")
    print(f"\n{'type':<22}{'gold':>6}{'found':>7}{'right':>7}{'precision':>11}{'recall':>8}")
    for r in results:
        if r["result"] == "quality" and "precision" in r:
            print(f"{r['type']:<22}{r['gold']:>6}{r['found']:>7}{r['correct']:>7}{r['precision']:>11.3f}{r['recall']:>8.3f}")
    print(f"planted values left unmasked: {len(score.leaked)} of {sum(s.gold for s in score.per_type.values())}")
    print("\nmessages per CPU-second, batch function with the null classifier (parse, mask, classify, store):")
    print(f"{'texts':<26}{'msgs':>6}{'unmasked msg/s':>16}{'masked msg/s':>14}{'ratio':>7}{'masker alone':>14}")
    for r in results:
        if r["result"] == "cost":
            print(f"{r['texts']:<26}{r['messages']:>6}{r['batch_unmasked_msg_s']:>16,}{r['batch_masked_msg_s']:>14,}"
                  f"{r['masked_over_unmasked']:>7.2f}{r['masker_alone_msg_s']:>14,}")


if __name__ == "__main__":
    main()
