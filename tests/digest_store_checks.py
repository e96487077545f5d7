"""The daily digest from a real store, run on chDB (tests/local) and clickhouse-server 18.16 (tests/integration):
messages and mentions through the worker's own functions, an alert through the alerts' repo."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from riskpulse.core.schema import ScoredMessage
from riskpulse.core.settings import Settings
from riskpulse.streams.alerts.detector import Alert
from riskpulse.streams.alerts.digest import run_digest
from riskpulse.streams.enrich.entities import Catalogue, EntityExtractor
from riskpulse.streams.store import entities
from riskpulse.streams.store.alerts import AlertRepo
from riskpulse.streams.store.backends import Store
from riskpulse.streams.store.messages import message_row
from riskpulse.streams.worker.batching import with_entities

DAY = date(2026, 3, 9)
DAY_START = datetime(2026, 3, 9, tzinfo=timezone.utc)


def _msg(i: int, at: datetime, text: str, negative: bool, topic: str) -> ScoredMessage:
    return ScoredMessage(id=f"d-{i}", source="news", channel="wire", ts=at, text=text, topic=topic, topic_prob=0.9,
                         sentiment="negative" if negative else "neutral", sentiment_prob=0.8, model_version="v1")


def corpus() -> list[ScoredMessage]:
    """A week of calm Wells Fargo and JPMorgan news (2 a day, 1 in 7 negative), then a day on which Wells Fargo
    turns (12 messages, 9 negative); one message the day after, outside the digest."""
    out = []
    for d in range(1, 8):
        for k in range(2):
            at = DAY_START - timedelta(days=d) + timedelta(hours=3 + k)
            out.append(_msg(len(out), at, f"Wells Fargo opens branch {d}-{k}", (d + k) % 7 == 0, "Banks"))
            out.append(_msg(len(out), at, f"JPMorgan hires team {d}-{k}", False, "Banks"))
    for k in range(12):
        out.append(_msg(len(out), DAY_START + timedelta(hours=k), f"Wells Fargo outage day, report {k}", k < 9, "Banks"))
    out.append(_msg(len(out), DAY_START + timedelta(hours=2), "Fed holds rates", False, "Macro"))
    out.append(_msg(len(out), DAY_START + timedelta(days=1, hours=1), "Wells Fargo next day", True, "Banks"))
    return out


def check_digest(store: Store, home: Path) -> None:
    tagged, mentions = with_entities(corpus(), EntityExtractor(Catalogue.load()))
    store.write_batch("messages", [message_row(m) for m in tagged])
    store.write_batch(entities.ENTITY_MENTIONS_TABLE, mentions)
    AlertRepo(store).save_alerts([Alert(
        alert_id="alt_digest", rule="ent", key=json.dumps({"entity": "WFC"}), labels={"entity": "WFC"}, severity="critical",
        status="resolved", opened_at=(DAY_START + timedelta(hours=8)).timestamp(), updated_at=0, resolved_at=None,
        window_start=0, window_end=0, count=0, negatives=0, share=0, baseline_mean=0, baseline_std=0, z=0, peak_z=0,
        windows=1, examples=(), model_versions=())])

    html_path, csv_path = run_digest(Settings(home=home), DAY, store=store)
    rows = {(r["kind"], r["id"]): r for r in csv.DictReader(csv_path.open(encoding="utf-8"))}
    wfc = rows[("entity", "WFC")]
    assert (wfc["messages"], wfc["negatives"], wfc["negative_share"]) == ("12", "9", "0.75")
    week_neg = sum((d + k) % 7 == 0 for d in range(1, 8) for k in range(2))
    assert wfc["week_messages_per_day"] == "2.0" and float(wfc["week_negative_share"]) == round(week_neg / 14, 4)
    assert wfc["alerts"] == "1" and float(wfc["volume_change"]) == 5.0
    jpm = rows[("entity", "JPM")]
    assert (jpm["messages"], jpm["week_messages_per_day"], jpm["alerts"], jpm["volume_change"]) == ("0", "2.0", "0", "-1.0")
    banks, macro = rows[("topic", "Banks")], rows[("topic", "Macro")]
    assert (banks["messages"], banks["negatives"], banks["week_messages_per_day"]) == ("12", "9", "4.0")
    assert (macro["messages"], macro["volume_change"]) == ("1", "")
    assert list(rows)[0] == ("entity", "WFC")  # the entity with an alert leads
    page = html_path.read_text(encoding="utf-8")
    assert html_path.parent == home / "digests" and "Wells Fargo" in page and "1 alert(s) opened" in page
