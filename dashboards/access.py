"""Roles and the audit trail inside the Streamlit pages: who is signed in, what they may do, what they did.

The rules themselves live in :mod:`riskpulse.dashboards.auth` (plain functions, unit-tested); this module
reads them against the browser session. Pages check a permission before they draw an action, and the
action checks again before it writes, so a page reached by URL or a stale form cannot act above its role.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import streamlit as st

from riskpulse.dashboards import auth
from riskpulse.dashboards.common import current_user, settings, store
from riskpulse.streams.store import audit

log = logging.getLogger("riskpulse.dashboard")


@st.cache_resource(show_spinner=False)
def login_limiter() -> auth.LoginLimiter:
    """One limiter for every browser session of this dashboard process."""
    cfg = settings()
    return auth.LoginLimiter(cfg.dashboard_login_max_failures, cfg.dashboard_login_window_s)


def client_address() -> str:
    """The browser's address as far as this process can tell.

    The TCP peer when it is another machine. When the peer is loopback (or unknown) and the request
    carries X-Forwarded-For, a reverse proxy on this machine forwarded it: its first hop is the client.
    A client can write its own X-Forwarded-For, which is why it is only believed from a local proxy, and
    why the per-user limit does not depend on it.
    """
    peer = st.context.ip_address
    peer = peer if isinstance(peer, str) else None  # None on localhost (and a stand-in object under AppTest)
    try:
        peer_is_local = peer is None or ipaddress.ip_address(peer).is_loopback
    except ValueError:
        peer_is_local = False
    if peer_is_local:
        forwarded = (st.context.headers.get("X-Forwarded-For") or "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return peer or "local"


def current_role() -> str:
    """The signed-in user's role; without a login (loopback) the configured loopback role."""
    return st.session_state.get("role") or settings().dashboard_loopback_role


def can(permission: str) -> bool:
    return auth.allowed(current_role(), permission)


def require(permission: str) -> None:
    """Stop drawing the page unless the current role has ``permission``."""
    if not can(permission):
        log.warning("dashboard: %s (%s) refused %s", current_user() or "loopback user", current_role(), permission)
        st.error(f"Your role ({current_role()}) cannot {permission}; ask an admin for a role that can.")
        st.stop()


def record(action: str, target: str, detail: dict[str, Any] | None = None, user: str | None = None,
           role: str | None = None) -> None:
    """Append an audit event for the current session (``user`` when the page asked for a name on loopback,
    ``role`` for login attempts, made before the session has one)."""
    who = user or current_user() or "loopback"
    audit.record(store(), user=who, role=current_role() if role is None else role, action=action, target=target,
                 detail=detail, address=client_address())
