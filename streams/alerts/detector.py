"""Spike detection: per-key tumbling windows on event time against the key's own baseline.

Plain, deterministic code — no faust, no I/O — so the maths and the alert lifecycle are
unit-tested directly. The agent feeds :class:`Observation` s in and gets
:class:`AlertEvent` s out; windows close when the watermark (the latest event time seen)
passes their end plus the rule's grace.

Per (rule, key) the baseline is an EWMA of the negative share of earlier non-spike
windows, with an EWMA variance (West's incremental form). A window's z-score uses the
larger of the EWMA deviation, the binomial deviation expected at that window's volume,
and the rule's floor, so a quiet, steady key does not alert on noise.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from riskpulse.streams.alerts.rules import Rule, RuleSet, parse_key

log = logging.getLogger("riskpulse.alerts")
EXAMPLE_CHARS = 280
TIME_FIELDS = ("opened_at", "updated_at", "resolved_at", "window_start", "window_end")  # an Alert's times


@dataclass(frozen=True)
class Observation:
    """What the detector needs of one scored message; ``ts`` is event time in epoch seconds."""

    id: str
    ts: float
    topic: str
    source: str
    channel: str
    negative: bool
    text: str = ""
    model_version: str = ""
    story_id: str = ""  # near-duplicates share one; empty: the message is its own story
    entities: tuple[str, ...] = ()  # ids of the companies and banks it names; entity rules count it once for each

    @property
    def fields(self) -> dict[str, str]:
        return {"topic": self.topic, "source": self.source, "channel": self.channel}


@dataclass(frozen=True)
class Alert:
    """An alert's current state with its evidence (the latest spike window)."""

    alert_id: str
    rule: str
    key: str
    labels: dict[str, str]
    severity: str
    status: Literal["open", "resolved"]
    opened_at: float
    updated_at: float
    resolved_at: float | None
    window_start: float
    window_end: float
    count: int
    negatives: int
    share: float
    baseline_mean: float
    baseline_std: float
    z: float
    peak_z: float
    windows: int
    examples: tuple[dict[str, str], ...]
    model_versions: tuple[str, ...]
    explanation: dict[str, Any] = field(default_factory=dict)  # why it fired (alerts/explain.py); {} if not explained

    def to_dict(self, time: Callable[[float | None], Any] = lambda at: at) -> dict[str, Any]:
        """The one plain form of an alert, for detector state, the alerts topic, webhooks and the
        ``alerts`` table alike; ``time`` renders its epoch-second times (:data:`TIME_FIELDS`) for each."""
        out = asdict(self)
        out["examples"] = list(self.examples)
        out["model_versions"] = list(self.model_versions)
        out.update((name, time(out[name])) for name in TIME_FIELDS)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], time: Callable[[Any], float | None] = lambda at: at) -> "Alert":
        """The inverse of :meth:`to_dict`, with ``time`` turning its times back into epoch seconds."""
        data = dict(data)
        data["examples"] = tuple(data["examples"])
        data["model_versions"] = tuple(data["model_versions"])
        data.update((name, time(data[name])) for name in TIME_FIELDS)
        return cls(**data)


@dataclass(frozen=True)
class AlertEvent:
    kind: Literal["opened", "updated", "resolved"]
    alert: Alert


@dataclass
class Window:
    count: int = 0
    negatives: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)
    model_versions: set[str] = field(default_factory=set)
    stories: dict[str, list[int]] = field(default_factory=dict)  # story → [copies, negative copies], counted once
    ids: set[str] = field(default_factory=set)  # messages counted: a redelivered scored record counts once

    def add(self, obs: Observation, per_story: bool) -> bool:
        """Count ``obs`` (once per story when ``per_story``); True when it may serve as a negative example.

        The scored topic is at least once: a worker that lost its group session while the broker was down
        re-emits what it had stored but not committed, so a message id seen before in this window is skipped.
        """
        if obs.id in self.ids:
            return False
        self.ids.add(obs.id)
        self.model_versions.add(obs.model_version)
        if not per_story:
            self.count += 1
            self.negatives += obs.negative
            return obs.negative
        tally = self.stories.setdefault(obs.story_id or obs.id, [0, 0])
        tally[0] += 1
        tally[1] += obs.negative
        return obs.negative and tally[1] == 1  # one example per story

    def totals(self) -> tuple[int, int]:
        """(units, negative units): messages, plus stories each counted once and negative when most copies are."""
        negative_stories = sum(2 * negatives > copies for copies, negatives in self.stories.values())
        return self.count + len(self.stories), self.negatives + negative_stories


