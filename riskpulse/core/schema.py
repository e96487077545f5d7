"""The one message schema shared by producers, agents, sinks and the dashboard.

A :class:`Message` is what producers put on the raw topic (JSON, UTF-8).
A :class:`ScoredMessage` is a message plus the classifier's verdict; it is what
the worker stores in ClickHouse and emits on the scored topic.
A :class:`DeadLetter` is a raw record that could not become a message, kept with
the reason and the original bytes so nothing is lost.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MAX_TEXT_BYTES = 32 * 1024
MAX_META_BYTES = 4 * 1024
# Event times the store and the detector can use: ClickHouse DateTime starts at the Unix epoch, and one record
# from the future would close every live alert window (event time only moves forward).
EARLIEST_TS = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_FUTURE_SKEW_S = 24 * 3600
MAX_RECORD_BYTES = MAX_TEXT_BYTES + MAX_META_BYTES + 4096   # a raw record over it is dead-lettered unparsed
DEAD_LETTER_HEAD_BYTES = 4096   # what a dead letter keeps of such a record (its id and fields come first)
# pydantic's JSON serialiser gives up near 255 levels, so a small but deep meta would parse, then crash the emit.
MAX_META_DEPTH = 32
SOURCES = ("news", "customer", "social", "internal")
Source = Literal["news", "customer", "social", "internal"]
Sentiment = Literal["negative", "neutral", "positive"]


class Message(BaseModel):
    """One piece of text about finance: a news item or a customer message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field("", max_length=128, description="Producer-given id; empty → content hash.")
    source: Source
    channel: str = Field("", max_length=128, description="Publisher, app, branch …")
    lang: str = Field("en", max_length=16)
    ts: datetime = Field(description="Event time, timezone-aware.")
    text: str = Field(min_length=1)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("ts")
    @classmethod
    def _aware(cls, ts: datetime) -> datetime:
        if ts.tzinfo is None:
            raise ValueError("ts must carry a timezone (e.g. 2026-01-02T10:00:00Z)")
        ts = ts.astimezone(timezone.utc)
        if ts < EARLIEST_TS:
            raise ValueError("ts is before 1970-01-01T00:00:00Z, which the store's DateTime cannot hold")
        if (ts - datetime.now(timezone.utc)).total_seconds() > MAX_FUTURE_SKEW_S:
            raise ValueError(f"ts is more than {MAX_FUTURE_SKEW_S // 3600} h in the future (producer clock wrong?); "
                             "it would move the alert detector's event time past every live window")
        return ts

    @field_validator("text")
    @classmethod
    def _text_bounded(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty or whitespace only")
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            raise ValueError(f"text is larger than {MAX_TEXT_BYTES} bytes")
        return text

    @field_validator("meta")
    @classmethod
    def _meta_small(cls, meta: dict[str, Any]) -> dict[str, Any]:
        if not meta:
            return meta
        if len(json.dumps(meta, default=str)) > MAX_META_BYTES:
            raise ValueError(f"meta is larger than {MAX_META_BYTES} bytes as JSON")
        if _depth(meta) > MAX_META_DEPTH:
            raise ValueError(f"meta is nested deeper than {MAX_META_DEPTH} levels")
        return meta

    @model_validator(mode="after")
    def _default_id(self) -> "Message":
        if not self.id:
            object.__setattr__(self, "id", content_id(self.source, self.channel, self.text))
        return self

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @property
    def key(self) -> bytes:
        """Kafka key: one source/channel stays on one partition, in order."""
        return f"{self.source}/{self.channel}".encode("utf-8")


def _depth(value: Any) -> int:
    """Nesting levels of JSON-like data (iterative: a hostile record must not exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def content_id(source: str, channel: str, text: str) -> str:
    """Stable id for a message its producer did not name: same content → same id."""
    digest = hashlib.sha256(f"{source}\x1f{channel}\x1f{text}".encode("utf-8")).hexdigest()
    return f"h-{digest[:32]}"


class ScoredMessage(Message):
    """A message with its topic and sentiment as one model version saw them."""

    topic: str
    topic_prob: float = Field(ge=0, le=1)
    sentiment: Sentiment
    sentiment_prob: float = Field(ge=0, le=1)
    model_version: str
    processed_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    entities: list[str] = Field(default_factory=list, description="Ids of the companies, banks and tickers it names (entity_mentions has the spans).")
    story_id: str = Field("", max_length=128, description="Id of the first message of its near-duplicate story; empty → its own id.")
    pii: list[str] = Field(default_factory=list, description="Kinds of personal data masked out of text and meta (card, phone …), one per span.")

    @model_validator(mode="after")
    def _own_story(self) -> "ScoredMessage":
        if not self.story_id:
            object.__setattr__(self, "story_id", self.id)  # records scored before stories existed stand alone
        return self


class DeadLetter(BaseModel):
    """A raw record the worker could not accept, with why and where it came from."""

    model_config = ConfigDict(frozen=True)

    reason: str
    topic: str
    partition: int
    offset: int
    raw_b64: str = Field(description="The original bytes, base64, so nothing is lost.")
    failed_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.raw_b64)


class InvalidMessage(ValueError):
    """Raised by :func:`parse_message` with a reason fit for a dead-letter record."""


def parse_message(raw: bytes | None) -> Message:
    """Bytes from Kafka → a valid :class:`Message`, or :class:`InvalidMessage` saying why."""
    if raw is None:
        raise InvalidMessage("empty record (no value)")
    if len(raw) > MAX_RECORD_BYTES:
        raise InvalidMessage(f"record is {len(raw)} bytes, over the size limit")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage(f"not valid UTF-8: {exc}") from None
    try:
        payload = json.loads(decoded)
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"not valid JSON: {exc}") from None
    except RecursionError:  # a few kB of '[[[[' would otherwise crash the batch, and every redelivery of it
        raise InvalidMessage("JSON nested too deeply") from None
    if not isinstance(payload, dict):
        raise InvalidMessage(f"JSON is a {type(payload).__name__}, expected an object")
    try:
        return Message.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors())
        raise InvalidMessage(f"schema: {problems}") from None


def dead_letter(reason: str, raw: bytes | None, topic: str, partition: int, offset: int) -> DeadLetter:
    """A dead letter with the raw bytes; of a record over MAX_RECORD_BYTES only the first DEAD_LETTER_HEAD_BYTES,
    its length and sha256. Whole, base64 of a 1 MB line was over the broker's 1 MiB message limit (the worker
    retried emitting that batch forever), and masking personal data in 10,000 such records took minutes."""
    raw = raw or b""
    if len(raw) > MAX_RECORD_BYTES:
        reason = (f"{reason} [raw cut to its first {DEAD_LETTER_HEAD_BYTES} of {len(raw)} bytes, sha256 "
                  f"{hashlib.sha256(raw).hexdigest()}; the whole record is at {topic}[{partition}]@{offset}]")
        raw = raw[:DEAD_LETTER_HEAD_BYTES]
    return DeadLetter(
        reason=reason,
        topic=topic,
        partition=partition,
        offset=offset,
        raw_b64=base64.b64encode(raw).decode("ascii"),
    )
