"""RiskPulse dashboard entry point: ``riskpulse dashboard`` runs ``streamlit run`` on this file.

Login first (when bound off loopback or forced by settings), then six pages.
"""

from __future__ import annotations

import logging

import streamlit as st

from riskpulse.dashboards import auth
from riskpulse.dashboards.common import settings
from riskpulse.dashboards.views import alerts, entities, explore, label, models, overview

log = logging.getLogger("riskpulse.dashboard")


def _bound_host() -> str:
    """The address Streamlit really listens on; unset means every interface."""
    return st.get_option("server.address") or "0.0.0.0"


def login_gate() -> bool:
    """True when this browser session may see the pages; otherwise draws the login form."""
    cfg = settings()
    needs_login = cfg.dashboard_require_login or not (
        auth.is_loopback(cfg.dashboard_host) and auth.is_loopback(_bound_host())
    )
    if not needs_login:
        return True
    if st.session_state.get("user"):
        return True
    try:
        users = auth.require_users(_bound_host(), cfg.dashboard_users, force=True)
    except auth.AuthConfigError as exc:
        st.error(str(exc))
        return False
    st.title("RiskPulse")
    with st.form("login"):
        user = st.text_input("User")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        if auth.check_login(users, user, password):
            st.session_state["user"] = user
            log.info("dashboard login by %s", user)
            st.rerun()
        log.warning("refused dashboard login for user %r", user)
        st.error("Wrong user or password.")
    return False


def main() -> None:
    st.set_page_config(page_title="RiskPulse", page_icon=":material/monitoring:", layout="wide")
    if not login_gate():
        st.stop()
    if st.session_state.get("user"):
        st.sidebar.caption(f"Signed in as **{st.session_state['user']}**")
    page = st.navigation(
        [
            st.Page(overview.render, title="Overview", icon=":material/monitoring:", url_path="overview", default=True),
            st.Page(alerts.render, title="Alerts", icon=":material/notifications:", url_path="alerts"),
            st.Page(entities.render, title="Entities", icon=":material/domain:", url_path="entities"),
            st.Page(explore.render, title="Explore", icon=":material/search:", url_path="explore"),
            st.Page(label.render, title="Label", icon=":material/label:", url_path="label"),
            st.Page(models.render, title="Models", icon=":material/model_training:", url_path="models"),
        ]
    )
    page.run()


main()
