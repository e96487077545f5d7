"""Why an alert fired: its window against the span before it, in the terms an analyst checks first.

An explanation says how many messages the window held and how negative they were against the
baseline span (the ``BASELINE_WINDOWS`` windows before it), which companies and banks those messages
name, which sources and channels they came from, which words set the window apart from the baseline,
and the most telling negative messages: one per story, most confident first, text as stored (masked).

It is computed where the detector opens or updates an alert (:class:`Explainer` is the detector's
``explain`` hook), from the store: the worker stores every message before the alerts service sees
it, so the window is complete when it closes. The maths (:func:`build`, :func:`distinctive_terms`)
is plain code over rows, unit-tested without a store.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from riskpulse.core.clock import from_epoch
from riskpulse.streams.alerts.detector import EXAMPLE_CHARS, Alert
from riskpulse.streams.alerts.rules import RuleSet
from riskpulse.streams.store import evidence
from riskpulse.streams.store.backends import Queryable

log = logging.getLogger("riskpulse.alerts")

BASELINE_WINDOWS = 12  # the baseline span: this many rule windows before the alert's window
TEXT_SAMPLE = 2000  # stories per span whose words are counted
TOP = 5  # entities, sources and examples listed
TERMS = 8
PRIOR = 200.0  # pseudo-documents of the pooled word distribution (the informative Dirichlet prior)
WORD = re.compile(r"\$?[^\W\d_][\w'&.-]*[^\W_]|[\u4e00-\u9fff]{2,}", re.UNICODE)
MASK = re.compile(r"\[[A-Z_]+\]|https?://\S+")
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here hers
him his how i if in into is it its itself just me more most my no nor not now of off on once only or other our out
over own same she should so some such than that the their them then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your yours rt via amp
new says said get got one two us its it's i'm don't can't im dont cant just like
""".split())


