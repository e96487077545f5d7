"""The daily digest without a store: the day-vs-week maths, ordering, HTML/CSV/XLSX, and mail only when configured."""

import csv
import io
import json
from datetime import date, datetime, timezone

import pytest

from riskpulse.core.settings import Settings
from riskpulse.streams.alerts import digest as dg

DAY = date(2026, 11, 26)
START = int(datetime(2026, 11, 26, tzinfo=timezone.utc).timestamp())


class RoutedStore:
    """Answers the digest's three reads by the table each names."""

    def __init__(self, entities, topics, alerts):
        self.answers = {"entity_mentions": entities, "FROM alerts": alerts, "messages FINAL": topics}
        self.params = []

    def query(self, sql, params=None):
        self.params.append(params)
        return next(rows for marker, rows in self.answers.items() if marker in sql)


def _store():
    entities = [
        {"entity_id": "WFC", "name": "Wells Fargo", "messages": 60, "negatives": 36, "week_messages": 140, "week_negatives": 14},
        {"entity_id": "JPM", "name": "JPMorgan", "messages": 20, "negatives": 2, "week_messages": 140, "week_negatives": 14},
    ]
    topics = [{"topic": "Banks", "messages": 100, "negatives": 30, "week_messages": 0, "week_negatives": 0},
              {"topic": "Macro", "messages": 50, "negatives": 5, "week_messages": 350, "week_negatives": 35}]
    alerts = [{"alert_id": "a1", "rule": "ent", "labels": json.dumps({"entity": "WFC"}), "severity": "critical"},
              {"alert_id": "a2", "rule": "topic", "labels": json.dumps({"topic": "Banks"}), "severity": "warning"},
              {"alert_id": "a3", "rule": "ch", "labels": json.dumps({"topic": "Banks", "channel": "app"}), "severity": "info"}]
    return RoutedStore(entities, topics, alerts)


WATCHED = {"WFC": "Wells Fargo", "JPM": "JPMorgan", "GS": "Goldman Sachs"}


def test_rows_compare_the_day_with_the_week_before():
    store = _store()
    d = dg.build_digest(store, DAY, WATCHED, now=datetime(2026, 11, 27, 6, tzinfo=timezone.utc))
    assert store.params[0]["ids"] == ("GS", "JPM", "WFC") and store.params[0]["day"] == START
    assert [(r.kind, r.id) for r in d.rows] == [("entity", "WFC"), ("entity", "JPM"), ("topic", "Banks"), ("topic", "Macro")]
    wfc = d.rows[0]
    assert (wfc.messages, wfc.negative_share, wfc.week_messages_per_day, wfc.week_negative_share) == (60, 0.6, 20.0, 0.1)
    assert wfc.share_change == 0.5 and wfc.volume_change == 2.0 and wfc.alerts == 1
    banks = d.rows[2]
    assert banks.alerts == 2 and banks.volume_change is None  # new this week: no average to compare with
    assert d.rows[3].share_change == 0.0 and d.rows[3].volume_change == 0.0
    # GS: watched but silent all week, no alert: left out rather than a row of zeros


def test_html_csv_and_xlsx_carry_the_same_rows():
    d = dg.build_digest(_store(), DAY, WATCHED)
    page = dg.to_html(d)
    assert "RiskPulse daily digest — 2026-11-26" in page and "3 alert(s) opened" in page
    assert "Wells Fargo (WFC)" in page and "+50%" in page and "<style" not in page  # inline styles only
    rows = list(csv.DictReader(io.StringIO(dg.to_csv(d))))
    assert [(r["kind"], r["id"], r["alerts"]) for r in rows] == [
        ("entity", "WFC", "1"), ("entity", "JPM", "0"), ("topic", "Banks", "2"), ("topic", "Macro", "0")]
    assert rows[0]["day"] == "2026-11-26" and rows[2]["volume_change"] == ""
    openpyxl = pytest.importorskip("openpyxl")
    sheet = openpyxl.load_workbook(io.BytesIO(dg.to_xlsx(d))).active
    values = list(sheet.values)
    assert values[0] == ("day", *dg.COLUMNS) and values[1][:3] == ("2026-11-26", "entity", "WFC")


def test_written_files_and_mail_only_when_configured(tmp_path, monkeypatch):
    d = dg.build_digest(_store(), DAY, WATCHED)
    html_path, csv_path = dg.write_digest(d, tmp_path / "digests")
    assert html_path.name == "digest-2026-11-26.html" and csv_path.read_text().startswith("day,kind,id")
    assert not list((tmp_path / "digests").glob("*.tmp"))
    assert dg.send(d, Settings(smtp_host="", digest_to=["r@x.example"])) is False
    assert dg.send(d, Settings(smtp_host="smtp.x.example", digest_to=[])) is False

    sent = []

    class FakeSMTP:
        def __init__(self, host, port, timeout):
            sent.append(("connect", host, port))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def starttls(self):
            sent.append(("starttls",))

        def login(self, user, password):
            sent.append(("login", user, password))

        def send_message(self, msg):
            sent.append(("send", msg["To"], msg["Subject"], [p.get_content_type() for p in msg.walk()]))

    monkeypatch.setattr(dg.smtplib, "SMTP", FakeSMTP)
    settings = Settings(smtp_host="smtp.x.example", smtp_port=2525, smtp_user="u", smtp_password="p",
                        digest_to=["a@x.example", "b@x.example"])
    assert dg.send(d, settings) is True
    assert sent[:3] == [("connect", "smtp.x.example", 2525), ("starttls",), ("login", "u", "p")]
    assert sent[3][1] == "a@x.example, b@x.example" and "3 alert(s)" in sent[3][2]
    assert {"text/plain", "text/html", "text/csv"} <= set(sent[3][3])
