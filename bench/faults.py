"""The fault report: every fault of issue 13 on the real parts, one row each.

    python bench/faults.py [--only NAME ...] [--messages 6000] [--clickhouse-down-s 60] [--registry DIR] [--json]

Each fault runs on its own broker + clickhouse-server (started here on free ports), with real `riskpulse
worker` / `riskpulse alerts run` processes and a real HTTP receiver on 127.0.0.1; the scenarios are the fault
suite's (tests/faults/scenarios.py). The webhook rows (receiver down an hour on an injected clock; slow,
500 and 429 receivers; two alert services by mistake) run the delivery tests of tests/integration with
receivers that report what they heard.

Columns: produced (records the broker acknowledged), stored (distinct ids in messages FINAL), lost,
duplicated (rows of messages FINAL beyond one per id + ids emitted twice on the scored topic), dead
(dead-lettered hostile records), alerts expected / delivered (heard firing) / duplicated (an alert and status
accepted twice), recovery (seconds from the part's return until everything produced before it is stored).
For the webhook rows the alert columns count (receiver, alert) pairs. ``--json``: one object per fault.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the scenarios are shared with the fault suite (tests.faults)

from tests.faults import scenarios  # noqa: E402
from tests.faults.scenarios import FaultResult, FaultRun  # noqa: E402


# --- the webhook rows: the delivery tests, with receivers that tell what they heard ------------------------
def _delivery_row(name: str, root: Path, call) -> FaultResult:
    """Run one delivery test function on a fresh stack; count what its receivers accepted."""
    from tests.fixtures import http_receiver
    from tests.fixtures.stack import empty_tables
    from riskpulse.streams.store.backends import ServerStore
    from riskpulse.streams.store.migrate import migrate

    heard_by: list[http_receiver.Receiver] = []

    class CountingReceiver(http_receiver.Receiver):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            heard_by.append(self)

    result = FaultResult(name)
    with FaultRun(root, "delivery") as run:
        store = ServerStore(run.base)
        store.open()
        empty_tables(store)
        migrate(store)
        started = time.monotonic()
        try:
            call(run, store, CountingReceiver)
            result.notes["test"] = "passed"
        except AssertionError as exc:
            result.notes["test"] = f"FAILED: {str(exc).splitlines()[0][:300]}"
        finally:
            store.close()
        result.notes["wall_s"] = round(time.monotonic() - started, 1)
    fired: set[tuple[int, str]] = set()
    for i, receiver in enumerate(heard_by):
        ok = [r for r in receiver.requests if r.status == 200 and r.verified]
        heard = Counter((a["alert_id"], a["status"]) for r in ok for a in r.json["data"]["alerts"])
        result.alerts_duplicated += scenarios.duplicate_notifications(receiver)
        fired |= {(i, a) for a, s in heard if s == "open"}
        result.alerts_expected += len({a for a, _ in heard})
    result.alerts_delivered = len(fired)
    result.notes["receivers"] = len(heard_by)
    return result


def webhook_outage(root: Path) -> FaultResult:
    from tests.integration import test_alerts_delivery as delivery

    def call(run, store, receiver_cls):
        delivery.Receiver = receiver_cls
        delivery.test_receiver_down_for_an_hour_then_up_gets_every_notification_once_in_order(run.base, store)

    result = _delivery_row("webhook receiver down 1 h (injected clock)", root, call)
    result.notes["recovery"] = "the hour is simulated: the dispatcher's clock jumps 15 s per step"
    return result


def slow_receivers(root: Path) -> FaultResult:
    from tests.integration import test_alerts_delivery as delivery

    def call(run, store, receiver_cls):
        delivery.Receiver = receiver_cls
        delivery.test_slow_failing_and_rate_limited_receivers_do_not_hold_up_a_healthy_one(run.base, store)

    return _delivery_row("receivers slow (10 s), 500, 429 Retry-After", root, call)


def two_alert_services(root: Path) -> FaultResult:
    from tests.integration import test_alerts as alerts_tests

    def call(run, store, receiver_cls):
        receiver = receiver_cls()
        try:
            alerts_tests.test_two_alert_services_by_mistake_one_delivers_and_the_other_takes_over(
                run.base, scenarios.corpus(), receiver, root / "two-services")
        finally:
            receiver.stop()

    (root / "two-services").mkdir(parents=True, exist_ok=True)
    return _delivery_row("two alert services by mistake (then one killed)", root, call)


def quick_registry() -> Path:
    """The fault suite's quick model (trained once, cached under .riskpulse/test-cache)."""
    from tests.fixtures.models import quick_registry as fixture

    return fixture.__wrapped__()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="fault names to run (default: all); see --list")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--messages", type=int, default=6000, help="good messages per streaming fault")
    parser.add_argument("--clickhouse-down-s", type=float, default=60.0)
    parser.add_argument("--registry", type=Path, default=None, help="registry with a current model (default: the quick one)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep every fault's logs and data here (default: a temporary dir)")
    parser.add_argument("--json", action="store_true", help="one JSON object per fault")
    parser.add_argument("--table-from", type=Path, default=None, help="print the table of a saved --json run and stop")
    args = parser.parse_args()
    if args.table_from:
        rows = [json.loads(line) for line in args.table_from.read_text().splitlines() if line.strip()]
        print_table([FaultResult(**{k: v for k, v in row.items() if k != "duplicated"}) for row in rows])
        return
    n = args.messages
    faults = {
        "broker-sigterm": lambda root: scenarios.broker_restart(root, signal.SIGTERM, n=n),
        "broker-kill9": lambda root: scenarios.broker_restart(root, signal.SIGKILL, n=n),
        "clickhouse-down": lambda root: scenarios.clickhouse_down(root, down_s=args.clickhouse_down_s, n=n),
        "webhook-outage": webhook_outage,
        "slow-receivers": slow_receivers,
        "worker-sigterm": lambda root: scenarios.rolling_deploy(root, n=n),
        "disk": lambda root: scenarios.disk_faults(root, args.registry or quick_registry()),
        "hostile": lambda root: scenarios.hostile_stream(root, n_good=max(n, 10_000), clean_baseline=True,
                                                         registry=args.registry or quick_registry()),
        "hostile-null-model": lambda root: scenarios.hostile_stream(root, n_good=max(n, 10_000), clean_baseline=True),
        "two-alert-services": two_alert_services,
        "backlog": lambda root: scenarios.backlog_replay(root, n=n),
    }
    if args.list:
        print("\n".join(faults))
        return
    chosen = args.only or list(faults)
    unknown = set(chosen) - set(faults)
    if unknown:
        parser.error(f"unknown fault(s) {sorted(unknown)}; known: {', '.join(faults)}")
    results: list[FaultResult] = []
    with (contextlib.nullcontext(str(args.workdir)) if args.workdir else
          tempfile.TemporaryDirectory(prefix="riskpulse-faults-")) as tmp:
        for name in chosen:
            started = time.monotonic()
            try:
                result = faults[name](Path(tmp) / name)
            except Exception as exc:  # noqa: BLE001 - one fault's crash is a row of the report, not its end
                result = FaultResult(name, notes={"error": f"{type(exc).__name__}: {str(exc)[:500]}",
                                                  "trace": traceback.format_exc()[-2000:]})
            result.notes["scenario_s"] = round(time.monotonic() - started, 1)
            results.append(result)
            if args.json:
                print(json.dumps(result.as_json(), default=str), flush=True)
            else:
                print(f"done: {result.fault} ({result.notes['scenario_s']} s)", file=sys.stderr, flush=True)
    if not args.json:
        print_table(results)


