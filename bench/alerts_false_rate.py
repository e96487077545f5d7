"""False alerts per 10,000 messages on a long, unspiked replay of real data.

Replays the real labeled corpus (tests/integration/alerts_corpus.py, ~32k texts) several times in fresh
random orders through the same Detector the alerting agent runs, at a steady event-time
rate, and counts alerts: every alert here is a false one, because nothing was injected.
Also prints the detector's throughput. Run: python bench/alerts_false_rate.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from tqdm import tqdm

from riskpulse.streams.alerts.detector import Detector, Observation
from riskpulse.streams.alerts.rules import DEFAULT_RULES, Rule, RuleSet, load_rules

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the corpus builder lives with the alert tests
from tests.integration.alerts_corpus import load_corpus, shuffled  # noqa: E402


def replay(rules: RuleSet, stream, rate: float) -> tuple[int, int, float]:
    det = Detector(rules)
    opened = 0
    started = time.perf_counter()
    for i, (item, suffix) in enumerate(stream):
        obs = Observation(id=item.id + suffix, ts=1_700_000_000 + i / rate, topic=item.topic, source="news",
                          channel=f"ch{hash(item.id) % 20}", negative=item.sentiment == "negative", text=item.text)
        opened += sum(e.kind == "opened" for e in det.observe(obs))
    return opened, len(stream), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the detector logs each (false) alert at WARNING
    corpus = load_corpus(args.data)
    stream = shuffled(corpus, args.rounds)
    default_topic_rule = load_rules(DEFAULT_RULES).by_name("topic-negative-spike")
    configs = [
        ("default rule (topic, 300 s, z≥4, min 30)", default_topic_rule, 10.0),
        ("topic, 60 s, z≥4, min 30", default_topic_rule.model_copy(update={"window_s": 60.0}), 10.0),
        ("topic, 60 s, z≥3, min 30", default_topic_rule.model_copy(update={"window_s": 60.0, "threshold_z": 3.0}), 10.0),
        ("topic+channel, 300 s, z≥4, min 20", Rule(name="tc", key=("topic", "channel"), window_s=300, threshold_z=4.0,
                                                  min_volume=20, min_baseline_windows=6), 10.0),
    ]
    print(f"replay: {len(stream):,} real messages ({args.rounds} shuffled rounds of {len(corpus):,}), unspiked")
    print(f"{'rule':<42} {'msg/s (event)':>13} {'alerts':>7} {'per 10k msgs':>13} {'detector msg/s':>15}")
    for label, rule, rate in tqdm(configs, desc="configs", leave=False):
        opened, n, seconds = replay(RuleSet(rules=(rule,)), stream, rate)
        print(f"{label:<42} {rate:>13g} {opened:>7} {opened / n * 10_000:>13.3f} {n / seconds:>15,.0f}")


if __name__ == "__main__":
    main()
