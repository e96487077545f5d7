"""RiskPulse dashboard entry point: ``riskpulse dashboard`` runs ``streamlit run`` on this file.

Login first (when bound off loopback or forced by settings), then the pages the user's role may see:
every role reads; Label needs an analyst, Audit an admin (see :mod:`riskpulse.dashboards.auth`).
"""

from __future__ import annotations

import logging

import streamlit as st

from riskpulse.dashboards import access, auth
from riskpulse.dashboards.common import settings
from riskpulse.dashboards.views import alerts, audit, entities, explore, label, models, overview

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
        _try_login(users, user, password)
    return False


def _try_login(users: dict[str, auth.Account], user: str, password: str) -> None:
    """Check one login against the rate limit and the user list; audit the outcome either way."""
    limiter, address = access.login_limiter(), access.client_address()
    wait = limiter.retry_after(user, address)
    if wait > 0:
        log.warning("dashboard login for user %r from %s refused unchecked: rate limit", user, address)
        access.record("login_limited", user, {"retry_after_s": round(wait)}, user=user, role="")
        st.error(f"Too many failed logins for this user or from this address; try again in {wait:.0f} s.")
        return
    role = auth.check_login(users, user, password)
    if role is None:
        limiter.failed(user, address)
        log.warning("refused dashboard login for user %r from %s", user, address)
        access.record("login_refused", user, user=user, role="")
        st.error("Wrong user or password.")
        return
    limiter.succeeded(user)
    st.session_state["user"], st.session_state["role"] = user, role
    log.info("dashboard login by %s (%s) from %s", user, role, address)
    access.record("login", user, user=user, role=role)
    st.rerun()


def main() -> None:
    st.set_page_config(page_title="RiskPulse", page_icon=":material/monitoring:", layout="wide")
    if not login_gate():
        st.stop()
    if st.session_state.get("user"):
        st.sidebar.caption(f"Signed in as **{st.session_state['user']}** ({access.current_role()})")
    pages = [
        st.Page(overview.render, title="Overview", icon=":material/monitoring:", url_path="overview", default=True),
        st.Page(alerts.render, title="Alerts", icon=":material/notifications:", url_path="alerts"),
        st.Page(entities.render, title="Entities", icon=":material/domain:", url_path="entities"),
        st.Page(explore.render, title="Explore", icon=":material/search:", url_path="explore"),
    ]
    if access.can("label"):
        pages.append(st.Page(label.render, title="Label", icon=":material/label:", url_path="label"))
    pages.append(st.Page(models.render, title="Models", icon=":material/model_training:", url_path="models"))
    if access.can("audit"):
        pages.append(st.Page(audit.render, title="Audit", icon=":material/history:", url_path="audit"))
    st.navigation(pages).run()


main()
