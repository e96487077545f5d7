"""Near-duplicate grouping: which messages are one story (a reprint, a retweet, a re-linked or cut copy).

Syndicated news, retweets and copy-pasted complaints repeat one text with small changes, so a count
of messages overstates how many things happened. :class:`StoryIndex` gives every message a story id,
the id of the first message of its story that the index saw, by comparing its MinHash (datasketch)
with the recent messages in an LSH index:

* text is normalised first (HTML entities, ``RT @x:`` prefixes, URLs, case, punctuation and a word
  cut by a trailing ellipsis go), then cut into character shingles, which a reworded word or a new
  link changes only locally;
* a candidate from the LSH joins the story if the estimated Jaccard similarity reaches
  ``threshold``, or if the shorter text is almost wholly contained in the longer (a truncated copy,
  estimated from the Jaccard and both shingle counts) and is long enough for that to mean something;
* memory is bounded: entries older than ``horizon_s`` of event time behind the newest message, and
  beyond ``max_entries``, are evicted oldest-inserted first (~4 KB per entry, measured: 100,000 entries ≈ 400 MB);
* a message id the index already holds gets its recorded story id back, so a redelivered batch is
  given the ids it had; after a restart :meth:`StoryIndex.load` refills the index from the stored
  messages (``riskpulse.streams.store.messages.recent_stories``), in their order, with their ids.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from datasketch import MinHash, MinHashLSH

from riskpulse.core.settings import Settings
from riskpulse.streams.store.backends import Queryable
from riskpulse.streams.store.messages import recent_stories

log = logging.getLogger("riskpulse.stories")

_RETWEET = re.compile(r"^\s*(?:rt\b\s*:?\s*(?:@\w+\s*)?:?\s*)+", re.IGNORECASE)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_TRUNCATED = re.compile(r"\S*(?:…|\.\.\.)\s*$")  # the word a cut copy ends in is a fragment
_WORD = re.compile(r"\w+")
_ANCHOR = re.compile(r"\$[A-Za-z][A-Za-z.]*|\d+(?:[.,]\d+)*")


def _body(text: str) -> str:
    text = _URL.sub(" ", html.unescape(text))
    return _TRUNCATED.sub(" ", _RETWEET.sub("", text))


def normalise(text: str) -> str:
    """The words of ``text`` that survive reprinting: no RT prefix, links, case, punctuation or cut-off word."""
    return " ".join(_WORD.findall(_body(text).lower()))


def anchors(text: str) -> frozenset[str]:
    """Cashtags and numbers: what a template headline ("X beats by $0.02") changes from one story to the next."""
    return frozenset(_ANCHOR.findall(_body(text)))


def shingle_hashes(normalised: str, width: int) -> np.ndarray:
    """32-bit hashes of the distinct overlapping ``width``-byte pieces of a text (the whole text if shorter).

    Each piece is packed into one integer exactly (``width`` ≤ 8) and then mixed (SplitMix64's
    finaliser): vectorised, and the same in every process, unlike Python's salted ``hash``.
    """
    data = np.frombuffer(normalised.encode("utf-8"), dtype=np.uint8).astype(np.uint64)
    if data.size == 0:
        return np.empty(0, dtype=np.uint32)
    if data.size < width:
        data = np.concatenate([data, np.zeros(width - data.size, dtype=np.uint64)])
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(8)
    pieces = np.unique(np.bitwise_or.reduce(sliding_window_view(data, width) << shifts, axis=1))
    pieces ^= pieces >> np.uint64(30)
    pieces *= np.uint64(0xBF58476D1CE4E5B9)
    pieces ^= pieces >> np.uint64(27)
    pieces *= np.uint64(0x94D049BB133111EB)
    pieces ^= pieces >> np.uint64(31)
    return (pieces & np.uint64(0xFFFFFFFF)).astype(np.uint32)


@dataclass(frozen=True)
class StoryParams:
    """How similar two texts must be to be one story, and how much the index remembers."""

    threshold: float = 0.6  # estimated Jaccard similarity of the shingle sets
    containment: float = 0.8  # share of the shorter text's shingles found in the longer (a cut copy)
    min_containment_shingles: int = 20  # a shorter text than this only joins by Jaccard
    min_length_ratio: float = 0.3  # nor does one under this share of the other's length
    anchor_overlap: float = 0.5  # a pair whose cashtags/numbers overlap less than this is two stories
    shingle: int = 5
    num_perm: int = 64
    bands: int = 12  # LSH bands of 2 permutations: more find more cut copies, each costs ~250 B per entry
    horizon_s: float = 24 * 3600.0
    max_entries: int = 100_000


@dataclass(frozen=True)
class _Entry:
    message_id: str
    story_id: str
    ts: float
    signature: np.ndarray
    size: int
    anchors: frozenset[str]


class StoryIndex:
    """Streaming near-duplicate index: :meth:`assign` returns a story id per message, in order."""

    def __init__(self, params: StoryParams = StoryParams()) -> None:
        self.params = params
        # bands of two rows: a pair at Jaccard J is a candidate with probability 1 - (1 - J²)^bands, so cut
        # copies (low Jaccard, high containment) are found too; each candidate is then checked on its signature
        self._lsh = MinHashLSH(num_perm=params.num_perm, params=(params.bands, 2))
        template = MinHash(num_perm=params.num_perm)
        self._permutations, self._scheme = template.permutations, template.scheme
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._by_message: dict[str, int] = {}
        self._next = 0
        self._lock = threading.Lock()
        self.watermark = float("-inf")

    def __len__(self) -> int:
        return len(self._entries)

    def sketch(self, message_id: str, story_id: str, ts: float, text: str) -> _Entry:
        """What the index keeps of a message: the MinHash of its shingles, their count, its anchors."""
        pieces = shingle_hashes(normalise(text), self.params.shingle)
        minhash = MinHash(num_perm=self.params.num_perm, hashfunc=int, permutations=self._permutations, scheme=self._scheme)
        minhash.update_batch(pieces.tolist())  # already hashed: datasketch only permutes and takes minima
        return _Entry(message_id, story_id, ts, minhash.hashvalues, len(pieces), anchors(text))

    def assign(self, messages: Iterable[tuple[str, float, str]]) -> list[str]:
        """(message id, event time in epoch seconds, text) → story id for each, in the order given."""
        with self._lock:  # one batch at a time, so a story's first message is the same in every run
            return [self.story_of(message_id, ts, text) for message_id, ts, text in messages]

    def story_of(self, message_id: str, ts: float, text: str) -> str:
        """The story ``message_id`` belongs to; it is remembered, so asking again answers the same."""
        known = self._by_message.get(message_id)
        if known is not None:
            return self._entries[known].story_id
        entry = self.sketch(message_id, message_id, ts, text)
        self._forget_before(ts)  # a story older than the horizon is not joined, even before the next insert
        match = self._best_match(entry)
        if match is not None:
            entry = replace(entry, story_id=match.story_id)
        self._add(entry)
        return entry.story_id

    def load(self, rows: Iterable[tuple[str, str, float, str]]) -> int:
        """Refill the index with stored (message id, story id, event time, text), oldest first; returns the count."""
        count = 0
        for message_id, story_id, ts, text in rows:
            if message_id not in self._by_message:
                self._add(self.sketch(message_id, story_id or message_id, ts, text))
                count += 1
        return count

    def _best_match(self, new: _Entry) -> _Entry | None:
        """The candidate most similar to ``new`` that is one story with it (ties: the oldest), or None."""
        if not self._entries or new.size == 0:
            return None
        candidates = [self._entries[key] for key in sorted(self._lsh.query(_Signature(new.signature)))]
        candidates = [old for old in candidates if self._anchors_agree(new.anchors, old.anchors)]
        if not candidates:
            return None
        p = self.params
        jaccard = np.count_nonzero(np.stack([old.signature for old in candidates]) == new.signature, axis=1) / p.num_perm
        best, best_score = None, 0.0
        for old, j in zip(candidates, jaccard.tolist()):
            score = j if j >= p.threshold else self._containment_score(new.size, old.size, j)
            if score > best_score:
                best, best_score = old, score
        return best

    def _anchors_agree(self, new: frozenset[str], old: frozenset[str]) -> bool:
        """Texts naming different tickers or figures ("X beats by $0.02" / "Y beats by $0.08") are two stories."""
        return not (new and old) or len(new & old) >= self.params.anchor_overlap * min(len(new), len(old))

    def _containment_score(self, size: int, other: int, jaccard: float) -> float:
        """For a cut copy, whose Jaccard is low: ranked below any Jaccard match, 0 when it is not one."""
        p = self.params
        shorter, longer = sorted((size, other))
        if shorter < p.min_containment_shingles or shorter < p.min_length_ratio * longer:
            return 0.0
        contained = jaccard * (size + other) / ((1 + jaccard) * shorter)  # |A∩B| / |shorter|
        return min(contained, 1.0) * p.threshold if contained >= p.containment else 0.0

    def _add(self, entry: _Entry) -> None:
        key = self._next
        self._next += 1
        self._entries[key] = entry
        self._by_message[entry.message_id] = key
        self._lsh.insert(key, _Signature(entry.signature), check_duplication=False)
        self._forget_before(entry.ts)

    def _forget_before(self, ts: float) -> None:
        """Advance event time to ``ts`` and evict, oldest inserted first, what is past the horizon or the bound."""
        self.watermark = max(self.watermark, ts)
        oldest_kept = self.watermark - self.params.horizon_s
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if len(self._entries) <= self.params.max_entries and entry.ts >= oldest_kept:
                return
            del self._entries[key]
            del self._by_message[entry.message_id]
            self._lsh.remove(key)


class _Signature:
    """What MinHashLSH reads of a MinHash (its values and length), without rebuilding one per entry."""

    __slots__ = ("hashvalues",)

    def __init__(self, hashvalues: np.ndarray) -> None:
        self.hashvalues = hashvalues

    def __len__(self) -> int:
        return len(self.hashvalues)


def params_from(settings: Settings) -> StoryParams:
    return StoryParams(threshold=settings.story_threshold, horizon_s=settings.story_horizon_s,
                       max_entries=settings.story_max_entries)


def restored_index(settings: Settings, store: Queryable) -> StoryIndex:
    """A worker's index, refilled from the stored messages of every partition within the horizon.

    Rebuilt rather than persisted: the messages table is already the durable record of which
    message got which story (written before offsets are acked), so the index can never disagree
    with it, and there is no second state to keep in step. The cost is paid at start (logged).
    """
    index = StoryIndex(params_from(settings))
    started = time.perf_counter()
    loaded = index.load(recent_stories(store, settings.story_horizon_s, settings.story_max_entries))
    log.info("story index: %d recent messages reloaded in %.1f s (horizon %.0f s, at most %d)",
             loaded, time.perf_counter() - started, settings.story_horizon_s, settings.story_max_entries)
    return index
