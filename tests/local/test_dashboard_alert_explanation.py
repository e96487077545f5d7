"""The Alerts page shows an alert's explanation: computed by the real Explainer from what chDB holds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from streamlit.testing.v1 import AppTest

from riskpulse.dashboards import common
from riskpulse.streams.alerts.explain import Explainer
from tests.explain_store_checks import RULES, START, _alert, check_explanation
from tests.fixtures.dashboard import dashboard_process, store_alert


def _alerts_page() -> None:
    from riskpulse.dashboards.views import alerts

    alerts.render()


@pytest.fixture
def explained(monkeypatch, chdb_store, chdb_settings) -> Iterator[dict]:
    check_explanation(chdb_store)  # stores the corpus: calm windows, then Wells Fargo's turn
    alert = _alert({"entity": "WFC"}, "ent")
    why = Explainer(chdb_store, RULES)(alert)
    store_alert(chdb_store, replace(alert, explanation=why, count=24, negatives=24, share=1.0, z=9.0, peak_z=9.0))
    with dashboard_process(monkeypatch, chdb_settings):
        yield why


def test_alert_page_shows_why_it_fired(explained):
    at = AppTest.from_function(_alerts_page, default_timeout=60).run()
    assert not at.exception, at.exception
    assert any(m.value == "#### Why it fired" for m in at.markdown)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Negative share, window vs baseline"] == "100%"
    assert metrics["Messages, window vs baseline"] == str(explained["window"]["messages"])
    tables = [t.value for t in at.dataframe]
    entities = next(t for t in tables if "name" in t.columns and "id" in t.columns)
    assert list(entities["id"])[0] == "WFC"
    text = "\n".join(m.value for m in at.markdown)
    assert all(f"`{t['term']}`" in text for t in explained["terms"])
    assert all(e["text"] in text for e in explained["examples"])
    assert "8 copies" in text  # the syndicated story, shown once


def test_alerts_page_offers_the_daily_digest_as_csv_and_xlsx(explained):
    at = AppTest.from_function(_alerts_page, default_timeout=60).run()
    day = at.sidebar.date_input(key="digest_day")
    day.set_value(datetime.fromtimestamp(START, timezone.utc).date()).run()
    assert not at.exception, at.exception
    caption = next(c.value for c in at.sidebar.caption if "watched entities" in c.value)
    assert caption.startswith("2 watched entities") and caption.endswith("1 alert(s)")  # WFC and JPM; WFC's alert
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download CSV", "Download XLSX"]


def test_an_entity_alerts_chart_and_examples_count_only_messages_naming_it(explained):
    from riskpulse.dashboards import queries

    db = common.store()
    start, end = (datetime.fromtimestamp(t, timezone.utc) for t in (START, START + 600))
    series = queries.key_series(db, start, end, 600, key={"entity": "WFC"})
    assert [r["messages"] for r in series] == [explained["window"]["messages"]]  # not JPMorgan's four
    around = queries.messages_around(db, start, end, key={"entity": "JPM", "sentiment": "negative"})
    assert around == []  # JPMorgan's messages in the window are all neutral
    assert len(queries.messages_around(db, start, end, key={"entity": "JPM"})) == 4
