"""Overview: how much is said, and how negative, per topic and per source over time."""

from __future__ import annotations

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from riskpulse.dashboards import queries
from riskpulse.dashboards.common import fmt_bucket, pick_range, settings, store, window_for

SENTIMENT_COLORS = alt.Scale(domain=["negative", "neutral", "positive"], range=["#d62728", "#9e9e9e", "#2ca02c"])


def render() -> None:
    st.title("Overview")
    choice = pick_range()
    auto = st.sidebar.toggle("Auto-refresh", value=True, help=f"Re-query every {settings().dashboard_refresh_s} s")
    every = timedelta(seconds=settings().dashboard_refresh_s) if auto else None
    st.fragment(run_every=every)(_body)(choice)


def _body(choice: str) -> None:
    window = window_for(choice)
    if window is None:
        st.info("No messages stored yet. Start the worker (`riskpulse worker`) and replay or poll some messages.")
        return
    db = store()
    counts = queries.sentiment_counts(db, window.start, window.end)
    total = sum(counts.values())
    negative = counts.get("negative", 0)
    cols = st.columns(5)
    cols[0].metric("Messages", f"{total:,}")
    cols[1].metric("Negative", f"{negative:,}")
    cols[2].metric("Neutral", f"{counts.get('neutral', 0):,}")
    cols[3].metric("Positive", f"{counts.get('positive', 0):,}")
    cols[4].metric("Negative share", f"{negative / total:.1%}" if total else "–")
    st.caption(
        f"{window.label}: {window.start:%Y-%m-%d %H:%M} → {window.end:%Y-%m-%d %H:%M} UTC, "
        f"{fmt_bucket(window.bucket_s)} buckets"
    )
    if not total:
        st.info("No messages in this time range.")
        return

    by = st.segmented_control("Break down by", ["topic", "source"], default="topic", key="overview_by") or "topic"
    frame = pd.DataFrame(queries.series(db, window.start, window.end, window.bucket_s, by))
    left, right = st.columns(2)
    with left:
        st.subheader(f"Volume per {by}")
        st.altair_chart(_volume_chart(frame), width="stretch")
    with right:
        st.subheader(f"Negative share per {by}")
        st.altair_chart(_share_chart(frame), width="stretch")

    left, right = st.columns([2, 1])
    with left:
        st.subheader("Topics moving most against their baseline")
        st.caption(
            f"Negative share since {window.split:%Y-%m-%d %H:%M} (last quarter of the range) "
            "against the rest of the range; topics with at least 5 recent messages."
        )
        moved = pd.DataFrame(queries.movers(db, window.split, window.end, window.start))
        if moved.empty:
            st.info("Too few recent messages per topic to compare.")
        else:
            st.dataframe(
                moved[["topic", "current_share", "baseline_share", "delta", "current_n", "baseline_n"]],
                hide_index=True,
                width="stretch",
                column_config={
                    "current_share": st.column_config.NumberColumn("recent neg. share", format="percent"),
                    "baseline_share": st.column_config.NumberColumn("baseline neg. share", format="percent"),
                    "delta": st.column_config.NumberColumn("change", format="percent"),
                    "current_n": "recent msgs",
                    "baseline_n": "baseline msgs",
                },
            )
    with right:
        st.subheader("By sentiment")
        st.altair_chart(_sentiment_chart(counts), width="stretch")


def _legend_rows(frame: pd.DataFrame, columns: int = 3) -> int:
    return -(-frame["key"].nunique() // columns)


def _volume_chart(frame: pd.DataFrame) -> alt.Chart:
    """Stacked volume; the chart grows with its legend (28 topics would squash a fixed height)."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("bucket:T", title="time (UTC)"),
            y=alt.Y("sum(messages):Q", stack="zero", title="messages"),
            color=alt.Color("key:N", title=None, legend=alt.Legend(orient="bottom", columns=3, labelLimit=180)),
            tooltip=["bucket:T", "key:N", "messages:Q", "negative:Q"],
        )
        .properties(height=300 + 20 * _legend_rows(frame))
    )


def _share_chart(frame: pd.DataFrame) -> alt.Chart:
    """Negative share as a key × time heatmap: one row per key stays readable where 28 lines would not."""
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("yearmonthdatehoursminutes(bucket):O", title="time (UTC)", axis=alt.Axis(format="%H:%M", labelOverlap=True, labelAngle=0)),
            y=alt.Y("key:N", title=None, axis=alt.Axis(labelLimit=200)),
            color=alt.Color(
                "negative_share:Q", title="negative share", scale=alt.Scale(scheme="reds", domain=[0, 1]),
                legend=alt.Legend(format="%", orient="bottom"),
            ),
            tooltip=["bucket:T", "key:N", alt.Tooltip("negative_share:Q", format=".1%"), "messages:Q"],
        )
        .properties(height=90 + 20 * frame["key"].nunique())  # axis and legend are fitted into the height
    )


def _sentiment_chart(counts: dict[str, int]) -> alt.Chart:
    frame = pd.DataFrame([{"sentiment": k, "messages": v} for k, v in counts.items()])
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("messages:Q"),
            y=alt.Y("sentiment:N", sort=["negative", "neutral", "positive"], title=None),
            color=alt.Color("sentiment:N", scale=SENTIMENT_COLORS, legend=None),
            tooltip=["sentiment:N", "messages:Q"],
        )
        .properties(height=180)
    )
