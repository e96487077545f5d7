"""Audit (admins): every label, acknowledgement, promotion and login attempt, newest first, and who may do what."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from riskpulse.dashboards import access, auth
from riskpulse.dashboards.common import settings, store
from riskpulse.streams.store import audit

ALL = "all"


def render() -> None:
    st.title("Audit")
    access.require("audit")
    db = store()
    counts = audit.action_counts(db)
    columns = st.columns(4)
    for column, action in zip(columns, ("label", "acknowledge", "promote", "login_refused"), strict=True):
        column.metric(action.replace("_", " ").capitalize(), f"{counts.get(action, 0):,}")

    left, right = st.columns(2)
    action = left.selectbox("Action", [ALL, *audit.ACTIONS], key="audit_action")
    user = right.text_input("User (exact name)", key="audit_user").strip()
    rows = audit.recent(db, limit=500, action=None if action == ALL else action, user=user or None)
    if rows:
        frame = pd.DataFrame(rows)
        frame["detail"] = [_detail(text) for text in frame["detail"]]
        st.dataframe(frame, hide_index=True, width="stretch",
                     column_config={"at": st.column_config.DatetimeColumn("at (UTC)", format="YYYY-MM-DD HH:mm:ss")})
    else:
        st.info("No audit events match.")

    st.subheader("Users and roles")
    st.caption("From RISKPULSE_DASHBOARD_USERS (an admin edits it and restarts the dashboard); hashes are not shown.")
    users = auth.parse_users(settings().dashboard_users)
    if users:
        st.dataframe(pd.DataFrame([{"user": name, "role": account.role} for name, account in sorted(users.items())]),
                     hide_index=True)
    else:
        st.caption(f"No users configured: bound to loopback, everyone here is {settings().dashboard_loopback_role}.")


def _detail(text: str) -> str:
    """The JSON detail as ``key=value`` pairs, easier to scan in a table."""
    try:
        detail = json.loads(text)
    except ValueError:
        return text
    return ", ".join(f"{key}={value}" for key, value in detail.items()) if isinstance(detail, dict) else text