@dataclass(frozen=True)
class Span:
    """One period's counts for the key: messages, negatives and stories per (source, channel)."""

    start: int
    end: int
    by_channel: Sequence[Mapping[str, Any]]

    @property
    def messages(self) -> int:
        return sum(int(r["messages"]) for r in self.by_channel)

    @property
    def negatives(self) -> int:
        return sum(int(r["negatives"]) for r in self.by_channel)

    @property
    def stories(self) -> int:
        return sum(int(r["stories"]) for r in self.by_channel)

    def since_first(self, window_s: float) -> "Span":
        """The span from the window of its first message on: a key first seen two windows ago has a baseline of
        two windows, not twelve quiet ones."""
        if not self.by_channel:
            return self
        first = min(int(r["first_s"]) for r in self.by_channel)
        return Span(max(self.start, int(first // window_s * window_s)), self.end, self.by_channel)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _iso(epoch: float) -> str:
    return from_epoch(epoch).isoformat().replace("+00:00", "Z")


def words(text: str) -> set[str]:
    """The distinct words of a text, lower-cased, without stop words, numbers, links and mask tokens."""
    found = (w.lower().strip(".'&-") for w in WORD.findall(MASK.sub(" ", text)))
    return {w for w in found if len(w) >= 3 and w not in STOPWORDS}


def distinctive_terms(window: Iterable[str], baseline: Iterable[str], top: int = TERMS) -> list[dict[str, Any]]:
    """Words over-represented in ``window`` texts against ``baseline`` texts, most distinctive first.

    Log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008) over document
    frequencies, the prior being the pooled distribution: a z-score that neither favours rare words
    (as a raw ratio does) nor common ones (as a raw difference does). A word must occur in at least two
    window texts; one text counts once however often it repeats a word.
    """
    win, base = Counter(), Counter()
    n_win = n_base = 0
    for text in window:
        win.update(words(text))
        n_win += 1
    for text in baseline:
        base.update(words(text))
        n_base += 1
    pooled = win + base
    total = sum(pooled.values())
    if not n_win or not total:
        return []
    size_win, size_base = sum(win.values()), sum(base.values())
    scored = []
    for word, count in win.items():
        if count < 2:
            continue
        prior = PRIOR * pooled[word] / total
        odds_win = (count + prior) / (size_win + PRIOR - count - prior)
        odds_base = (base[word] + prior) / (size_base + PRIOR - base[word] - prior)
        z = (math.log(odds_win) - math.log(odds_base)) / math.sqrt(1 / (count + prior) + 1 / (base[word] + prior))
        if z > 0:
            scored.append((z, word, count))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [
        {"term": word, "window_share": _share(count, n_win), "baseline_share": _share(base[word], n_base), "z": round(z, 2)}
        for z, word, count in scored[:top]
    ]


def representative(negatives: Sequence[Mapping[str, Any]], copies: Mapping[str, int], top: int = TOP) -> list[dict[str, Any]]:
    """The ``top`` most confident negative messages, one per story (``negatives`` come most confident first)."""
    seen: set[str] = set()
    out = []
    for row in negatives:
        story = row["story_id"] or row["id"]
        if story in seen:
            continue
        seen.add(story)
        out.append({
            "id": row["id"], "story_id": story, "ts": _iso(row["ts_s"]), "source": row["source"],
            "channel": row["channel"], "confidence": round(float(row["sentiment_prob"]), 4),
            "copies": copies.get(story, 1), "text": row["text"][:EXAMPLE_CHARS],
        })
        if len(out) == top:
            break
    return out


def build(
    alert: Alert, window: Span, baseline: Span, baseline_windows: float, entities: Sequence[Mapping[str, Any]],
    terms: list[dict[str, Any]], examples: list[dict[str, Any]],
) -> dict[str, Any]:
    """The explanation's plain form (JSON-ready), as the webhook schema documents it (docs/alerts.md)."""
    key_entity = alert.labels.get("entity")
    ranked = sorted(entities, key=lambda e: (-int(e["messages"]), e["entity_id"] != key_entity, -int(e["negatives"]),
                                              e["entity_id"]))
    channels = sorted(window.by_channel, key=lambda r: (-int(r["messages"]), r["source"], r["channel"]))
    return {
        "window": {
            "start": _iso(window.start), "end": _iso(window.end), "messages": window.messages,
            "negatives": window.negatives, "negative_share": _share(window.negatives, window.messages),
            "stories": window.stories,
        },
        "baseline": {
            "start": _iso(baseline.start), "end": _iso(baseline.end), "windows": round(baseline_windows, 2),
            "messages": baseline.messages,
            "messages_per_window": round(baseline.messages / baseline_windows, 2) if baseline_windows else 0.0,
            "negatives": baseline.negatives, "negative_share": _share(baseline.negatives, baseline.messages),
        },
        "top_entities": [
            {"id": e["entity_id"], "name": e["name"], "messages": int(e["messages"]), "negatives": int(e["negatives"])}
            for e in ranked[:TOP]
        ],
        "top_sources": [
            {"source": r["source"], "channel": r["channel"], "messages": int(r["messages"]),
             "negatives": int(r["negatives"]), "negative_share": _share(int(r["negatives"]), int(r["messages"]))}
            for r in channels[:TOP]
        ],
        "terms": terms,
        "examples": examples,
    }


class Explainer:
    """The detector's ``explain`` hook: reads the alert's window and baseline from the store.

    Called on the alerts service's one thread (the store connection is not shared). A store that
    fails here does not stop the alert: it carries ``{"error": …}`` instead, and the next update of
    the alert tries again.
    """

    def __init__(self, store: Queryable, rules: RuleSet) -> None:
        self.store = store
        self.rules = rules

    def __call__(self, alert: Alert) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            why = self.explain(alert)
        except Exception as exc:  # noqa: BLE001 - an unexplained alert still goes out
            log.warning("alert %s (rule=%s key=%s) left unexplained: %s", alert.alert_id, alert.rule, alert.key, exc)
            return {"error": f"{type(exc).__name__}: {exc}"[:500]}
        log.info("alert %s explained in %.0f ms: %d messages in window, top entity %s", alert.alert_id,
                 (time.perf_counter() - started) * 1000, why["window"]["messages"],
                 why["top_entities"][0]["id"] if why["top_entities"] else "-")
        return why

    def explain(self, alert: Alert) -> dict[str, Any]:
        rule = self.rules.by_name(alert.rule)
        labels = {**rule.where, **alert.labels}
        start, end = int(alert.window_start), int(alert.window_end)
        base_start = int(start - BASELINE_WINDOWS * rule.window_s)
        window = Span(start, end, evidence.totals_by_channel(self.store, labels, start, end))
        baseline = Span(base_start, start, evidence.totals_by_channel(self.store, labels, base_start, start))
        baseline = baseline.since_first(rule.window_s)
        terms = distinctive_terms(evidence.story_texts(self.store, labels, start, end, TEXT_SAMPLE),
                                  evidence.story_texts(self.store, labels, base_start, start, TEXT_SAMPLE))
        negatives = evidence.negative_messages(self.store, labels, start, end, limit=20 * TOP)
        copies = evidence.story_sizes(self.store, sorted({r["story_id"] or r["id"] for r in negatives}), start, end)
        entities = evidence.entities_named(self.store, labels, start, end, limit=TOP + 1)
        windows = (baseline.end - baseline.start) / rule.window_s
        return build(alert, window, baseline, windows, entities, terms, representative(negatives, copies))
