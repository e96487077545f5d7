"""Roles, the login rate limit and the audit trail in the real Streamlit app (AppTest over chDB)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from riskpulse.core.settings import get_settings
from riskpulse.dashboards import access, auth, common
from riskpulse.models.serving.registry import Registry
from riskpulse.streams.store import audit
from tests.fixtures.dashboard import dashboard_process, spike_alert, store_alert

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
TIMEOUT = 60
PASSWORDS = {"vic": "viewer-pw", "ann": "analyst-pw", "ada": "admin-pw"}
VERSIONS = ("20261101-000000-aaaaaa", "20261120-000000-bbbbbb")


def _page(name: str) -> None:
    import importlib

    importlib.import_module(f"riskpulse.dashboards.views.{name}").render()


@pytest.fixture
def roles_app(monkeypatch, filled_store, chdb_settings, tmp_path) -> Iterator[dict]:
    """The app over a filled chDB store with one open alert, two model versions and three users, login required."""
    store, messages = filled_store
    store_alert(store, spike_alert(messages))
    registry = Registry(tmp_path / "registry")
    for version in VERSIONS:
        with registry.write(version) as out:
            (out / "metrics.json").write_text(json.dumps({"score": 0.5}))
    registry.promote(VERSIONS[0])
    roles = {"vic": "viewer", "ann": "analyst", "ada": "admin"}
    users = ",".join(f"{u}:{roles[u]}:{auth.hash_password(pw, iterations=1000)}" for u, pw in PASSWORDS.items())
    with dashboard_process(monkeypatch, chdb_settings, dashboard_users=users, dashboard_require_login="true",
                           registry_dir=str(registry.root)):
        yield {"store": common.store(), "registry": registry, "messages": messages}


def _as(user: str | None, page: str) -> AppTest:
    """A page rendered for a signed-in user (session as the login form leaves it)."""
    at = AppTest.from_function(_page, args=(page,), default_timeout=TIMEOUT)
    if user:
        at.session_state["user"] = user
        at.session_state["role"] = auth.parse_users(get_settings().dashboard_users)[user].role
    return at.run()


def _login(at: AppTest, user: str, password: str) -> AppTest:
    at.text_input[0].input(user)
    at.text_input[1].input(password)
    return at.button[0].click().run()


def _events(action: str | None = None) -> list[dict]:
    return audit.recent(common.store(), action=action)


def test_viewer_reads_but_cannot_label_acknowledge_promote_or_audit(roles_app):
    alerts = _as("vic", "alerts")
    assert not alerts.exception, alerts.exception
    assert "topic=Macro|source=news" in alerts.subheader[0].value
    assert not alerts.button and any("an analyst acknowledges" in c.value for c in alerts.caption)
    for page, permission in (("label", "label"), ("audit", "audit")):
        at = _as("vic", page)
        assert not at.exception, at.exception
        assert at.error[0].value.startswith(f"Your role (viewer) cannot {permission}")
        assert not at.button and not at.dataframe
    models = _as("vic", "models")
    assert not models.exception and not models.button  # history shown, no promote form
    assert not _events("label") and not _events("acknowledge")


def test_analyst_acknowledges_and_labels_with_audit_rows(roles_app):
    alerts = _as("ann", "alerts")
    alerts.button[0].click().run()
    assert not alerts.exception, alerts.exception
    (ack,) = _events("acknowledge")
    assert (ack["user"], ack["role"], ack["target"]) == ("ann", "analyst", "alt_dashboardtest01")
    assert json.loads(ack["detail"])["key"] == "topic=Macro|source=news"

    label = _as("ann", "label")
    label.selectbox[0].select("negative")
    label.button[0].click().run()
    assert not label.exception, label.exception
    (row,) = _events("label")
    stored = common.store().query("SELECT message_id, labeled_by FROM labels")
    assert (row["user"], row["role"], row["target"]) == ("ann", "analyst", stored[0]["message_id"])
    assert json.loads(row["detail"])["label"] == "negative" and stored[0]["labeled_by"] == "ann"

    assert not _as("ann", "models").button  # analysts do not promote
    assert _as("ann", "audit").error[0].value.startswith("Your role (analyst) cannot audit")


def test_admin_promotes_and_reads_the_audit_page(roles_app):
    models = _as("ada", "models")
    assert models.selectbox(key="promote_version").value == VERSIONS[1]
    models.button[0].click().run()
    assert not models.exception, models.exception
    assert roles_app["registry"].current() == VERSIONS[1]
    (promotion,) = _events("promote")
    assert (promotion["user"], promotion["role"], promotion["target"]) == ("ada", "admin", VERSIONS[1])
    assert json.loads(promotion["detail"]) == {"previous": VERSIONS[0]}

    page = _as("ada", "audit")
    assert not page.exception, page.exception
    table = page.dataframe[0].value
    assert list(table["action"]) == ["promote"] and table["user"][0] == "ada"
    assert "previous=" + VERSIONS[0] in table["detail"][0]
    assert {m.label: m.value for m in page.metric}["Promote"] == "1"
    users = page.dataframe[1].value
    assert dict(zip(users["user"], users["role"])) == {"ada": "admin", "ann": "analyst", "vic": "viewer"}


def test_logins_are_audited_and_rate_limited(roles_app):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    for _ in range(5):
        _login(at, "ann", "guess")
        assert at.error[0].value == "Wrong user or password."
    _login(at, "ann", PASSWORDS["ann"])  # the right password, but the user is locked for a minute
    assert at.error[0].value.startswith("Too many failed logins for this user or from this address")
    assert not at.metric
    assert len(_events("login_refused")) == 5 and _events("login_limited")[0]["user"] == "ann"
    # The same address is locked too (AppTest's sessions come from one address): other users wait as well.
    _login(at, "vic", PASSWORDS["vic"])
    assert at.error[0].value.startswith("Too many failed logins")

    access.login_limiter.clear()  # a minute later
    _login(at, "vic", PASSWORDS["vic"])
    assert not at.exception, at.exception
    assert at.title[0].value == "Overview" and any("(viewer)" in c.value for c in at.sidebar.caption)
    (login,) = _events("login")
    assert (login["user"], login["role"], login["address"]) == ("vic", "viewer", "local")
