"""Declarative alert rules, read from YAML and validated before the worker starts.

A rule says which key to watch (topic, source, channel, entity or a combination), how long a
window is, how unusual the negative share must be (z-score against the key's own
EWMA baseline), how many messages a window needs before it counts, and where and how
to notify. Errors name the file, line and field so a bad deploy fails loudly at start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence, Set
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from riskpulse.core import RiskPulseError
from riskpulse.core.resources import deploy_file
from riskpulse.core.schema import Source

KeyField = Literal["topic", "source", "channel", "entity"]
KEY_FIELDS: tuple[str, ...] = ("topic", "source", "channel", "entity")
DEFAULT_RULES = deploy_file("alert-rules.yaml")


class RulesError(RiskPulseError):
    """The rules file cannot be used; the message names the line and field to fix."""


class WebhookTarget(BaseModel):
    """One receiver of notifications."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="http(s) URL that receives a JSON POST.")
    format: Literal["standard", "slack"] = "standard"

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        return url


class Rule(BaseModel):
    """One spike rule; durations are seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    key: tuple[KeyField, ...] = Field(min_length=1, description="Fields whose values form the alert key.")
    where: dict[KeyField, str] = Field(default_factory=dict, description="Only messages with these values.")
    window_s: float = Field(gt=0, description="Tumbling window length on event time.")
    grace_s: float = Field(2.0, ge=0, description="How long a window waits for late messages.")
    threshold_z: float = Field(3.0, gt=0)
    min_volume: int = Field(20, ge=1, description="Messages a window needs before it can alert.")
    min_baseline_windows: int = Field(3, ge=1, description="Earlier windows needed before judging.")
    min_std: float = Field(0.05, gt=0, le=1, description="Floor on the baseline deviation of the share.")
    alpha: float = Field(0.2, gt=0, le=1, description="EWMA weight of the newest window.")
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown_s: float = Field(0, ge=0, description="After a resolve, no new alert on that key for this long.")
    examples: int = Field(5, ge=0, le=50, description="Negative example messages carried as evidence.")
    distinct_stories: tuple[Source, ...] = Field(
        ("news",), description="Sources whose messages count once per story in a window (a story is negative when most "
        "of its copies are): fifty reprints of one article are one event, fifty distinct complaints fifty. [] counts every message.")
    webhooks: tuple[WebhookTarget, ...] = ()
    group_by: tuple[KeyField, ...] | None = Field(None, description="Default: the rule's key.")
    group_wait_s: float = Field(30, ge=0)
    group_interval_s: float = Field(300, ge=0)
    repeat_interval_s: float = Field(4 * 3600, gt=0)
    send_resolved: bool = True
    watchlist_only: bool = Field(
        False, description="With key entity: only entities on the watchlist (RISKPULSE_WATCHLIST_FILE) are watched.")

    @field_validator("key", "group_by")
    @classmethod
    def _unique(cls, fields: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if fields is not None and len(set(fields)) != len(fields):
            raise ValueError(f"fields repeat: {list(fields)}")
        return fields

    @model_validator(mode="after")
    def _group_within_key(self) -> "Rule":
        if self.group_by is not None and not set(self.group_by) <= set(self.key):
            raise ValueError(f"group_by {list(self.group_by)} must be a subset of key {list(self.key)}")
        return self

    @model_validator(mode="after")
    def _watchlist_needs_entity(self) -> "Rule":
        if self.watchlist_only and "entity" not in self.key:
            raise ValueError("watchlist_only needs 'entity' in key")
        return self

    @property
    def grouping(self) -> tuple[str, ...]:
        return self.group_by if self.group_by is not None else self.key

    def key_of(self, fields: dict[str, str]) -> str | None:
        """The alert key for a message's fields, or None when the rule's filter excludes it."""
        if any(fields.get(k) != v for k, v in self.where.items()):
            return None
        return json.dumps({k: fields.get(k, "") for k in self.key}, ensure_ascii=False)

    def keys_of(self, fields: dict[str, str], entities: Sequence[str] = (), watched: Set[str] = frozenset()) -> list[str]:
        """The alert keys a message counts under: one, or with ``entity`` in the key one per entity it names
        (none when it names none; with ``watchlist_only`` only those in ``watched``); ``where: {entity: X}``
        keeps messages that name X."""
        if "entity" in self.where and self.where["entity"] not in entities:
            return []
        plain = {k: v for k, v in self.where.items() if k != "entity"}
        if any(fields.get(k) != v for k, v in plain.items()):
            return []
        if "entity" not in self.key:
            return [json.dumps({k: fields.get(k, "") for k in self.key}, ensure_ascii=False)]
        named = [e for e in dict.fromkeys(entities) if not self.watchlist_only or e in watched]
        return [json.dumps({k: e if k == "entity" else fields.get(k, "") for k in self.key}, ensure_ascii=False) for e in named]


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> "RuleSet":
        names = [r.name for r in self.rules]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"rule names must be unique, repeated: {sorted(dup)}")
        return self

    def by_name(self, name: str) -> Rule:
        """The rule called ``name``; KeyError if the file no longer has it."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)


def parse_key(key: str) -> dict[str, str]:
    """An alert key (JSON, because topic names contain any character) → its labels."""
    return json.loads(key)


def _node_at(node: yaml.Node, loc: tuple[Any, ...]) -> tuple[yaml.Node, str]:
    """Walk the composed YAML tree along a pydantic error location; say how far it got."""
    reached = ""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for knode, vnode in node.value:
                if knode.value == part:
                    node = vnode
                    break
            else:
                return node, reached
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node, reached
        reached = f"{reached}.{part}" if reached else str(part)
    return node, reached


def _key_node(root: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node | None:
    """For an unknown field, the key node itself (its line is where the typo is)."""
    parent, _ = _node_at(root, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for knode, _v in parent.value:
            if knode.value == loc[-1]:
                return knode
    return None


def load_rules_text(text: str, source: str = "<rules>") -> RuleSet:
    """Parse and validate rules YAML; :class:`RulesError` lists every problem with its line."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from None
    if root is None or not isinstance(data, dict):
        raise RulesError(f"{source}: expected a mapping with a 'rules:' list")
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = []
        errors = exc.errors()
        deeper = [tuple(e["loc"]) for e in errors]
        for err in errors:
            loc = tuple(err["loc"])
            if err["type"] == "too_short" and any(d[: len(loc)] == loc and d != loc for d in deeper):
                continue  # a side effect of its items' errors, which are listed

            node = _key_node(root, loc) if err["type"] == "extra_forbidden" else None
            if node is None:
                node, _ = _node_at(root, loc)
            field = ".".join(str(p) for p in loc) or "(top level)"
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{source}:{node.start_mark.line + 1}: field {field}: {msg}")
        raise RulesError("invalid alert rules — fix these and restart:\n  " + "\n  ".join(problems)) from None


def load_rules(path: Path | None) -> RuleSet:
    """Rules from a file (default ``deploy/alert-rules.yaml``)."""
    path = path or DEFAULT_RULES
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read alert rules {path}: {exc.strerror}; set RISKPULSE_RULES_FILE") from None
    return load_rules_text(text, str(path))