def bar_met(r: FaultResult) -> bool:
    """The issue's bar: 0 lost, 0 counted twice, every expected alert heard, none twice, good records' throughput
    among hostile ones within 20% of a clean run; the run itself whole. Records the scored topic carries twice
    (at least once: redelivered after a lost group session) are shown but not counted twice by anyone: the
    store keeps one row per id and the detector counts an id once per window."""
    whole = "error" not in r.notes and not str(r.notes.get("test", "")).startswith("FAILED")
    return whole and r.lost == 0 and r.store_duplicated == 0 and r.alerts_delivered == r.alerts_expected \
        and r.alerts_duplicated == 0 and not r.notes.get("hostile_not_as_schema_says") \
        and r.notes.get("good_throughput_ratio", 1.0) >= 0.8


def print_table(results: list[FaultResult]) -> None:
    head = ("fault", "produced", "stored", "lost", "dup store+scored", "dead", "alerts exp", "deliv", "dup",
            "recovery s", "bar met")
    rows = [(r.fault, r.produced, r.stored, r.lost, f"{r.store_duplicated}+{r.scored_duplicated}", r.dead_lettered,
             r.alerts_expected, r.alerts_delivered, r.alerts_duplicated,
             "-" if r.recovery_s is None else f"{r.recovery_s:.1f}", "yes" if bar_met(r) else "NO")
            for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in (head, *rows):
        print("  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(row, widths))))
    print()
    for r in results:
        notes = {k: v for k, v in r.notes.items() if k not in ("trace", "notifications")}
        print(f"{r.fault}: {json.dumps(notes, default=str)}")


if __name__ == "__main__":
    main()
