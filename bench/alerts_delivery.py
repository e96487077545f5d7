"""Webhook delivery: does a slow or dead receiver hold up a healthy one?

Sends N notifications (one alert per group, group_wait 0) through the real Dispatcher with its
threads, the outbox in chDB (a default install's store) and real HTTP receivers on 127.0.0.1,
in three set-ups: a healthy receiver alone; plus one answering after 10 s; plus one whose port is
closed. Prints, per set-up, how fast the healthy receiver got everything (notifications/s, the
ratio to alone, latency from submit to its answer) and what the other receiver got meanwhile.
Run: python bench/alerts_delivery.py [--notifications 200] [--slow-s 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from riskpulse.core.settings import Settings
from riskpulse.streams.alerts.detector import Alert, AlertEvent
from riskpulse.streams.alerts.dispatcher import Dispatcher
from riskpulse.streams.alerts.rules import Rule, RuleSet, WebhookTarget
from riskpulse.streams.ops.stack import free_ports
from riskpulse.streams.store import alerts as alert_tables
from riskpulse.streams.store.alerts import AlertRepo
from riskpulse.streams.store.backends import ChdbStore
from riskpulse.streams.store.migrate import migrate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the receiver lives with the alert tests
from tests.fixtures.http_receiver import TEST_SECRET, Receiver  # noqa: E402


def _alert(i: int, now: float) -> Alert:
    return Alert(alert_id=f"alt_{i}", rule="bench", key=json.dumps({"topic": f"T{i}"}), labels={"topic": f"T{i}"},
                 severity="warning", status="open", opened_at=now, updated_at=now, resolved_at=None,
                 window_start=now - 60, window_end=now, count=40, negatives=30, share=0.75, baseline_mean=0.1,
                 baseline_std=0.05, z=13.0, peak_z=13.0, windows=1, examples=(), model_versions=("v1",))


def run(setup: str, n: int, slow_s: float, concurrency: int, home: Path) -> dict:
    healthy = Receiver()
    other = Receiver(delay_s=slow_s) if setup == "slow" else None
    urls = [healthy.url] + ([other.url] if other else []) + ([f"http://127.0.0.1:{free_ports(1)[0]}/hook"]
                                                              if setup == "down" else [])
    settings = Settings(home=home, store="chdb", chdb_path=home / f"chdb-{setup}", webhook_secret=SecretStr(TEST_SECRET),
                        webhook_concurrency=concurrency, alert_tick_s=0.05, webhook_timeout_s=slow_s + 5)
    store = ChdbStore(settings)
    store.open()
    migrate(store, [alert_tables])
    rules = RuleSet(rules=(Rule(name="bench", key=("topic",), window_s=60, group_wait_s=0,
                                webhooks=tuple(WebhookTarget(url=u) for u in urls)),))
    dispatcher = Dispatcher(settings, rules, AlertRepo(store))
    dispatcher.start()
    submitted = time.time()
    dispatcher.submit([AlertEvent("opened", _alert(i, submitted)) for i in range(n)])
    try:
        healthy.wait_for(lambda r: len(r.accepted) >= n, timeout=600)
        seconds = time.time() - submitted
        latencies = sorted(int(r.headers["webhook-timestamp"]) - int(submitted) for r in healthy.accepted.values())
        got_other = len(other.accepted) if other else 0
    finally:
        dispatcher.stop()
        store.close()
        healthy.stop()
        if other:
            other.stop()
    return {"setup": setup, "notifications": n, "seconds": round(seconds, 3), "healthy_per_s": round(n / seconds, 1),
            "healthy_latency_p50_s": statistics.median(latencies), "healthy_latency_max_s": latencies[-1],
            "other_delivered_meanwhile": got_other, "concurrency": concurrency, "slow_s": slow_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notifications", type=int, default=200)
    parser.add_argument("--slow-s", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=Settings().webhook_concurrency)
    parser.add_argument("--json", action="store_true", help="one JSON object per set-up")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(setup, args.notifications, args.slow_s, args.concurrency, Path(tmp))
                   for setup in ("alone", "slow", "down")]
    if args.json:
        for r in results:
            print(json.dumps(r))
        return
    base = results[0]["healthy_per_s"]
    print(f"{args.notifications} notifications, outbox in chDB, {args.concurrency} requests in flight per receiver")
    print(f"{'set-up':<34} {'healthy notif/s':>15} {'vs alone':>9} {'p50 / max latency':>18} {'other got':>10}")
    labels = {"alone": "healthy receiver alone", "slow": f"+ one answering after {args.slow_s:g} s",
              "down": "+ one with its port closed"}
    for r in results:
        print(f"{labels[r['setup']]:<34} {r['healthy_per_s']:>15,.1f} {r['healthy_per_s'] / base:>8.2f}x "
              f"{r['healthy_latency_p50_s']:>9} s / {r['healthy_latency_max_s']:>2} s {r['other_delivered_meanwhile']:>10}")


if __name__ == "__main__":
    main()
