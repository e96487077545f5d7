"""Rebuild the bundled demo sample from the labeled sets in ../shared/data.

Only held-out rows (validation/test splits) are used, so the demo never shows the
model text it was trained on. Run: python data/sample/build.py [SHARED_DATA_DIR]
"""

from __future__ import annotations

import csv
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

SEED = 7
START = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)
SPAN = timedelta(hours=8)
PICKS = [  # (dataset file, source, channel, rows)
    ("twitter-financial-news-sentiment/validation.csv", "news", "twitter-financial-news", 1600),
    ("banking77/test.csv", "customer", "banking-app", 1100),
    ("cfpb-complaints-sample/test.csv", "customer", "cfpb-portal", 300),
]


def main(shared: Path) -> None:
    rng = random.Random(SEED)
    out = []
    for rel, source, channel, n in PICKS:
        with open(shared / rel, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        for row in rng.sample(rows, min(n, len(rows))):
            ts = START + timedelta(seconds=rng.uniform(0, SPAN.total_seconds()))
            out.append(
                {
                    "source": source,
                    "channel": channel,
                    "lang": "en",
                    "ts": ts.isoformat(),
                    "text": row["text"][:8000],
                    "meta": {"dataset": rel.split("/")[0]},
                }
            )
    out.sort(key=lambda m: m["ts"])
    target = Path(__file__).with_name("messages.jsonl")
    with open(target, "w", encoding="utf-8") as fh:
        for msg in out:
            fh.write(json.dumps(msg, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} messages to {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3] / "shared" / "data")
