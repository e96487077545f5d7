"""Alertmanager-style grouping: which alerts go out together, and when.

Alerts of one rule that share the values of the rule's ``group_by`` fields form a group
(a storm over twenty channels of one topic is one group). A group's first notification
waits ``group_wait`` so the storm can gather; later changes go out at most every
``group_interval``; a still-firing group is repeated every ``repeat_interval`` unless
all its alerts are acknowledged; resolutions are sent when ``send_resolved``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace

from riskpulse.core.clock import from_epoch
from riskpulse.streams.alerts.detector import Alert
from riskpulse.streams.alerts.rules import Rule, RuleSet


@dataclass(frozen=True)
class Notification:
    notification_id: str
    group_key: str
    rule: Rule
    labels: dict[str, str]
    status: str  # firing | resolved
    alerts: tuple[Alert, ...]

    @property
    def states(self) -> dict[str, str]:
        return {a.alert_id: a.status for a in self.alerts}


@dataclass
class Group:
    key: str
    rule: Rule
    labels: dict[str, str]
    alerts: dict[str, Alert] = field(default_factory=dict)
    notified: dict[str, str] = field(default_factory=dict)  # alert id -> status receivers last heard
    owed: dict[str, Alert] = field(default_factory=dict)  # resolved before ever heard firing: their firing view
    pending_since: float | None = None
    last_sent: float | None = None


def group_key(rule: Rule, alert: Alert) -> str:
    return rule.name + json.dumps({k: alert.labels.get(k, "") for k in rule.grouping}, ensure_ascii=False)


def firing_view(alert: Alert) -> Alert:
    """A resolved alert as it was while open: same window and evidence, status ``open``."""
    return replace(alert, status="open", resolved_at=None, updated_at=alert.window_end)


class Grouper:
    """Pure bookkeeping; the dispatcher persists what it returns before sending.

    Every alert that opened is heard at least once as firing, with its window: one that resolves
    before its group's first flush (or that a restart finds resolved and never notified) is owed
    a firing notification, sent before its resolution (if ``send_resolved``).
    """

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.groups: dict[str, Group] = {}

    def _wanted(self, g: Group, a: Alert) -> str | None:
        """The status receivers should hear for this alert, or None if they need not."""
        return None if a.status == "resolved" and not g.rule.send_resolved else a.status

    def _changed(self, g: Group) -> bool:
        return bool(g.owed) or any(
            (w := self._wanted(g, a)) is not None and g.notified.get(a.alert_id) != w for a in g.alerts.values()
        )

    def add(self, alert: Alert, now: float, notified: dict[str, str] | None = None) -> None:
        """Take an alert's latest state; ``notified`` (on restore) is what its group's receivers last heard."""
        try:
            rule = self.rules.by_name(alert.rule)
        except KeyError:
            return  # rule removed since the alert opened
        key = group_key(rule, alert)
        g = self.groups.get(key)
        if g is None:
            labels = {k: alert.labels.get(k, "") for k in rule.grouping}
            g = self.groups[key] = Group(key, rule, labels, notified=dict(notified or {}))
        heard = g.notified.get(alert.alert_id)
        if alert.status == "resolved" and heard is None:
            g.owed[alert.alert_id] = firing_view(alert)
        if alert.status == "resolved" and (heard == "resolved" or self._wanted(g, alert) is None):
            g.alerts.pop(alert.alert_id, None)
        else:
            g.alerts[alert.alert_id] = alert
        if not g.alerts and not g.owed:
            del self.groups[key]
        elif self._changed(g) and g.pending_since is None:
            g.pending_since = now

    def due(self, now: float, acked: set[str] = frozenset()) -> list[Notification]:
        out: list[Notification] = []
        for key in list(self.groups):
            g = self.groups[key]
            rule = g.rule
            if self._changed(g):
                ready = g.pending_since + rule.group_wait_s if g.last_sent is None else g.last_sent + rule.group_interval_s
            elif any(a.status == "open" and a.alert_id not in acked for a in g.alerts.values()) and g.last_sent is not None:
                ready = g.last_sent + rule.repeat_interval_s
            else:
                ready = None
            if ready is None or now < ready:
                continue
            # an owed alert goes out firing now; its resolution waits for the next notification
            views = {a.alert_id: a for a in g.alerts.values() if self._wanted(g, a) is not None} | g.owed
            included = tuple(views.values())
            status = "firing" if any(a.status == "open" for a in included) else "resolved"
            digest = hashlib.sha256(f"{key}|{json.dumps(sorted((a.alert_id, a.status) for a in included))}|{now}".encode())
            out.append(Notification("ntf_" + digest.hexdigest()[:24], key, rule, g.labels, status, included))
            g.notified.update({a.alert_id: a.status for a in included})
            g.owed.clear()
            g.last_sent, g.pending_since = now, None
            g.alerts = {
                i: a for i, a in g.alerts.items()
                if a.status == "open" or g.notified.get(i) != self._wanted(g, a)
            }
            if not g.alerts:
                del self.groups[key]
        return out


def _iso(epoch: float | None) -> str | None:
    return from_epoch(epoch).isoformat().replace("+00:00", "Z") if epoch else None


# The standard body's schema (docs/alerts.md). 2: each alert carries ``explanation``; bodies without
# ``schema_version`` are version 1, the same but for that field.
SCHEMA_VERSION = 2
SLACK_EXAMPLES = 2
SLACK_EXAMPLE_CHARS = 160


def slack_explanation(alert: Alert) -> list[str]:
    """An alert's explanation as a few indented lines of Slack text (none when it has none)."""
    why = alert.explanation
    if not why or "window" not in why:
        return []
    win, base = why["window"], why["baseline"]
    lines = [f"    {win['messages']} msgs ({win['stories']} stories), {win['negative_share']:.0%} negative; "
             f"baseline {base['messages_per_window']:g}/window, {base['negative_share']:.0%} negative"]
    if why["top_entities"]:
        lines.append("    entities: " + ", ".join(f"{e['name']} ({e['messages']})" for e in why["top_entities"]))
    if why["top_sources"]:
        lines.append("    sources: " + ", ".join(f"{s['source']}/{s['channel']} ({s['messages']})" for s in why["top_sources"]))
    if why["terms"]:
        lines.append("    terms: " + ", ".join(t["term"] for t in why["terms"]))
    lines += [f"    > {' '.join(e['text'].split())[:SLACK_EXAMPLE_CHARS]}" for e in why["examples"][:SLACK_EXAMPLES]]
    return lines


def render(n: Notification, fmt: str, now: float) -> bytes:
    """The request body for one target: Standard Webhooks envelope or Slack-compatible text."""
    if fmt == "slack":
        head = f"[{n.status.upper()}] {n.rule.severity} {n.group_key}: {len(n.alerts)} alert(s)"
        lines = []
        for a in n.alerts:
            lines.append(f"• {a.key}: {a.share:.0%} negative of {a.count} (baseline {a.baseline_mean:.0%}, z={a.z:.1f}) — {a.status}")
            lines += slack_explanation(a)
        return json.dumps({"text": "\n".join([head, *lines])}).encode()
    body = {
        "type": f"riskpulse.alert.{n.status}",
        "timestamp": _iso(now),
        "data": {
            "schema_version": SCHEMA_VERSION,
            "notification_id": n.notification_id,
            "group_key": n.group_key,
            "rule": n.rule.name,
            "severity": n.rule.severity,
            "labels": n.labels,
            "status": n.status,
            "alerts": [a.to_dict(time=_iso) for a in n.alerts],
        },
    }
    return json.dumps(body, sort_keys=True).encode()
