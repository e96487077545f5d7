"""Explore: find the messages behind a number, with the scores and model version each got."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pandas as pd
import streamlit as st

from riskpulse.dashboards import queries
from riskpulse.dashboards.common import store

ROW_LIMIT = 200
COLUMN_ORDER = ("ts", "text", "topic", "topic_prob", "sentiment", "sentiment_prob", "model_version", "source", "channel", "id")

SCORE_COLUMNS = {
    "ts": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "topic_prob": st.column_config.ProgressColumn("topic p", min_value=0.0, max_value=1.0, format="%.2f"),
    "sentiment_prob": st.column_config.ProgressColumn("sentiment p", min_value=0.0, max_value=1.0, format="%.2f"),
    "text": st.column_config.TextColumn("text", width="large"),
}


@st.cache_data(ttl=300, show_spinner=False)
def _choices(column: str) -> list[str]:
    """Filter choices change slowly; re-read them every 5 minutes, not on every search."""
    return queries.distinct_values(store(), column)


def render() -> None:
    st.title("Explore")
    db = store()
    with st.form("explore"):
        text = st.text_input("Text contains", placeholder="e.g. overdraft, downgrade, fraud")
        c1, c2, c3, c4 = st.columns(4)
        topics = c1.multiselect("Topic", _choices("topic"))
        sentiments = c2.multiselect("Sentiment", ["negative", "neutral", "positive"])
        sources = c3.multiselect("Source", _choices("source"))
        channels = c4.multiselect("Channel", _choices("channel"))
        c1, c2 = st.columns(2)
        days = c1.date_input("Dates (UTC)", value=(), help="Leave empty for all dates")
        confidence = c2.slider("Model confidence (lower of topic/sentiment probability)", 0.0, 1.0, (0.0, 1.0), 0.05)
        st.form_submit_button("Search", type="primary")

    start, end = _day_bounds(days)
    filters = queries.Filters(
        text=text,
        topics=tuple(topics),
        sentiments=tuple(sentiments),
        sources=tuple(sources),
        channels=tuple(channels),
        start=start,
        end=end,
        min_confidence=confidence[0],
        max_confidence=confidence[1],
    )
    total, rows = queries.explore(db, filters, limit=ROW_LIMIT)
    st.markdown(f"**{total:,}** matching messages" + (f" (newest {ROW_LIMIT} shown)" if total > ROW_LIMIT else ""))
    if rows:
        frame = pd.DataFrame(rows)[list(COLUMN_ORDER)]
        st.dataframe(frame, hide_index=True, width="stretch", height=560, column_config=SCORE_COLUMNS)


def _day_bounds(days: tuple) -> tuple[datetime | None, datetime | None]:
    """A picked (first, last) day range → [first 00:00, day after last 00:00) in UTC."""
    if not days:
        return None, None
    first, last = days[0], days[-1]
    start = datetime.combine(first, time.min, tzinfo=timezone.utc)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=timezone.utc)
    return start, end
