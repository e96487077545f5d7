"""Rebuild the bundled demo sample from the labeled sets in ../shared/data.

Only held-out rows (validation/test splits) are used, so the demo never shows the
model text it was trained on. Run: python data/sample/build.py [SHARED_DATA_DIR]

Then the planted story the demo is for (``meta.planted`` marks each row; SOURCE.md says how): Wells Fargo
named steadily from 09:00 to 14:00 by real held-out tweets about other companies with the name swapped
(tests/planted.py), and one 10-minute window (12:10) in which its news turns: hand-written headlines and
customer posts about an outage and its fallout. The 3,000 rows before them are unchanged by the planting.
"""

from __future__ import annotations

import csv
import json
import random
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
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
    out += planted(shared, {m["text"] for m in out})
    out.sort(key=lambda m: m["ts"])
    target = Path(__file__).with_name("messages.jsonl")
    with open(target, "w", encoding="utf-8") as fh:
        for msg in out:
            fh.write(json.dumps(msg, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} messages to {target}")


# The planted story: aligned to the rule windows (10 minutes; the demo shifts times by whole windows).
PLANTED_ENTITY = ("WFC", "Wells Fargo", "WFC")
STEADY_FROM, STEADY_TO, STEADY_PER_WINDOW = timedelta(hours=3), timedelta(hours=7), 16
# steady coverage is routine news: tweets with words of bad news are left out of its pool
BAD_NEWS = re.compile(r"\b(fall|fell|drop|cut|loss|lower|down|miss|weak|warn|slump|plunge|sink|sank|tumble|slide|"
                      r"crash|sell|short|probe|lawsuit|sue|fine|recession|risk|fear|concern|bear|layoff|decline)", re.I)
BURST_AT = timedelta(hours=6, minutes=10)
WINDOW = timedelta(minutes=10)
BURST_NEWS = [
    "Wells Fargo shares slide 6% after regulators open a probe into frozen customer accounts",
    "Wells Fargo hit with $1.2 billion penalty over mishandled mortgage escrow accounts",
    "Wells Fargo outage leaves customers unable to log in or see their deposits for hours",
    "$WFC falls to a session low as reports of a nationwide systems failure spread",
    "Senators demand answers from Wells Fargo's CEO after thousands of accounts are frozen",
    "Ratings agency puts Wells Fargo on review for downgrade, citing operational risk",
    "Wells Fargo says a glitch delayed direct deposits; customers report overdraft fees",
    "Analysts cut Wells Fargo price targets as the outage raises questions over tech spending",
    "Wells Fargo faces a class action over missing payroll deposits, lawyers say",
    "CFPB looking into Wells Fargo deposit failures, people familiar with the matter say",
    "Wells Fargo stock on track for its worst day since 2020",
    "Wells Fargo apologizes as its mobile app and ATMs stay down into the afternoon",
    "Options traders pile into Wells Fargo puts after the outage headlines",
    "Wells Fargo's asset cap could stay longer after the latest operational failure, analysts warn",
    "Fed said to be reviewing Wells Fargo's incident response after the deposit outage",
    "Bank stocks dip, led by Wells Fargo, after reports of widespread account errors",
    "Wells Fargo customers flood social media with complaints over vanished balances",
    "Wells Fargo downgraded to sell at a major brokerage on mounting regulatory risk",
]
BURST_CUSTOMERS = [
    "My Wells Fargo account shows a zero balance and my paycheck is missing. Nobody answers the phone.",
    "Wells Fargo app has been down all morning and I can't pay my rent",
    "I was charged three overdraft fees by Wells Fargo because my direct deposit never posted",
    "Been on hold with Wells Fargo for two hours and my card was declined at the grocery store",
    "Wells Fargo froze my account without any notice and the branch can't tell me why",
    "Wells Fargo please fix this, my mortgage payment bounced because of your outage",
    "My Wells Fargo debit card stopped working and the app says my account doesn't exist",
    "Why did Wells Fargo reverse my deposit? I need that money today",
    "Wells Fargo customer service hung up on me twice. Still no access to my savings",
    "Wells Fargo charged me a late fee for a payment their own system failed to send",
    "Closing my Wells Fargo account after this mess, the third problem this year",
    "Wells Fargo online banking keeps erroring out and my transfer is gone",
    "Has anyone else's Wells Fargo account been emptied today? Mine shows pending charges I never made",
    "Third day without my paycheck because Wells Fargo lost the deposit. Unacceptable.",
    "Wells Fargo says wait 5-7 business days to restore my balance, I have bills due tomorrow",
    "The Wells Fargo branch on Main St turned people away this morning, tellers said systems were down",
    "I can't even see my statements in the Wells Fargo app, just an error page",
    "Wells Fargo double charged my car payment and now I'm overdrawn",
    "Filed a complaint against Wells Fargo with the CFPB, they refuse to refund the fees from their outage",
    "Wells Fargo locked me out after the outage and identity verification keeps failing",
    "Small business owner here: Wells Fargo held my payroll deposits and my staff didn't get paid",
    "Wells Fargo chat support just keeps looping, nobody can explain where my money went",
]


def planted(shared: Path, used: set[str]) -> list[dict]:
    """The planted story's rows (see the module docstring), each marked ``meta.planted``."""
    sys.path.insert(0, str(REPO))  # tests/planted.py (this package is floor 0: the extractor comes through it)
    from tests.planted import Target, retargeted, shipped_extractor

    rng = random.Random(SEED + 14)
    extractor = shipped_extractor()
    target = Target(*PLANTED_ENTITY)
    with open(shared / "twitter-financial-news-topic/validation.csv", newline="", encoding="utf-8") as fh:
        pool = [row["text"] for row in csv.DictReader(fh) if row["text"] not in used and not BAD_NEWS.search(row["text"])]
    windows = int((STEADY_TO - STEADY_FROM) / WINDOW)
    steady = retargeted(pool, extractor, target, windows * STEADY_PER_WINDOW, rng)
    rows = []

    def row(text: str, ts: datetime, source: str, channel: str, kind: str) -> dict:
        assert {m.entity_id for m in extractor.extract(text)} == {target.entity_id}, text
        return {"source": source, "channel": channel, "lang": "en", "ts": ts.isoformat(), "text": text,
                "meta": {"planted": kind, "about": target.entity_id}}

    for i, text in enumerate(steady):
        window = START + STEADY_FROM + (i // STEADY_PER_WINDOW) * WINDOW
        rows.append(row(text, window + timedelta(seconds=rng.uniform(0, WINDOW.total_seconds())),
                        "news", "twitter-financial-news", "steady"))
    burst = [(t, "news", "twitter-financial-news") for t in BURST_NEWS] + [(t, "customer", "banking-app") for t in BURST_CUSTOMERS]
    for text, source, channel in burst:
        rows.append(row(text, START + BURST_AT + timedelta(seconds=rng.uniform(20, WINDOW.total_seconds() - 20)),
                        source, channel, "burst"))
    return rows


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3] / "shared" / "data")
