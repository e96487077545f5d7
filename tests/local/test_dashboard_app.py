"""Every page renders over a filled chDB store (Streamlit's AppTest), and the login gate holds."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from riskpulse.dashboards import auth, common
from riskpulse.models.training.evaluation import report
from riskpulse.models.serving.registry import Registry
from riskpulse.core.settings import get_settings
from tests.fixtures.dashboard import dashboard_process, spike_alert, store_alert

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
TIMEOUT = 60


def _page(name: str) -> None:
    import importlib

    importlib.import_module(f"riskpulse.dashboards.views.{name}").render()


@pytest.fixture
def app_settings(monkeypatch, filled_store, chdb_settings) -> Iterator[list]:
    """The app's own store (common.store) opens the test's chDB; loopback binding, no login."""
    store, messages = filled_store
    store_alert(store, spike_alert(messages))
    with dashboard_process(monkeypatch, chdb_settings):
        yield messages


def _values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_overview_shows_totals_and_charts(app_settings):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Overview"
    counts = Counter(m.sentiment for m in app_settings)
    metrics = _values(at)
    assert metrics["Messages"] == f"{len(app_settings):,}"
    assert metrics["Negative"] == f"{counts['negative']:,}"
    assert metrics["Positive"] == f"{counts['positive']:,}"
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3


def test_time_range_picker_narrows_the_totals(app_settings):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    before = datetime.now(timezone.utc)
    at.sidebar.selectbox[0].select("Last hour").run()
    after = datetime.now(timezone.utc)
    assert not at.exception, at.exception
    # A message right at the one-hour edge may fall either side while the page renders.
    possible = {sum(m.ts >= t - timedelta(hours=1, seconds=1) for m in app_settings) for t in (before, after)}
    possible |= {sum(m.ts >= t - timedelta(hours=1) for m in app_settings) for t in (before, after)}
    assert int(_values(at)["Messages"]) in possible
    assert int(_values(at)["Messages"]) < len(app_settings)


@pytest.mark.parametrize("page", ["alerts", "explore", "label", "models"])
def test_each_page_renders(app_settings, page):
    at = AppTest.from_function(_page, args=(page,), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert at.title[0].value == page.capitalize()


def test_alerts_page_lists_the_alert_and_acks_it(app_settings):
    at = AppTest.from_function(_page, args=("alerts",), default_timeout=TIMEOUT).run()
    assert "topic=Macro|source=news" in at.subheader[0].value
    at.text_input(key="ack_user").input("analyst-3")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("acknowledged" in s.value for s in at.success)
    assert any("analyst-3" in i.value for i in at.info)


def test_explore_injection_string_returns_nothing(app_settings):
    at = AppTest.from_function(_page, args=("explore",), default_timeout=TIMEOUT).run()
    at.text_input[0].input("'; DROP TABLE messages; --")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("**0** matching" in md.value for md in at.markdown)
    rows = common.store().query("SELECT count() AS n FROM messages FINAL")
    assert rows[0]["n"] == len(app_settings)


def test_label_page_stores_a_label_with_who(app_settings):
    at = AppTest.from_function(_page, args=("label",), default_timeout=TIMEOUT).run()
    least_sure = min(app_settings, key=lambda m: (m.sentiment_prob, -m.ts.timestamp()))
    at.text_input(key="label_user").input("analyst-4").run()
    assert least_sure.text[:40] in at.text[0].value
    first = at.selectbox[0]
    first.select("negative")
    at.button[0].click().run()
    assert not at.exception, at.exception
    stored = common.store().query("SELECT message_id, task, label, labeled_by FROM labels")
    assert len(stored) == 1 and stored[0]["labeled_by"] == "analyst-4" and stored[0]["label"] == "negative"
    assert (stored[0]["task"], stored[0]["message_id"]) == ("sentiment", least_sure.id)


def test_login_required_refuses_wrong_password(app_settings, monkeypatch):
    monkeypatch.setenv("RISKPULSE_DASHBOARD_REQUIRE_LOGIN", "true")
    monkeypatch.setenv("RISKPULSE_DASHBOARD_USERS", f"ann:{auth.hash_password('right-pw', iterations=1000)}")
    get_settings.cache_clear()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.metric and at.title[0].value == "RiskPulse"
    at.text_input[0].input("ann")
    at.text_input[1].input("wrong-pw")
    at.button[0].click().run()
    assert at.error[0].value == "Wrong user or password."
    assert not at.metric
    at.text_input[1].input("right-pw")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Overview" and _values(at)["Messages"] == f"{len(app_settings):,}"


def test_off_loopback_without_users_shows_the_fix(app_settings, monkeypatch):
    st_config.set_option("server.address", "0.0.0.0")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert "RISKPULSE_DASHBOARD_USERS" in at.error[0].value and not at.metric


def test_models_page_shows_current_version_figures_and_history(app_settings, monkeypatch, tmp_path):
    registry = Registry(tmp_path / "registry")
    gold = ["negative", "neutral", "positive", "neutral", "negative", "positive"]
    for version, predicted in (("20261101-000000-aaaaaa", ["neutral"] * 6), ("20261120-000000-bbbbbb", gold[:5] + ["neutral"])):
        result = report(gold, predicted)
        with registry.write(version) as out:
            metrics = {"score": result["macro_f1"], "validation": {"fin-sentiment": result}}
            (out / "metrics.json").write_text(json.dumps(metrics))
            (out / "reports").mkdir()
            (out / "reports" / "fin-sentiment.json").write_text(json.dumps(result))
    registry.promote("20261120-000000-bbbbbb")
    monkeypatch.setenv("RISKPULSE_REGISTRY_DIR", str(registry.root))
    get_settings.cache_clear()
    at = AppTest.from_function(_page, args=("models",), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert _values(at)["Current model version"] == "20261120-000000-bbbbbb"
    assert _values(at)["Accuracy"] == f"{5 / 6:.3f}"
    history = at.dataframe[0].value
    assert list(history["version"]) == ["20261120-000000-bbbbbb", "20261101-000000-aaaaaa"]
    assert list(history["current"]) == [True, False]
    assert len(at.get("vega_lite_chart")) == 1
