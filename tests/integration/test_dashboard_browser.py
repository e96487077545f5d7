"""The dashboard in headless Debian Chromium, served by `streamlit run` over the real ClickHouse server.

The test fills the server with real texts (shared datasets) as scored messages and one alert,
starts the app the way `riskpulse dashboard` does, and drives it like an analyst: totals on
the overview, the alert and its ack, a search-box injection, a label, a refused login, and a viewer
who sees no Label page and no Acknowledge button (with the audit rows on the server).
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from riskpulse.dashboards import auth
from riskpulse.dashboards.cli import streamlit_command
from riskpulse.models.training.evaluation import report
from riskpulse.models.serving.registry import Registry
from riskpulse.streams.store.migrate import migrate
from riskpulse.core.settings import Settings
from riskpulse.streams.store.backends import ServerStore
from riskpulse.streams.store.messages import message_row
from tests.fixtures.dashboard import real_scored_messages, spike_alert, store_alert
from tests.fixtures.stack import ARTIFACTS, empty_tables, free_ports, settings_env

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 45_000
PASSWORD = "correct horse battery"
VIEWER_PASSWORD = "read only please"
CURRENT = "20261120-000000-bbbbbb"


@pytest.fixture(scope="module")
def filled(stack: Settings) -> Iterator[tuple[ServerStore, list]]:
    """160 real messages over the last 6 hours (5 redelivered) and one open alert, on the server."""
    store = ServerStore(stack)
    store.open()
    empty_tables(store)
    migrate(store)
    end = datetime.now(timezone.utc).replace(microsecond=0)
    messages = real_scored_messages(120, 40, end=end, span=timedelta(hours=6))
    store.write_batch("messages", [message_row(m) for m in messages])
    store.write_batch("messages", [message_row(m) for m in messages[:5]])
    store_alert(store, spike_alert(messages))
    yield store, messages
    store.close()


def _serve(settings: Settings, log: Path) -> subprocess.Popen:
    argv, env = streamlit_command(settings)
    env.update(settings_env(settings))
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{settings.dashboard_host}:{settings.dashboard_port}/_stcore/health"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dashboard exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.read() == b"ok":
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise AssertionError(f"dashboard did not answer {url} within 60 s:\n{log.read_text()[-3000:]}")


def _registry(root: Path) -> Registry:
    """Two evaluated versions (figures from real gold/predicted label lists), the second current."""
    registry = Registry(root)
    gold = ["negative", "neutral", "positive", "neutral", "negative", "positive", "neutral", "neutral"]
    for version, predicted in (("20261101-000000-aaaaaa", ["neutral"] * 8), (CURRENT, gold[:6] + ["positive", "neutral"])):
        result = report(gold, predicted)
        with registry.write(version) as out:
            (out / "metrics.json").write_text(json.dumps({"score": result["macro_f1"], "validation": {"sentiment": result}}))
            (out / "reports").mkdir()
            (out / "reports" / "sentiment.json").write_text(json.dumps(result))
    registry.promote(CURRENT)
    return registry


@pytest.fixture(scope="module")
def dashboards(stack: Settings, filled, tmp_path_factory) -> Iterator[dict[str, str]]:
    """Two app instances on 127.0.0.1: an open one, and one that requires a login."""
    tmp = tmp_path_factory.mktemp("dashboard")
    open_port, login_port = free_ports(2)
    open_settings = stack.model_copy(update={
        "dashboard_host": "127.0.0.1", "dashboard_port": open_port, "registry_dir": _registry(tmp / "registry").root,
        "dashboard_refresh_s": 5,
    })
    login_settings = stack.model_copy(update={
        "dashboard_host": "127.0.0.1", "dashboard_port": login_port, "dashboard_require_login": True,
        "dashboard_users": f"ann:{auth.hash_password(PASSWORD)},vic:viewer:{auth.hash_password(VIEWER_PASSWORD)}",
    })
    procs = [_serve(open_settings, tmp / "open.log"), _serve(login_settings, tmp / "login.log")]
    try:
        yield {"open": f"http://127.0.0.1:{open_port}", "login": f"http://127.0.0.1:{login_port}"}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, request) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1500, "height": 2000})
    tab = context.new_page()
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"dashboard-{request.node.name}.png"), full_page=True)
    context.close()


def _metric(page: Page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).first.get_by_test_id("stMetricValue")


def test_overview_shows_the_right_totals(page: Page, dashboards, filled):
    _, messages = filled
    counts = Counter(m.sentiment for m in messages)
    page.goto(dashboards["open"])
    expect(_metric(page, "Messages")).to_have_text(f"{len(messages):,}", timeout=WAIT_MS)
    expect(_metric(page, "Negative share")).to_have_text(f"{counts['negative'] / len(messages):.1%}")
    for sentiment in ("negative", "neutral", "positive"):
        expect(_metric(page, sentiment.capitalize()).first).to_have_text(f"{counts[sentiment]:,}")
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(3, timeout=WAIT_MS)
    expect(page.get_by_test_id("stVegaLiteChart").first.locator("canvas, svg").first).to_be_visible()
    page.get_by_test_id("stButtonGroup").get_by_text("source", exact=True).click()
    expect(page.get_by_role("heading", name="Volume per source")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(3, timeout=WAIT_MS)
    page.screenshot(path=str(ARTIFACTS / "dashboard-overview-by-source.png"))


def test_viewer_reads_alerts_but_cannot_label_or_acknowledge(page: Page, dashboards, filled):
    """Before the ack test: the alert is still open, so only the role keeps the Acknowledge button away."""
    store, messages = filled
    page.goto(dashboards["login"])
    page.get_by_label("User", exact=True).fill("vic")
    page.get_by_label("Password", exact=True).fill(VIEWER_PASSWORD)
    page.get_by_test_id("stForm").get_by_role("button", name="Log in").click()
    expect(_metric(page, "Messages")).to_have_text(f"{len(messages):,}", timeout=WAIT_MS)
    expect(page.get_by_text("Signed in as vic (viewer)")).to_be_visible()
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Models", exact=True)).to_be_visible()
    expect(nav.get_by_text("Label", exact=True)).to_have_count(0)
    expect(nav.get_by_text("Audit", exact=True)).to_have_count(0)
    nav.get_by_text("Alerts", exact=True).click()
    expect(page.get_by_role("heading", name="topic=Macro|source=news")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Your role (viewer) reads alerts; an analyst acknowledges them.")).to_be_visible()
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "dashboard-viewer-alerts.png"), full_page=True)
    logins = store.query("SELECT user, role, address FROM audit WHERE action = 'login' AND user = 'vic'")
    assert logins == [{"user": "vic", "role": "viewer", "address": "local"}]  # 127.0.0.1: Streamlit reports no peer


def test_alert_page_shows_the_alert_and_acks_it(page: Page, dashboards, filled):
    store, messages = filled
    alert = spike_alert(messages)
    page.goto(f"{dashboards['open']}/alerts")
    expect(page.get_by_role("heading", name="topic=Macro|source=news")).to_be_visible(timeout=WAIT_MS)
    expect(_metric(page, "Messages in window")).to_have_text(f"{alert.count:,}")
    expect(page.get_by_text(alert.examples[0]["text"][:40]).first).to_be_visible()
    page.get_by_label("Your name").fill("analyst-browser")
    page.get_by_test_id("stForm").get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("Acknowledged by analyst-browser")).to_be_visible(timeout=WAIT_MS)
    acks = store.query("SELECT alert_id, acked_by FROM alert_acks")
    assert acks == [{"alert_id": alert.alert_id, "acked_by": "analyst-browser"}]
    audited = store.query("SELECT user, role, target FROM audit WHERE action = 'acknowledge'")
    assert audited == [{"user": "analyst-browser", "role": "admin", "target": alert.alert_id}]  # loopback: admin


def test_search_box_injection_returns_no_rows_and_drops_nothing(page: Page, dashboards, filled):
    store, messages = filled
    page.goto(f"{dashboards['open']}/explore")
    expect(page.get_by_text(f"{len(messages):,} matching messages")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-explore-all.png"))
    page.get_by_label("Text contains").fill("'; DROP TABLE messages; --")
    page.get_by_test_id("stForm").get_by_role("button", name="Search").click()
    expect(page.get_by_text("0 matching messages", exact=True)).to_be_visible(timeout=WAIT_MS)
    assert store.query("SELECT count() AS n FROM messages FINAL") == [{"n": len(messages)}]


def test_label_submitted_in_the_page_lands_in_the_labels_table(page: Page, dashboards, filled):
    store, messages = filled
    least_sure = min(messages, key=lambda m: (m.sentiment_prob, -m.ts.timestamp()))
    new_label = next(s for s in ("negative", "positive", "neutral") if s != least_sure.sentiment)
    page.goto(f"{dashboards['open']}/label")
    page.get_by_label("Your name (stored with each label)").fill("analyst-browser")
    page.keyboard.press("Enter")
    first = page.get_by_test_id("stForm").first
    expect(first).to_contain_text(least_sure.text[:40], timeout=WAIT_MS)
    first.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name=new_label, exact=True).click()
    first.get_by_role("button", name="Save label").click()
    expect(page.get_by_text("Label saved.")).to_be_visible(timeout=WAIT_MS)
    rows = store.query("SELECT message_id, task, label, labeled_by FROM labels")
    assert rows == [{"message_id": least_sure.id, "task": "sentiment", "label": new_label,
                     "labeled_by": "analyst-browser"}]


def test_audit_page_lists_the_ack_and_the_label(page: Page, dashboards, filled):
    """After the ack and label tests: the loopback user is admin and sees both on the Audit page."""
    page.goto(f"{dashboards['open']}/audit")
    expect(_metric(page, "Acknowledge")).to_have_text("1", timeout=WAIT_MS)
    expect(_metric(page, "Label")).to_have_text("1")
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "dashboard-audit.png"), full_page=True)


def test_models_page_shows_current_version_and_confusion_matrix(page: Page, dashboards):
    page.goto(f"{dashboards['open']}/models")
    expect(_metric(page, "Current model version")).to_have_text(CURRENT, timeout=WAIT_MS)
    expect(_metric(page, "Accuracy")).to_have_text(f"{7 / 8:.3f}")
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(1, timeout=WAIT_MS)


def test_wrong_password_is_refused(page: Page, dashboards, filled):
    _, messages = filled
    page.goto(dashboards["login"])
    page.get_by_label("User", exact=True).fill("ann")
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_test_id("stForm").get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Wrong user or password.")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("stMetricValue")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "dashboard-login-refused.png"), full_page=True)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_test_id("stForm").get_by_role("button", name="Log in").click()
    expect(_metric(page, "Messages")).to_have_text(f"{len(messages):,}", timeout=WAIT_MS)


def test_overview_refreshes_itself_when_messages_arrive(page: Page, dashboards, filled):
    """Last in the module: it adds messages. No reload — the auto-refresh must pick them up."""
    store, messages = filled
    page.goto(dashboards["open"])
    expect(_metric(page, "Messages")).to_have_text(f"{len(messages):,}", timeout=WAIT_MS)
    late = real_scored_messages(3, 0, end=datetime.now(timezone.utc), span=timedelta(seconds=30), seed=99)
    store.write_batch("messages", [message_row(m.model_copy(update={"id": f"late-{i}"})) for i, m in enumerate(late)])
    expect(_metric(page, "Messages")).to_have_text(f"{len(messages) + 3:,}", timeout=WAIT_MS)
