"""What the worker does to one batch of raw Kafka records, as plain functions.

The faust agent only gathers records and acks them; everything that decides what a
record becomes (a scored row or a dead letter) lives here so it is testable without
a broker or an event loop. Order inside :func:`process_batch` is the durability
contract: rows are written to the store before the caller may ack the offsets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, get_args

from riskpulse.core.schema import DeadLetter, InvalidMessage, Message, ScoredMessage, Sentiment, dead_letter, parse_message
from riskpulse.streams.enrich.pii import DEFAULT_MASKER, PiiMasker, mask_dead_letter, mask_message
from riskpulse.streams.store.entities import ENTITY_MENTIONS_TABLE, mention_rows
from riskpulse.streams.store.messages import DEAD_LETTERS_TABLE, MESSAGES_TABLE, dead_letter_row, message_row

SENTIMENTS = frozenset(get_args(Sentiment))
log = logging.getLogger("riskpulse.worker")


@dataclass(frozen=True)
class RawRecord:
    """One record as it came off the raw topic, with where it came from."""

    value: bytes | None
    topic: str
    partition: int
    offset: int


class Classifier(Protocol):
    """The part of ``riskpulse.models.serving.inference.Engine`` the worker needs."""

    version: str

    def classify(self, texts: Sequence[str]) -> list[Any]: ...


class FoundEntities(Protocol):
    def result(self) -> list[Any]:
        """What was asked for each text (its mentions, its sketch), in order; waits until it is there."""
        ...


class EntityFinder(Protocol):
    """What the worker needs of ``riskpulse.streams.enrich.entities.EntityExtractor`` (finds in the caller's thread)
    or ``riskpulse.streams.enrich.enrich_process.EnrichProcess.entities`` (finds in a child process, while the batch is classified)."""

    def submit(self, texts: Sequence[str]) -> FoundEntities: ...


class Sketcher(Protocol):
    def submit(self, texts: Sequence[str]) -> FoundEntities: ...


class StoryGrouper(Protocol):
    """The part of ``riskpulse.streams.enrich.stories.StoryIndex`` the worker needs; its ``sketcher`` sketches the
    texts in the caller's thread or (``riskpulse.streams.enrich.enrich_process``) in a child process."""

    sketcher: Sketcher

    def assign(self, messages: Iterable[tuple[str, float, str]], sketched: Any = None) -> list[str]: ...


class BatchWriter(Protocol):
    """The part of ``riskpulse.streams.store.backends.Store`` the worker needs."""

    def write_batch(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None: ...


@dataclass
class BatchResult:
    scored: list[ScoredMessage] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per stage (parse, classify, insert): where a batch's time goes


@dataclass(frozen=True)
class ConstantScores:
    topic: str = "General News | Opinion"
    topic_prob: float = 1.0
    sentiment: str = "neutral"
    sentiment_prob: float = 1.0
    model_version: str = "null"


class NullClassifier:
    """Gives every text the same scores at no cost. A worker running it measures the streaming layer
    alone (Kafka, parsing, ClickHouse, emits, acks): the ceiling a GPU-hosted model would meet."""

    version = ConstantScores.model_version

    def classify(self, texts: Sequence[str]) -> list[ConstantScores]:
        return [ConstantScores()] * len(texts)


def split_valid(records: Sequence[RawRecord]) -> tuple[list[tuple[RawRecord, Message]], list[DeadLetter]]:
    """Parse every record; a record that is not a valid message becomes a dead letter."""
    valid: list[tuple[RawRecord, Message]] = []
    dead: list[DeadLetter] = []
    for rec in records:
        try:
            valid.append((rec, parse_message(rec.value)))
        except InvalidMessage as exc:
            log.warning("dead letter %s[%s]@%s: %s", rec.topic, rec.partition, rec.offset, exc)
            dead.append(dead_letter(str(exc), rec.value, rec.topic, rec.partition, rec.offset))
    return valid, dead


def masked(
    valid: Sequence[tuple[RawRecord, Message]], masker: PiiMasker,
) -> tuple[list[tuple[RawRecord, Message]], list[list[str]]]:
    """Each message with personal data masked out of its text and meta, and the kinds masked, in order."""
    pairs = [mask_message(msg, masker) for _, msg in valid]
    return [(rec, msg) for (rec, _), (msg, _) in zip(valid, pairs, strict=True)], [kinds for _, kinds in pairs]


def to_scored(msg: Message, scores: Any, now: datetime, pii: Sequence[str] = ()) -> ScoredMessage:
    """A message with the classifier's verdict (any object with the ``riskpulse.models.serving.inference.Scores`` fields).

    The message was validated when it was parsed, so it is not validated again (that was ~35 µs a message,
    a third of a null-model batch's CPU); the classifier's fields are checked here instead, and a verdict
    outside the schema raises ``ValueError`` as validation would. Every field is given, none defaulted.
    """
    if scores.sentiment not in SENTIMENTS or not (0 <= scores.topic_prob <= 1 and 0 <= scores.sentiment_prob <= 1):
        raise ValueError(f"classifier verdict outside the schema: {scores.sentiment!r} p={scores.sentiment_prob!r}, "
                         f"{scores.topic!r} p={scores.topic_prob!r}")
    return ScoredMessage.model_construct(
        **msg.__dict__,
        topic=str(scores.topic),
        topic_prob=float(scores.topic_prob),
        sentiment=scores.sentiment,
        sentiment_prob=float(scores.sentiment_prob),
        model_version=str(scores.model_version),
        processed_at=now,
        story_id=msg.id,  # its validator, which model_construct skips, would set this
        pii=list(pii),
        entities=[],  # given, not defaulted: pydantic 2.13 inspects a default_factory's signature on every
                      # model_construct, parsing list's text signature (~90 µs a message, most of a batch's CPU)
    )


def classify(valid: Sequence[tuple[RawRecord, Message]], engine: Classifier,
             pii: Sequence[Sequence[str]] | None = None) -> tuple[list[ScoredMessage], list[DeadLetter]]:
    """Classify the batch in one call; if the engine rejects it, retry one by one so a
    single text it cannot score becomes a dead letter instead of stalling the partition.
    ``pii`` holds each message's masked kinds, kept in its scored record."""
    if not valid:
        return [], []
    now = datetime.now(timezone.utc)
    kinds = pii if pii is not None else [()] * len(valid)
    try:
        scores = engine.classify([msg.text for _, msg in valid])
        return [to_scored(msg, s, now, k) for (_, msg), s, k in zip(valid, scores, kinds, strict=True)], []
    except ValueError as exc:
        log.warning("batch of %d rejected by model %s (%s); scoring one by one", len(valid), engine.version, exc)
    scored: list[ScoredMessage] = []
    dead: list[DeadLetter] = []
    for (rec, msg), k in zip(valid, kinds, strict=True):
        try:
            scored.append(to_scored(msg, engine.classify([msg.text])[0], now, k))
        except ValueError as exc:
            dead.append(dead_letter(f"classifier: {exc}", rec.value, rec.topic, rec.partition, rec.offset))
    return scored, dead


def with_entities(scored: Sequence[ScoredMessage], finder: EntityFinder) -> tuple[list[ScoredMessage], list[dict[str, Any]]]:
    """Each message with the ids of the entities it names, and its ``entity_mentions`` rows."""
    return tagged(scored, finder.submit([m.text for m in scored]).result())


def tagged(scored: Sequence[ScoredMessage], found: Sequence[Sequence[Any]]) -> tuple[list[ScoredMessage], list[dict[str, Any]]]:
    """Each message with the ids of the entities found in it (``found[i]`` are message i's mentions), and its
    ``entity_mentions`` rows."""
    messages: list[ScoredMessage] = []
    rows: list[dict[str, Any]] = []
    for message, mentions in zip(scored, found, strict=True):
        if mentions:
            message = message.model_copy(update={"entities": list(dict.fromkeys(m.entity_id for m in mentions))})
            rows.extend(mention_rows(message, mentions))
        messages.append(message)
    return messages, rows


def with_stories(scored: Sequence[ScoredMessage], grouper: StoryGrouper, sketched: Any = None) -> list[ScoredMessage]:
    """Each message with the id of its near-duplicate story, given in batch order (the first copy names it);
    ``sketched``: the messages' sketches, made beforehand, in their order (``stories.Sketches``)."""
    story_ids = grouper.assign(((m.id, m.ts.timestamp(), m.text) for m in scored), sketched)
    return [m if s == m.story_id else m.model_copy(update={"story_id": s}) for m, s in zip(scored, story_ids, strict=True)]


def process_batch(records: Sequence[RawRecord], engine: Classifier, store: BatchWriter,
                  entities: EntityFinder | None = None, stories: StoryGrouper | None = None,
                  masker: PiiMasker | None = DEFAULT_MASKER) -> BatchResult:
    """Parse, classify and durably store one batch. Returns what to emit downstream.

    When this returns, every record of the batch is in the store (as a message row or
    a dead letter), so its offset may be committed. If it raises, nothing may be acked:
    the batch is redelivered and the idempotent messages table absorbs the repeat. With a masker
    (the default; None turns it off) personal data is masked out of every message and dead letter
    before anything is classified, stored or handed back to emit; each scored record lists the
    kinds masked. With an entity finder, each message's entity mentions are stored in the same step
    (``entity_mentions``, idempotent too); the finder is handed the batch before it is classified, so one
    that works in its own process finds them meanwhile.
    With a story grouper, each message is stored with its story id (a redelivered message keeps its own).
    """
    started = time.perf_counter()
    valid, dead = split_valid(records)
    parsed = time.perf_counter()
    valid, pii = masked(valid, masker) if masker is not None else (valid, None)
    masking = time.perf_counter()
    texts = [msg.text for _, msg in valid]
    # sketches first: a child process answers in order, so the worker groups stories while the child finds entities
    sketching = stories.sketcher.submit(texts) if stories is not None and valid else None
    sketched_at = time.perf_counter()  # an in-thread sketcher has sketched them already; a child process is sketching them
    finding = entities.submit(texts) if entities is not None and valid else None
    submitted = time.perf_counter()
    scored, unscorable = classify(valid, engine, pii)
    dead.extend(unscorable)
    if masker is not None and dead:
        dead = [mask_dead_letter(letter, masker) for letter in dead]
    classified = time.perf_counter()
    at = {msg.id: i for i, (_, msg) in enumerate(valid)}
    if sketching is not None:
        scored = with_stories(scored, stories, sketching.result().take([at[m.id] for m in scored]))
    grouped = time.perf_counter()  # what grouping stories added to the batch, beyond classifying it
    mentions: list[dict[str, Any]] = []
    if finding is not None:
        found = finding.result()
        scored, mentions = tagged(scored, [found[at[m.id]] for m in scored])
    tagged_at = time.perf_counter()
    if scored:
        store.write_batch(MESSAGES_TABLE, [message_row(m) for m in scored])
    if mentions:
        store.write_batch(ENTITY_MENTIONS_TABLE, mentions)
    if dead:
        store.write_batch(DEAD_LETTERS_TABLE, [dead_letter_row(d) for d in dead])
    seconds = {"parse": parsed - started, "mask": masking - parsed, "classify": classified - submitted,
               "stories": (sketched_at - masking) + (grouped - classified),
               "entities": (submitted - sketched_at) + (tagged_at - grouped), "insert": time.perf_counter() - tagged_at}
    return BatchResult(scored=scored, dead=dead, seconds=seconds)
