"""Store throughput, side by side: clickhouse-server 18.16 (ServerStore) vs chDB 26.x (ChdbStore).

Writes scored-message rows in worker-sized batches (256) and bulk batches (10k), then times the
dashboard's kind of query (per-minute counts over the table, read FINAL). Starts its own stack on
free ports under a tmp home, so it runs beside anything else.

    python bench/store.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from riskpulse.streams.store.migrate import migrate
from riskpulse.core.settings import Settings
from riskpulse.streams.store.backends import ChdbStore, ServerStore, Store
from riskpulse.streams.ops.stack import Stack, free_ports

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
PER_MINUTE = (
    "SELECT toStartOfMinute(ts) AS minute, sentiment, count() AS n FROM messages FINAL "
    "WHERE ts >= %(start)s GROUP BY minute, sentiment ORDER BY minute"
)


def rows(count: int, offset: int) -> list[dict]:
    now = datetime.now(timezone.utc)
    return [
        {
            "id": f"m-{offset + i}", "source": "news", "channel": f"wire-{i % 7}", "lang": "en",
            "ts": T0 + timedelta(seconds=offset + i), "text": f"Bank shares slide as rates rise, item {offset + i}",
            "meta": "{}", "topic": "Banking", "topic_prob": 0.9, "sentiment": ("negative", "neutral", "positive")[i % 3],
            "sentiment_prob": 0.8, "model_version": "bench", "processed_at": now,
        }
        for i in range(count)
    ]


def measure(store: Store, total: int, batch: int) -> float:
    """Rows per second writing ``total`` rows in batches of ``batch`` (row building not timed)."""
    store.execute("TRUNCATE TABLE messages")
    batches = [rows(batch, start) for start in range(0, total, batch)]
    started = time.perf_counter()
    for chunk in batches:
        store.write_batch("messages", chunk)
    return total / (time.perf_counter() - started)


def query_ms(store: Store, repeats: int = 5) -> float:
    store.query(PER_MINUTE, {"start": T0})
    started = time.perf_counter()
    for _ in range(repeats):
        store.query(PER_MINUTE, {"start": T0})
    return (time.perf_counter() - started) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="riskpulse-bench-") as home:
        kafka, controller, native, http = free_ports(4)
        settings = Settings(home=Path(home), kafka_port=kafka, kafka_controller_port=controller,
                            clickhouse_port=native, clickhouse_http_port=http, chdb_path=Path(home) / "chdb")
        stack = Stack(settings)
        stack.up()
        try:
            results = {}
            for name, store in (("server 18.16", ServerStore(settings)), ("chDB 26.x", ChdbStore(settings))):
                store.open()
                migrate(store)
                results[name] = (measure(store, args.rows, 256), measure(store, args.rows, 10_000), query_ms(store))
                store.close()
        finally:
            stack.down()
    print(f"{args.rows} rows            {'batch 256 rows/s':>18} {'batch 10k rows/s':>18} {'per-minute FINAL ms':>20}")
    for name, (small, bulk, ms) in results.items():
        print(f"{name:<22} {small:>18,.0f} {bulk:>18,.0f} {ms:>20.1f}")
    server, embedded = results["server 18.16"], results["chDB 26.x"]
    print(f"{'chDB / server':<22} {embedded[0] / server[0]:>18.2f} {embedded[1] / server[1]:>18.2f} "
          f"{embedded[2] / server[2]:>20.2f}")


if __name__ == "__main__":
    main()