@dataclass
class KeyState:
    """Everything the detector remembers about one key of one rule."""

    mean: float = 0.0
    var: float = 0.0
    windows_seen: int = 0
    weight: float = 0.0  # baseline evidence in full windows (a window of min_volume messages = 1)
    last_window_end: float = 0.0
    cooldown_until: float = 0.0
    alert: Alert | None = None
    open_windows: dict[float, Window] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Closed-window state only: open windows are rebuilt from redelivered messages."""
        return {
            "mean": self.mean,
            "var": self.var,
            "windows_seen": self.windows_seen,
            "weight": self.weight,
            "last_window_end": self.last_window_end,
            "cooldown_until": self.cooldown_until,
            "alert": self.alert.to_dict() if self.alert else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "KeyState":
        alert = Alert.from_dict(data["alert"]) if data.get("alert") else None
        return cls(
            mean=data["mean"],
            var=data["var"],
            windows_seen=data["windows_seen"],
            weight=data["weight"],
            last_window_end=data["last_window_end"],
            cooldown_until=data["cooldown_until"],
            alert=alert,
        )


def alert_id(rule: str, key: str, window_start: float) -> str:
    """Deterministic, so re-detecting the same episode after a restart is the same alert."""
    return "alt_" + hashlib.sha256(f"{rule}|{key}|{window_start:.3f}".encode()).hexdigest()[:20]


def ewma_update(mean: float, var: float, x: float, alpha: float) -> tuple[float, float]:
    """One step of the exponentially weighted mean and variance."""
    diff = x - mean
    incr = alpha * diff
    return mean + incr, (1 - alpha) * (var + diff * incr)


def effective_std(rule: Rule, mean: float, var: float, count: int) -> float:
    binomial = math.sqrt(max(mean * (1 - mean), 0.0) / count) if count else 0.0
    return max(math.sqrt(max(var, 0.0)), binomial, rule.min_std)


class Detector:
    """Feeds observations through every rule; returns alert events as windows close."""

    def __init__(self, rules: RuleSet, states: dict[tuple[str, str], KeyState] | None = None,
                 watched: frozenset[str] = frozenset(), explain: Callable[[Alert], dict[str, Any]] | None = None) -> None:
        self.rules = rules
        self.watched = watched  # watchlist entity ids, for rules with watchlist_only
        self.explain = explain  # called as an alert opens or updates; its explanation then goes with every later event
        names = {r.name for r in rules.rules}
        self.states: dict[tuple[str, str], KeyState] = {k: s for k, s in (states or {}).items() if k[0] in names}
        self.watermark = max((s.last_window_end for s in self.states.values()), default=0.0)
        self.late = 0
        self.dirty: set[tuple[str, str]] = set()
        self._next_due = 0.0

    def observe(self, obs: Observation) -> list[AlertEvent]:
        """One in-order stream: count the observation, then let event time follow it."""
        self.add(obs)
        return self.advance(obs.ts)

    def add(self, obs: Observation) -> None:
        """Count an observation in its open windows (dropped as late if they closed)."""
        for rule in self.rules.rules:
            for key in rule.keys_of(obs.fields, obs.entities, self.watched):
                self._count(rule, key, obs)

    def _count(self, rule: Rule, key: str, obs: Observation) -> None:
        state = self.states.setdefault((rule.name, key), KeyState())
        start = math.floor(obs.ts / rule.window_s) * rule.window_s
        due = start + rule.window_s + rule.grace_s
        if start < state.last_window_end or due <= self.watermark:
            self.late += 1
            return
        self._next_due = min(self._next_due, due)
        win = state.open_windows.setdefault(start, Window())
        if win.add(obs, obs.source in rule.distinct_stories) and len(win.examples) < rule.examples:
            win.examples.append({"id": obs.id, "text": obs.text[:EXAMPLE_CHARS]})

    def advance(self, watermark: float) -> list[AlertEvent]:
        """Move event time forward to ``watermark``; close every window it passes."""
        if watermark <= self.watermark:
            return []
        self.watermark = watermark
        if watermark < self._next_due:
            return []
        self._next_due = math.inf
        events: list[AlertEvent] = []
        for (name, key), state in self.states.items():
            rule = self.rules.by_name(name)
            for start in sorted(s for s in state.open_windows if s + rule.window_s + rule.grace_s <= watermark):
                events.extend(self._close(rule, key, state, start, state.open_windows.pop(start)))
                self.dirty.add((name, key))
            quiet_end = state.last_window_end + rule.window_s
            if state.alert and not state.open_windows and quiet_end + rule.grace_s <= watermark:
                events.append(self._resolve(rule, state, quiet_end))
                self.dirty.add((name, key))
            pending = [s + rule.window_s + rule.grace_s for s in state.open_windows]
            if state.alert:
                pending.append(quiet_end + rule.grace_s)
            self._next_due = min([self._next_due, *pending])
        return events

    def _close(self, rule: Rule, key: str, state: KeyState, start: float, win: Window) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        end = start + rule.window_s
        if state.alert and start > state.last_window_end:
            events.append(self._resolve(rule, state, state.last_window_end))  # empty windows in between
        count, negatives = win.totals()
        share = negatives / count
        std = effective_std(rule, state.mean, state.var, count)
        z = (share - state.mean) / std
        judged = state.weight >= rule.min_baseline_windows and count >= rule.min_volume
        spiking = judged and z >= rule.threshold_z
        state.last_window_end = end
        if spiking:
            evidence = dict(
                window_start=start, window_end=end, count=count, negatives=negatives, share=share,
                baseline_mean=state.mean, baseline_std=std, z=z, updated_at=end,
                examples=tuple(win.examples), model_versions=tuple(sorted(win.model_versions)),
            )
            if state.alert:
                old = state.alert
                state.alert = self._explained(replace(old, **evidence, peak_z=max(old.peak_z, z), windows=old.windows + 1))
                events.append(AlertEvent("updated", state.alert))
            elif start < state.cooldown_until:
                log.info("alert suppressed by cooldown: rule=%s key=%s z=%.2f until=%s", rule.name, key, z, state.cooldown_until)
            else:
                state.alert = Alert(
                    alert_id=alert_id(rule.name, key, start), rule=rule.name, key=key, labels=parse_key(key),
                    severity=rule.severity, status="open", opened_at=end, resolved_at=None, peak_z=z, windows=1,
                    **evidence,
                )
                state.alert = self._explained(state.alert)
                log.warning("alert opened: rule=%s key=%s share=%.3f baseline=%.3f z=%.2f n=%d",
                            rule.name, key, share, state.mean, z, count)
                events.append(AlertEvent("opened", state.alert))
            return events
        if state.alert:
            events.append(self._resolve(rule, state, end))
        # a thin window counts for less; early on, a plain average (no stale first guess)
        w = min(1.0, count / rule.min_volume)
        state.weight += w
        state.mean, state.var = ewma_update(state.mean, state.var, share, max(rule.alpha * w, w / state.weight))
        state.windows_seen += 1
        return events

    def _explained(self, alert: Alert) -> Alert:
        return replace(alert, explanation=self.explain(alert)) if self.explain else alert

    def _resolve(self, rule: Rule, state: KeyState, at: float) -> AlertEvent:
        assert state.alert is not None
        state.alert = replace(state.alert, status="resolved", resolved_at=at, updated_at=at)
        event = AlertEvent("resolved", state.alert)
        log.info("alert resolved: rule=%s key=%s id=%s", rule.name, state.alert.key, state.alert.alert_id)
        state.alert = None
        state.cooldown_until = at + rule.cooldown_s
        state.last_window_end = max(state.last_window_end, at)
        return event

    def take_dirty(self) -> list[tuple[str, str, KeyState]]:
        """Keys whose closed-window state changed since the last call (to persist)."""
        out = [(name, key, self.states[(name, key)]) for name, key in sorted(self.dirty)]
        self.dirty.clear()
        return out
