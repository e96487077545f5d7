"""How long each dashboard page's queries take at 10k and at 1M stored messages.

Starts its own clickhouse-server (free ports, temp home) and a chDB directory, fills both
with the same rows — real texts from the shared datasets, synthetic scores and times over
30 days, 1% redelivered duplicates so FINAL has work to do — and times every page's query
set (median of --repeat runs). Prints both sizes and the 1M/10k ratio side by side.

    python bench/dashboard_queries.py [--sizes 10000 1000000] [--repeat 5] [--backends server chdb]
"""

from __future__ import annotations

import argparse
import csv
import random
import socket
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tqdm import tqdm


from riskpulse.dashboards import queries  # noqa: E402
from riskpulse.core.settings import Settings  # noqa: E402
from riskpulse.streams.store import labels, messages  # noqa: E402
from riskpulse.streams.store.backends import ChdbStore, ServerStore  # noqa: E402
from riskpulse.streams.store.migrate import migrate  # noqa: E402
from riskpulse.streams.ops.stack import ClickHouseService  # noqa: E402

TOPICS = ["Macro", "Stock Commentary", "Company | Product News", "Fed | Central Banks", "Earnings", "card_payments",
          "fees_and_charges", "fraud_and_security", "loans_and_mortgages", "Markets", "Energy | Oil", "Politics"]
SOURCES = [("news", "twitter-financial-news"), ("customer", "banking-app"), ("customer", "cfpb-portal"), ("social", "x")]
END = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
SPAN = timedelta(days=30)
BATCH = 50_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def real_texts(shared: Path) -> list[str]:
    texts = []
    for name in ("twitter-financial-news-sentiment/train.csv", "banking77/train.csv", "financial-phrasebank/train.csv"):
        with open(shared / name, newline="", encoding="utf-8") as fh:
            texts.extend(row["text"] for row in csv.DictReader(fh))
    return texts


def message(i: int, texts: list[str], seed: int = 7) -> dict:
    """Message number ``i``, the same every time it is asked for (so a redelivery is an exact copy)."""
    rng = random.Random(seed * 1_000_003 + i)
    source, channel = rng.choice(SOURCES)
    return {
        "id": f"m{i}", "source": source, "channel": channel, "lang": "en",
        "ts": END - timedelta(seconds=rng.randrange(int(SPAN.total_seconds()))), "text": texts[i % len(texts)],
        "meta": "{}", "topic": rng.choice(TOPICS), "topic_prob": rng.random(),
        "sentiment": rng.choices(["negative", "neutral", "positive"], [0.25, 0.5, 0.25])[0],
        "sentiment_prob": rng.random(), "model_version": "bench-v1", "processed_at": END,
    }


def rows(n: int, texts: list[str], seed: int = 7):
    """Batches of message rows; 1% are redeliveries of an earlier message, stored again later."""
    rng = random.Random(seed)
    for first in range(0, n, BATCH):
        batch = []
        for i in range(first, min(n, first + BATCH)):
            if i > 100 and rng.random() < 0.01:
                batch.append({**message(rng.randrange(i), texts, seed), "processed_at": END + timedelta(seconds=1)})
            else:
                batch.append(message(i, texts, seed))
        yield batch


def pages(store) -> dict[str, callable]:
    day_start, week_start = END - timedelta(days=1), END - timedelta(days=7)
    key = {"topic": "Macro", "source": "news"}
    return {
        "overview (24h)": lambda: (
            queries.sentiment_counts(store, day_start, END),
            queries.series(store, day_start, END, 900, "topic"),
            queries.movers(store, END - timedelta(hours=6), END, day_start),
        ),
        "overview (all 30d)": lambda: (
            queries.data_bounds(store),
            queries.sentiment_counts(store, END - SPAN, END),
            queries.series(store, END - SPAN, END, 6 * 3600, "topic"),
            queries.movers(store, END - SPAN / 4, END, END - SPAN),
        ),
        "alerts (one alert)": lambda: (
            queries.key_series(store, END - timedelta(hours=6), END, 300, key=key),
            queries.messages_around(store, END - timedelta(hours=1), END, key=key),
        ),
        "explore (filters)": lambda: (
            [queries.distinct_values(store, c) for c in ("topic", "source", "channel")],
            queries.explore(store, queries.Filters(sentiments=("negative",), start=week_start, end=END)),
        ),
        "explore (text search)": lambda: queries.explore(store, queries.Filters(text="overdraft")),
        "label queue (7 days)": lambda: queries.label_queue(store, "sentiment", since=END - timedelta(days=7)),
    }


def time_pages(store, repeat: int) -> dict[str, float]:
    out = {}
    for name, run in pages(store).items():
        run()
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            run()
            samples.append(time.perf_counter() - started)
        out[name] = statistics.median(samples) * 1000
    return out


def open_backend(kind: str, home: Path, database: str):
    if kind == "server":
        settings = Settings(home=home, store="server", clickhouse_port=free_port(), clickhouse_http_port=free_port(),
                            clickhouse_database=database)
        service = ClickHouseService(settings, home / "clickhouse", home / "run")
        (home / "clickhouse").mkdir(parents=True, exist_ok=True)
        (home / "run").mkdir(parents=True, exist_ok=True)
        service.start(60)
        store = ServerStore(settings)
        store.open()
        return store, lambda: (store.close(), service.stop(30))
    settings = Settings(home=home, store="chdb", chdb_path=home / "chdb", clickhouse_database=database)
    store = ChdbStore(settings)
    store.open()
    return store, store.close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["server", "chdb"], choices=["server", "chdb"])
    parser.add_argument("--shared-data", type=Path, default=Settings().shared_data)
    args = parser.parse_args()
    texts = real_texts(args.shared_data)
    results: dict[tuple[str, int], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="riskpulse-dashboard-bench-") as tmp:
        for backend in args.backends:
            for size in args.sizes:
                database = f"bench_{size}"
                store, close = open_backend(backend, Path(tmp) / backend, database)
                try:
                    migrate(store, (messages, labels))
                    started = time.perf_counter()
                    for batch in tqdm(rows(size, texts), total=-(-size // BATCH), desc=f"{backend} fill {size:,}"):
                        store.write_batch("messages", batch)
                    fill_s = time.perf_counter() - started
                    stored = store.query("SELECT count() AS n FROM messages FINAL")[0]["n"]
                    print(f"{backend}: {stored:,} distinct messages stored ({size:,} written) in {fill_s:.1f} s", flush=True)
                    results[(backend, size)] = time_pages(store, args.repeat)
                finally:
                    close()
    small, large = min(args.sizes), max(args.sizes)
    print(f"\nmedian page query time, ms (of {args.repeat} runs)")
    header = f"{'page':<24}" + "".join(f"{b + ' ' + format(s, ','):>20}" for b in args.backends for s in (small, large))
    print(header + "".join(f"{b + ' ratio':>14}" for b in args.backends))
    for page in results[(args.backends[0], small)]:
        cells = "".join(f"{results[(b, s)][page]:>20.1f}" for b in args.backends for s in (small, large))
        ratios = "".join(f"{results[(b, large)][page] / results[(b, small)][page]:>13.1f}x" for b in args.backends)
        print(f"{page:<24}{cells}{ratios}")


if __name__ == "__main__":
    main()
