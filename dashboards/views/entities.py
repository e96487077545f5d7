"""Entities: which companies and banks the messages are about, whose tone turned, and what was said."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from riskpulse.dashboards.common import fmt_bucket, pick_range, settings, store, window_for
from riskpulse.streams.enrich.entities import EntityError, watchlist_ids, watchlist_path
from riskpulse.streams.store import entities as mentions

SENTIMENT_COLORS = alt.Scale(domain=["negative", "neutral", "positive"], range=["#d62728", "#9e9e9e", "#2ca02c"])
MIN_RECENT = 3  # messages an entity needs in the recent part of the range to be ranked


def render() -> None:
    st.title("Entities")
    choice = pick_range("entities_range")
    only_watched = st.sidebar.toggle("Watchlist only", value=False, help=f"Entities listed in {watchlist_path(settings())}")
    window = window_for(choice)
    if window is None:
        st.info("No messages stored yet. Start the worker (`riskpulse worker`) and replay or poll some messages.")
        return
    db = store()
    watched = _watched()
    st.subheader("Top movers")
    st.caption(
        f"Negative share of the messages naming each entity since {window.split:%Y-%m-%d %H:%M} UTC (last quarter of "
        f"{window.label.lower()}) against the rest of the range; entities with at least {MIN_RECENT} recent messages."
    )
    moved = pd.DataFrame(mentions.movers(db, window.split, window.end, window.start, MIN_RECENT, limit=200))
    if not moved.empty:
        moved["watched"] = moved["entity_id"].isin(watched)
        if only_watched:
            moved = moved[moved["watched"]]
    if moved.empty:
        st.info("No entity has enough recent messages in this range.")
    else:
        st.dataframe(
            moved[["entity_id", "name", "share", "baseline_share", "change", "messages", "baseline_messages", "watched"]].head(25),
            hide_index=True, width="stretch", key="entity_movers",
            column_config={
                "entity_id": "id",
                "share": st.column_config.NumberColumn("recent neg. share", format="percent"),
                "baseline_share": st.column_config.NumberColumn("baseline neg. share", format="percent"),
                "change": st.column_config.NumberColumn("change", format="percent"),
                "messages": "recent msgs",
                "baseline_messages": "baseline msgs",
            },
        )

    names = mentions.entity_names(db)
    if only_watched:
        names = [n for n in names if n["entity_id"] in watched]
    if not names:
        st.info("No entity mentions stored yet.")
        return
    labels = {n["entity_id"]: f"{n['name']} ({n['entity_id']}) · {n['messages']:,} msgs" for n in names}
    default = moved["entity_id"].iloc[0] if not moved.empty else names[0]["entity_id"]
    entity_id = st.selectbox("Entity", list(labels), index=list(labels).index(default) if default in labels else 0,
                             format_func=labels.get, key="entity_pick")
    _detail(db, entity_id, labels[entity_id], window)


def _watched() -> frozenset[str]:
    try:
        return watchlist_ids(watchlist_path(settings()))
    except EntityError as exc:
        st.sidebar.warning(str(exc))
        return frozenset()


def _detail(db, entity_id: str, label: str, window) -> None:
    st.subheader(label)
    trend = pd.DataFrame(mentions.series(db, entity_id, window.start, window.end, window.bucket_s))
    if trend.empty:
        st.info("No messages name this entity in the range.")
    else:
        st.caption(f"Messages naming it per {fmt_bucket(window.bucket_s)}, by sentiment")
        st.altair_chart(
            alt.Chart(trend).mark_bar().encode(
                x=alt.X("bucket:T", title="time (UTC)"),
                y=alt.Y("messages:Q", stack="zero", title="messages"),
                color=alt.Color("sentiment:N", scale=SENTIMENT_COLORS, legend=alt.Legend(orient="bottom")),
                tooltip=["bucket:T", "sentiment:N", "messages:Q"],
            ).properties(height=260),
            width="stretch",
        )

    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Its messages**")
        rows = mentions.messages(db, entity_id, window.start, window.end, limit=100)
        if rows:
            st.dataframe(
                pd.DataFrame(rows)[["ts", "sentiment", "source", "channel", "topic", "text"]],
                hide_index=True, width="stretch", key="entity_messages",
                column_config={"ts": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm")},
            )
        else:
            st.info("None in this range.")
    with right:
        st.markdown("**Its alerts**")
        raised = mentions.alerts(db, entity_id)
        if raised:
            st.dataframe(
                pd.DataFrame(raised)[["opened_at", "status", "severity", "rule", "share", "baseline_mean", "messages"]],
                hide_index=True, width="stretch", key="entity_alerts",
                column_config={
                    "opened_at": st.column_config.DatetimeColumn("opened (UTC)", format="YYYY-MM-DD HH:mm"),
                    "share": st.column_config.NumberColumn("neg. share", format="percent"),
                    "baseline_mean": st.column_config.NumberColumn("baseline", format="percent"),
                },
            )
        else:
            st.info("No entity alert on it.")
