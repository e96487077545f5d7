"""The Entities page over a chDB store of real messages with their mentions and a planted JPMorgan burst (AppTest)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from riskpulse.core.schema import ScoredMessage
from riskpulse.streams.alerts.detector import Alert
from riskpulse.streams.enrich.entities import DEFAULT_WATCHLIST, Catalogue, EntityExtractor, watchlist_ids
from riskpulse.streams.store import entities
from riskpulse.streams.store.alerts import AlertRepo
from riskpulse.streams.store.messages import message_row
from riskpulse.streams.worker.batching import with_entities
from tests.fixtures.dashboard import dashboard_process

TIMEOUT = 60
BURST = 12


def _page() -> None:
    from riskpulse.dashboards.views import entities as page

    page.render()


def _planted(end: datetime) -> list[ScoredMessage]:
    """Negative JPMorgan news in the last 40 minutes, and a few neutral ones earlier."""
    def one(i: int, ts: datetime, sentiment: str, text: str) -> ScoredMessage:
        return ScoredMessage(id=f"jpm-{i}", source="news", channel="wire", ts=ts, text=text, topic="Financials",
                             topic_prob=0.9, sentiment=sentiment, sentiment_prob=0.9, model_version="test-v1")
    burst = [one(i, end - timedelta(minutes=3 * i + 1), "negative", f"JPMorgan hit by trading loss, report {i}")
             for i in range(BURST)]
    calm = [one(100 + i, end - timedelta(hours=2, minutes=10 * i), "neutral", f"JPMorgan opens branch {i}") for i in range(6)]
    return burst + calm


@pytest.fixture
def entity_store(monkeypatch, filled_store, chdb_settings) -> Iterator[list[ScoredMessage]]:
    store, messages = filled_store
    end = max(m.ts for m in messages)
    planted = _planted(end)
    tagged, rows = with_entities(messages + planted, EntityExtractor(Catalogue.load()))
    store.write_batch("messages", [message_row(m) for m in planted])
    store.write_batch(entities.ENTITY_MENTIONS_TABLE, rows)
    opened = (end - timedelta(minutes=10)).timestamp()
    AlertRepo(store).save_alerts([Alert(
        alert_id="alt_entity_jpm", rule="watchlist-entity-negative-spike", key=entities.alert_key("JPM"),
        labels={"entity": "JPM"}, severity="critical", status="open", opened_at=opened, updated_at=opened,
        resolved_at=None, window_start=opened - 600, window_end=opened, count=BURST, negatives=BURST, share=1.0,
        baseline_mean=0.1, baseline_std=0.05, z=18.0, peak_z=18.0, windows=1, examples=(), model_versions=("test-v1",),
    )])
    with dashboard_process(monkeypatch, chdb_settings):
        yield tagged


def test_movers_trend_messages_and_alerts_of_the_planted_entity(entity_store):
    at = AppTest.from_function(_page, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Entities"
    movers = at.dataframe[0].value
    assert movers.iloc[0]["entity_id"] == "JPM" and movers.iloc[0]["share"] == 1.0 and bool(movers.iloc[0]["watched"])
    assert set(movers["entity_id"]) <= {e for m in entity_store for e in m.entities}
    assert "JPMorgan Chase (JPM)" in at.subheader[1].value
    assert len(at.get("vega_lite_chart")) == 1
    shown = at.dataframe[1].value
    naming_jpm = [m for m in entity_store if "JPM" in m.entities]
    assert len(naming_jpm) >= BURST + 6 and len(shown) == len(naming_jpm)
    assert shown["ts"].is_monotonic_decreasing
    assert shown["text"].iloc[0] == max(naming_jpm, key=lambda m: m.ts).text
    assert at.dataframe[2].value["status"].tolist() == ["open"]


def test_picking_another_entity_and_watchlist_only(entity_store):
    at = AppTest.from_function(_page, default_timeout=TIMEOUT).run()
    watched = watchlist_ids(DEFAULT_WATCHLIST)
    unwatched = next(e for m in entity_store for e in m.entities if e not in watched)
    picker = at.selectbox(key="entity_pick")
    assert unwatched in picker.options or any(f"({unwatched})" in o for o in picker.options)
    picker.set_value(unwatched).run()
    assert not at.exception, at.exception
    assert f"({unwatched})" in at.subheader[1].value
    assert any("No entity alert" in i.value for i in at.info)

    at.sidebar.toggle[0].set_value(True).run()
    assert not at.exception, at.exception
    listed = set(at.dataframe[0].value["entity_id"])
    assert "JPM" in listed and listed <= watched
    assert all(f"({unwatched})" not in o for o in at.selectbox(key="entity_pick").options)
