"""Alerts: what fired, on what evidence, whether the webhook got through; look closer, acknowledge."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import altair as alt
import pandas as pd
import streamlit as st

from riskpulse.dashboards import access, queries
from riskpulse.dashboards.common import current_user, store
from riskpulse.streams.store.alerts import AlertRepo

log = logging.getLogger("riskpulse.dashboard")
SINCE = {"24 hours": timedelta(hours=24), "7 days": timedelta(days=7), "30 days": timedelta(days=30)}
SEVERITY_ICON = {"critical": ":red[:material/error:]", "warning": ":orange[:material/warning:]", "info": ":blue[:material/info:]"}


def render() -> None:
    st.title("Alerts")
    db = store()
    span = st.sidebar.selectbox("Show resolved alerts from the last", list(SINCE), index=1)
    _digest_downloads(db)
    rows = AlertRepo(db).overview(datetime.now(timezone.utc) - SINCE[span])
    if st.session_state.pop("alert_acked", None):
        st.success("Alert acknowledged.")
    if not rows:
        st.info(f"No open alerts and none in the last {span}.")
        return

    table = pd.DataFrame([_list_row(r) for r in rows])
    st.caption("Open alerts first. Select a row to see its chart and example messages.")
    picked = st.dataframe(
        table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
        key="alerts_table",
        column_config={"share": st.column_config.NumberColumn("negative share", format="percent")},
    )
    selected = picked.selection.rows if picked and picked.selection else []
    alert = rows[selected[0]] if selected else rows[0]
    _detail(db, alert)


def _digest_downloads(db) -> None:
    """The daily digest of a chosen day (streams/alerts/digest.py) as CSV, and XLSX when openpyxl is installed."""
    from riskpulse.core.settings import get_settings
    from riskpulse.streams.alerts import digest

    st.sidebar.markdown("**Daily digest**")
    day = st.sidebar.date_input("Day (UTC)", datetime.now(timezone.utc).date() - timedelta(days=1), key="digest_day")
    report = digest.build_digest(db, day, digest.watched_entities(get_settings()))
    st.sidebar.caption(f"{sum(r.kind == 'entity' for r in report.rows)} watched entities, "
                       f"{sum(r.kind == 'topic' for r in report.rows)} topics, {sum(r.alerts for r in report.rows)} alert(s)")
    name = f"riskpulse-digest-{day.isoformat()}"
    st.sidebar.download_button("Download CSV", digest.to_csv(report), f"{name}.csv", "text/csv", key="digest_csv")
    try:
        book = digest.to_xlsx(report)
    except ImportError:
        st.sidebar.caption("XLSX needs openpyxl (`pip install openpyxl`).")
        return
    st.sidebar.download_button("Download XLSX", book, f"{name}.xlsx",
                               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="digest_xlsx")


def _list_row(row: dict) -> dict:
    return {
        "severity": row["severity"],
        "status": row["status"],
        "key": row["key"],
        "rule": row["rule"],
        "opened (UTC)": row["opened_at"].strftime("%Y-%m-%d %H:%M"),
        "share": row["share"],
        "z": round(row["z"], 1),
        "messages": row["count"],
        "webhook": _delivery(row),
        "acked by": row["acked_by"] or "",
        "id": row["alert_id"],
    }


def _delivery(row: dict) -> str:
    if row["failed"]:
        return f"failed ({row['failed']}), delivered {row['delivered']}"
    if row["pending"]:
        return f"pending, {row['attempts']} attempt(s)"
    return "delivered" if row["delivered"] else "not sent"


def _detail(db, alert: dict) -> None:
    st.subheader(f"{SEVERITY_ICON.get(alert['severity'], '')} {alert['key']}")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(
        "Negative share", f"{alert['share']:.0%}", f"{alert['share'] - alert['baseline_mean']:+.0%} vs baseline",
        delta_color="inverse",
    )
    c2.metric("z-score", f"{alert['z']:.1f}", f"peak {alert['peak_z']:.1f}", delta_color="off")
    c3.metric("Messages in window", f"{alert['count']:,}", f"{alert['negatives']:,} negative", delta_color="off")
    c4.metric("Webhook", _delivery(alert))
    st.caption(
        f"**{alert['status']}** · rule **{alert['rule']}** · "
        f"window {alert['window_start']:%Y-%m-%d %H:%M}–{alert['window_end']:%H:%M} UTC · "
        f"models {', '.join(alert['model_versions']) or '–'} · id `{alert['alert_id']}`"
    )

    around = alert["window_end"] - alert["window_start"]
    start, end = alert["window_start"] - 6 * around, alert["window_end"] + 2 * around
    series = pd.DataFrame(queries.key_series(db, start, end, max(60, int(around.total_seconds()) // 2), key=alert["labels"]))
    if not series.empty:
        st.altair_chart(_chart(series, alert), width="stretch")
    _explanation(alert.get("explanation") or {})

    left, right = st.columns(2)
    with left:
        st.markdown("**Evidence the alert carried**")
        for example in alert["examples"]:
            st.markdown(f"- {example.get('text', '')}")
    with right:
        st.markdown("**Negative messages in the window (from the store)**")
        examples = queries.messages_around(
            db, alert["window_start"], alert["window_end"], key={**alert["labels"], "sentiment": "negative"}, limit=10
        )
        if examples:
            st.dataframe(
                pd.DataFrame(examples)[["ts", "text", "sentiment_prob", "model_version"]], hide_index=True,
                column_config={"ts": st.column_config.DatetimeColumn("time (UTC)", format="HH:mm:ss")},
            )
        else:
            st.caption("None stored for this key and window.")
    _ack(db, alert)


def _explanation(why: dict) -> None:
    """Why it fired (streams/alerts/explain.py): window against baseline, who, where from, which words, which messages."""
    st.markdown("#### Why it fired")
    if "window" not in why:
        st.caption(f"No explanation: {why['error']}" if "error" in why else "No explanation (alert stored before explanations).")
        return
    win, base = why["window"], why["baseline"]
    c1, c2, c3 = st.columns(3)
    c1.metric("Negative share, window vs baseline", f"{win['negative_share']:.0%}", f"baseline {base['negative_share']:.0%}",
              delta_color="off")
    c2.metric("Messages, window vs baseline", f"{win['messages']:,}", f"{base['messages_per_window']:g} per window before",
              delta_color="off")
    c3.metric("Distinct stories in window", f"{win['stories']:,}")
    st.caption(f"Baseline: {base['windows']:g} windows from {base['start']} to {base['end']}; counts are stored messages.")
    left, mid, right = st.columns(3)
    with left:
        st.markdown("**Top entities**")
        if why["top_entities"]:
            st.dataframe(pd.DataFrame(why["top_entities"])[["name", "id", "messages", "negatives"]], hide_index=True)
        else:
            st.caption("No company or bank named.")
    with mid:
        st.markdown("**Top sources / channels**")
        st.dataframe(pd.DataFrame(why["top_sources"])[["source", "channel", "messages", "negative_share"]], hide_index=True,
                     column_config={"negative_share": st.column_config.NumberColumn("negative", format="percent")})
    with right:
        st.markdown("**Distinctive terms** (window vs baseline)")
        st.markdown(", ".join(f"`{t['term']}`" for t in why["terms"]) or "–")
    st.markdown("**Most representative negative messages** (one per story, most confident first)")
    for e in why["examples"]:
        copies = f" · {e['copies']} copies" if e["copies"] > 1 else ""
        st.markdown(f"- {e['text']}  \n  :gray[{e['source']}/{e['channel']} · {e['confidence']:.0%}{copies}]")


def _chart(series: pd.DataFrame, alert: dict) -> alt.LayerChart:
    band = pd.DataFrame([{"start": alert["window_start"], "end": alert["window_end"]}])
    base = alt.Chart(series).encode(x=alt.X("bucket:T", title="time (UTC)"))
    bars = base.mark_bar(opacity=0.3).encode(y=alt.Y("messages:Q", title="messages"))
    line = base.mark_line(point=True, color="#d62728").encode(
        y=alt.Y("negative_share:Q", title="negative share", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        tooltip=["bucket:T", "messages:Q", "negative:Q", alt.Tooltip("negative_share:Q", format=".0%")],
    )
    window = alt.Chart(band).mark_rect(opacity=0.12, color="#d62728").encode(x="start:T", x2="end:T")
    return alt.layer(window, bars, line).resolve_scale(y="independent").properties(height=280)


def _ack(db, alert: dict) -> None:
    if alert["acked_by"]:
        st.info(f"Acknowledged by {alert['acked_by']} at {alert['acked_at']:%Y-%m-%d %H:%M} UTC.")
        return
    if not access.can("acknowledge"):
        st.caption(f"Not acknowledged yet. Your role ({access.current_role()}) reads alerts; an analyst acknowledges them.")
        return
    with st.form(f"ack-{alert['alert_id']}"):
        user = current_user() or st.text_input("Your name", key="ack_user")
        note = st.text_input("Note (optional)")
        if st.form_submit_button("Acknowledge", type="primary"):
            if not user:
                st.error("Enter your name to acknowledge.")
                return
            access.require("acknowledge")
            AlertRepo(db).ack(alert["alert_id"], user, note)
            access.record("acknowledge", alert["alert_id"], {"key": alert["key"], "rule": alert["rule"], "note": note}, user=user)
            log.info("alert %s acknowledged by %s", alert["alert_id"], user)
            st.session_state["alert_acked"] = True
            st.rerun()
