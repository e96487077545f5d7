"""Label: analysts confirm or correct the model where it is least sure; retraining learns from it."""

from __future__ import annotations

import logging
from datetime import timedelta

import pandas as pd
import streamlit as st

from riskpulse.dashboards import access, queries
from riskpulse.dashboards.common import current_user, store
from riskpulse.streams.store import labels

log = logging.getLogger("riskpulse.dashboard")
SENTIMENTS = ["negative", "neutral", "positive"]
QUEUE_SIZE = 10
RECENT = timedelta(days=7)


def render() -> None:
    st.title("Label")
    access.require("label")
    st.caption(
        "Messages of the last 7 days the model is least confident about come first; "
        "each verdict is stored with who and when, and retraining learns from it."
    )
    db = store()
    task = st.radio("What to label", ["sentiment", "topic"], horizontal=True, key="label_task")
    user = current_user() or st.text_input("Your name (stored with each label)", key="label_user")
    if st.session_state.pop("label_saved", None):
        st.success("Label saved.")
    if not user:
        st.warning("Enter your name to label messages.")
        return

    options = SENTIMENTS if task == "sentiment" else sorted(queries.distinct_values(db, "topic"))
    bounds = queries.data_bounds(db)
    since = bounds[1] - RECENT if bounds else None
    queue = queries.label_queue(db, task, limit=QUEUE_SIZE, since=since)
    if not queue:
        st.info("Nothing left to label for this task.")
    for row in queue:
        _label_form(row, task, options, user)

    st.subheader("Latest labels")
    recent = labels.recent_labels(db, limit=20)
    if recent:
        frame = pd.DataFrame(recent)
        frame["labeled_at"] = pd.to_datetime(frame["labeled_at"], unit="s", utc=True)
        st.dataframe(frame, hide_index=True, width="stretch")
    else:
        st.caption("No labels yet.")


def _label_form(row: dict, task: str, options: list[str], user: str) -> None:
    predicted, prob = row[task], row[f"{task}_prob"]
    choices = options if predicted in options else [predicted, *options]
    with st.form(f"label-{task}-{row['id']}", border=True):
        st.markdown(f"**{row['source']} · {row['channel']}** · {row['ts']:%Y-%m-%d %H:%M} UTC · model {row['model_version']}")
        st.text(row["text"][:1500])
        st.caption(f"Model says **{predicted}** (p={prob:.2f})")
        choice = st.selectbox(f"Correct {task}", choices, index=choices.index(predicted), key=f"choice-{task}-{row['id']}")
        if st.form_submit_button("Save label"):
            access.require("label")
            labels.add_label(store(), message_id=row["id"], task=task, label=choice, text=row["text"], user=user)
            access.record("label", row["id"], {"task": task, "label": choice, "model_said": predicted}, user=user)
            log.info("label %s=%s for message %s by %s (model said %s)", task, choice, row["id"], user, predicted)
            st.session_state["label_saved"] = True
            st.rerun()
