"""Models: which version scores the stream, how well it did on held-out data, and its history."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from riskpulse.core import RiskPulseError
from riskpulse.dashboards import access, queries
from riskpulse.dashboards.common import current_user, settings, store
from riskpulse.models.serving.registry import Registry

log = logging.getLogger("riskpulse.dashboard")


def render() -> None:
    st.title("Models")
    registry = Registry(settings().registry_root)
    versions = registry.versions()
    current = registry.current()
    if not versions:
        st.info(f"No trained model in {registry.root}. Run `riskpulse train --quick` (minutes) or `riskpulse train`.")
        return
    st.metric("Current model version", current or "none promoted")
    if current:
        st.caption(serving_kind(registry.info(current).get("training", {})))

    if st.session_state.pop("model_promoted", None):
        st.success(f"Promoted {current}; workers load it before their next batch.")

    history = pd.DataFrame([_summary(registry, v, current) for v in reversed(versions)])
    st.subheader("Version history")
    st.dataframe(history, hide_index=True, width="stretch")
    if access.can("promote"):
        _promote_form(registry, versions, current)

    chosen = st.selectbox("Show evaluation of", list(reversed(versions)), index=_index_of(versions, current))
    reports = _reports(registry.path(chosen))
    if not reports:
        st.info(f"Version {chosen} has no evaluation reports.")
    for name, report in reports.items():
        st.subheader(f"{name}")
        c1, c2, c3 = st.columns(3)
        c1.metric("Accuracy", f"{report['accuracy']:.3f}")
        c2.metric("Macro-F1", f"{report['macro_f1']:.3f}")
        c3.metric("Held-out rows", f"{report['n']:,}")
        left, right = st.columns([3, 2])
        with left:
            st.altair_chart(confusion_chart(report["confusion"]), width="stretch")
        with right:
            per_class = pd.DataFrame(report["per_class"]).T.reset_index(names="class")
            st.dataframe(per_class, hide_index=True, width="stretch")

    retrain_runs = queries.retrain_runs(store())
    if retrain_runs is not None:
        st.subheader("Retraining runs")
        if retrain_runs:
            st.dataframe(pd.DataFrame(retrain_runs), hide_index=True, width="stretch")
        else:
            st.caption("No retraining runs yet (`riskpulse retrain` or the scheduler starts one).")


def _promote_form(registry: Registry, versions: list[str], current: str | None) -> None:
    """Admins point `current` at another version (the retraining scheduler does the same after a won comparison)."""
    others = [v for v in reversed(versions) if v != current]
    if not others:
        return
    with st.form("promote"):
        version = st.selectbox("Promote version", others, key="promote_version")
        user = current_user() or st.text_input("Your name", key="promote_user")
        if st.form_submit_button("Promote"):
            access.require("promote")
            if not user:
                st.error("Enter your name to promote.")
                return
            try:
                registry.promote(version)
            except RiskPulseError as error:
                st.error(str(error))
                return
            access.record("promote", version, {"previous": current}, user=user)
            log.info("model %s promoted by %s (was %s)", version, user, current)
            st.session_state["model_promoted"] = True
            st.rerun()


def _index_of(versions: list[str], current: str | None) -> int:
    ordered = list(reversed(versions))
    return ordered.index(current) if current in ordered else 0


def _summary(registry: Registry, version: str, current: str | None) -> dict[str, Any]:
    info = registry.info(version)
    metrics = info.get("metrics", {})
    row: dict[str, Any] = {"version": version, "current": version == current, "score": metrics.get("score")}
    for name, result in metrics.get("validation", {}).items():
        row[f"{name} macro-F1"] = result.get("macro_f1")
    return row


def serving_kind(training: dict[str, Any]) -> str:
    """One line on what kind of model serves: a quick demo model is worth knowing about before
    trusting its labels."""
    if training.get("init_from"):
        kind = "a retrained challenger (fine-tuned from an earlier version with analyst labels)"
    elif training.get("quick"):
        kind = (f"a quick demo model ({training.get('quick_sentiment_fraction', 1):.0%} of the sentiment rows and "
                f"{training.get('quick_fraction', 0):.0%} of the topic rows, one epoch):"
                " fine for a demo, less accurate than a full `riskpulse train`")
    else:
        kind = f"a fully trained model ({training.get('epochs', '?')} epochs at most, early stopping)"
    trained = ", ".join(str(training[k]) for k in ("device", "precision", "cpu") if training.get(k))
    seconds = training.get("seconds")
    return f"Serving {kind}" + (f"; trained on {trained}" if trained else "") + (f" in {seconds:.0f} s" if seconds else "") + "."


def _reports(path: Path) -> dict[str, dict[str, Any]]:
    folder = path / "reports"
    if not folder.is_dir():
        return {}
    return {f.stem: json.loads(f.read_text(encoding="utf-8")) for f in sorted(folder.glob("*.json"))}


def confusion_chart(confusion: dict[str, Any]) -> alt.LayerChart:
    """Row-normalised heatmap (rows = gold label), counts in the tooltip."""
    labels, matrix = confusion["labels"], confusion["matrix"]
    cells = []
    for gold, row in zip(labels, matrix, strict=True):
        total = sum(row)
        for predicted, count in zip(labels, row, strict=True):
            cells.append({"gold": gold, "predicted": predicted, "count": count, "share": count / total if total else 0.0})
    frame = pd.DataFrame(cells)
    # Streamlit fits the whole chart, rotated axis labels included, into this height.
    size = 180 + max(120, 26 * len(labels))
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", sort=labels, axis=alt.Axis(labelAngle=-60, labelLimit=160)),
        y=alt.Y("gold:N", sort=labels, axis=alt.Axis(labelLimit=160)),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), title="row share"),
        tooltip=["gold:N", "predicted:N", "count:Q", alt.Tooltip("share:Q", format=".1%")],
    )
    counts = base.mark_text(fontSize=10).encode(
        text=alt.condition("datum.count > 0", "count:Q", alt.value("")),
        color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("#333")),
    )
    return alt.layer(cells, counts).properties(height=size)
