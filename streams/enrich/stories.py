"""Near-duplicate grouping: which messages are one story (a reprint, a retweet, a re-linked or cut copy).

Syndicated news, retweets and copy-pasted complaints repeat one text with small changes, so a count
of messages overstates how many things happened. :class:`StoryIndex` gives every message a story id,
the id of the first message of its story that the index saw, by comparing its MinHash signature with
those of the recent messages that share an LSH band with it:

* text is normalised first (HTML entities, ``RT @x:`` prefixes, URLs, case, punctuation and a word
  cut by a trailing ellipsis go), then cut into 5-byte shingles, which a reworded word or a new link
  changes only locally; signatures use datasketch's ``MinHash`` permutations, computed for a batch at once;
* a candidate from the LSH joins the story if the estimated Jaccard similarity reaches
  ``threshold``, or if the shorter text is almost wholly contained in the longer (a truncated copy,
  estimated from the Jaccard and both shingle counts) and is long enough for that to mean something;
  either way their cashtags and figures must agree, or "X EPS beats by $0.02" would join "Y EPS
  beats by $0.08", and two short texts may not each name someone the other does not ("X to Report Q2
  Results" / "Y to Report Q2 Results");
* memory is bounded: entries older than ``horizon_s`` of event time behind the newest message, and
  beyond ``max_entries``, are evicted oldest-inserted first (~2.5 KB per entry, measured: 100,000 ≈ 250 MB);
* a message id the index already holds gets its recorded story id back, so a redelivered batch is
  given the ids it had; after a restart :meth:`StoryIndex.load` refills the index from the stored
  messages (``riskpulse.streams.store.messages.recent_stories``), in their order, with their ids.

Several workers: the raw topic is keyed by source/channel, so each worker sees the channels of the
partitions it owns, and syndicated copies (other publishers, other channels) often land on another
worker. Each worker groups with its own index, started from every partition's stored messages (so
after a restart or rebalance it knows the stories the others began) and, through
:class:`SharedStoryIndex`, topped up every ``story_sync_s`` (30 s) with what the others stored since.
A story whose copies reach k workers within that interval still becomes up to k stories (each named
by the first copy its worker saw): a distinct-story count then overstates such a burst by at most the
number of workers, not by the number of copies. Keying the topic by story cannot help: the story is
known only after this step, and channel keys keep each channel's messages in order.
"""

from __future__ import annotations

import html
import itertools
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from datasketch import MinHash

from riskpulse.core.clock import from_epoch
from riskpulse.core.settings import Settings
from riskpulse.streams.store.backends import Queryable
from riskpulse.streams.store.messages import recent_stories, stored_since

log = logging.getLogger("riskpulse.stories")
FUTURE_SLACK_S = 3600.0
SKETCH_CHUNK = 256  # texts sketched in one numpy pass (see Sketcher.sketch)

_RETWEET = re.compile(r"^\s*(?:rt\b\s*:?\s*(?:@\w+\s*)?:?\s*)+", re.IGNORECASE)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_TRUNCATED = re.compile(r"(?:(?<=\s)\S{1,30})?(?:…|\.\.\.)\s*$")  # a cut copy ends in a fragment of a word (if spaced)
_WORD = re.compile(r"\w+")
_ANCHOR = re.compile(r"\$[A-Za-z][A-Za-z.]*|\d+(?:[.,]\d+)*")  # cashtags and figures
_CREDIT = re.compile(r"(?:\s+(?:[-|—–]|\(?via)(?:\s+[^\s|—–-]+){1,3})+\s*$")  # " - Reuters", " | Bloomberg (via @x)"
_MENTION = re.compile(r"@\w+")
# not names: what wires and feeds put before a headline, and function words that open a sentence
_NOT_NAMES = frozenset(
    "breaking update updated just watch report exclusive video live alert new analysis opinion rt "
    "the a an this that these those i my our we you your it its is are was were what how why when where who which "
    "can could do does did will would should if and or but in on at for to of with from by as not no".split()
)


def _body(text: str) -> str:
    """What survives reprinting: no RT prefix, links, handles, trailing credit or cut-off last word.

    The credit and cut-off patterns are anchored at the end but tried from every position, so each runs
    only on a text that has what it needs (6 of the 11 µs a tweet took, on texts that mostly have neither).
    """
    text = _RETWEET.sub("", _URL.sub(" ", html.unescape(text))).rstrip()
    if "-" in text or "|" in text or "—" in text or "–" in text or "via" in text:
        text = _CREDIT.sub("", text)
    if text.endswith(("…", "...")):
        text = _TRUNCATED.sub(" ", text)
    return _MENTION.sub(" ", text) if "@" in text else text


def normalise(text: str) -> str:
    """What is shingled: the words of :func:`_body` in lower case, one space apart."""
    return " ".join(_WORD.findall(_body(text))).lower()


def _names(words: list[str]) -> frozenset[str]:
    """Capitalised words (lowercased), less wire prefixes and sentence-opening function words."""
    return frozenset(name for name in (w.lower() for w in words if len(w) > 1 and w[0].isupper()) if name not in _NOT_NAMES)


def shingle_sets(normalised: Sequence[str], width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct overlapping ``width``-byte pieces (≤ 8) of several texts at once, as 32-bit hashes.

    Returns (hashes, owner, sizes): each distinct piece's hash and the index of its text, grouped by text
    in order, and each text's number of distinct pieces. A text shorter than ``width`` is one piece.
    Vectorised over the whole batch; each piece is packed into an integer exactly and then mixed
    (SplitMix64's finaliser), the same in every process, unlike Python's salted ``hash``.
    """
    encoded = [text.encode("utf-8").ljust(width, b" ") for text in normalised]
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.uint64)
    ends = np.cumsum(lengths)
    windows = lengths - width + 1
    starts = np.repeat(ends - lengths, windows) + _ranges(windows)  # every window inside its own text
    owner = np.repeat(np.arange(len(encoded), dtype=np.uint64), windows)
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(8)
    pieces = np.bitwise_or.reduce(data[starts[:, None] + np.arange(width)] << shifts, axis=1)
    keyed = np.unique((owner << np.uint64(8 * width)) | pieces)  # distinct per text, grouped by text
    owner = keyed >> np.uint64(8 * width)
    pieces = keyed & np.uint64((1 << (8 * width)) - 1)
    pieces ^= pieces >> np.uint64(30)
    pieces *= np.uint64(0xBF58476D1CE4E5B9)
    pieces ^= pieces >> np.uint64(27)
    pieces *= np.uint64(0x94D049BB133111EB)
    pieces ^= pieces >> np.uint64(31)
    sizes = np.bincount(owner.astype(np.int64), minlength=len(encoded))
    return (pieces & np.uint64(0xFFFFFFFF)).astype(np.uint32), owner, sizes


def _ranges(counts: np.ndarray) -> np.ndarray:
    """0..n-1 for each n in ``counts``, concatenated."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


@dataclass(frozen=True)
class StoryParams:
    """How similar two texts must be to be one story, and how much the index remembers."""

    threshold: float = 0.6  # estimated Jaccard similarity of the shingle sets
    containment: float = 0.8  # share of the shorter text's shingles found in the longer (a cut copy)
    min_containment_shingles: int = 20  # a shorter text than this only joins by Jaccard
    min_length_ratio: float = 0.3  # nor does one under this share of the other's length
    anchor_overlap: float = 0.5  # a pair whose cashtags/numbers overlap less than this is two stories
    names_below: int = 200  # below this many shingles (headlines), texts naming different subjects are two stories
    shingle: int = 5
    max_chars: int = 1000  # only the start of a long text is compared: its copies share it, and time stays flat
    num_perm: int = 64
    bands: int = 12  # LSH bands of 2 permutations: more find more cut copies, each costs ~100 B per entry
    horizon_s: float = 24 * 3600.0
    max_entries: int = 100_000
    # A story's members a new message is compared with: its first and its most recent. Every copy of a viral
    # story is every later copy's candidate, so without a bound each copy cost a Python loop over all the
    # earlier ones (the worker's story step grew with the square of a story's size). The others stay indexed
    # for redeliveries; a new copy that matches one of them matches these too, or the story has drifted.
    story_candidates: int = 16


@dataclass(frozen=True)
class _Entry:
    message_id: str
    story_id: str
    ts: float
    size: int  # distinct shingles
    anchors: frozenset[str]
    names: frozenset[str]  # capitalised words, lowercased, without wire words or a trailing credit


@dataclass(frozen=True)
class Sketch:
    """What a story entry needs of a text, computed without the index (so in any process): its distinct shingle
    count, cashtags and figures, capitalised names, and MinHash signature."""

    size: int
    anchors: frozenset[str]
    names: frozenset[str]
    signature: np.ndarray


class Sketcher:
    """Sketches texts; stateless, so the worker can have a child process do it while the batch is classified."""

    def __init__(self, params: StoryParams = StoryParams()) -> None:
        self.params = params
        self._permutations = MinHash(num_perm=params.num_perm).permutations  # (a, b) of each of num_perm hashes

    def sketch(self, texts: Sequence[str]) -> list[Sketch]:
        """Each text's sketch, a chunk of texts at a time in a few numpy passes: the permuted hashes are a
        (shingles × permutations) array, ~120 MB for 4,096 tweets and ten times that for long complaints, and
        a chunk that stays in cache is also twice as fast per text."""
        if len(texts) > SKETCH_CHUNK:
            return [s for i in range(0, len(texts), SKETCH_CHUNK) for s in self.sketch(texts[i:i + SKETCH_CHUNK])]
        if not texts:
            return []
        bodies = [_body(text) for text in texts]
        tokens = [_WORD.findall(body) for body in bodies]
        words = [" ".join(t).lower()[: self.params.max_chars] for t in tokens]
        hashes, owner, sizes = shingle_sets(words, self.params.shingle)
        a, b = self._permutations
        permuted = np.multiply(hashes[:, None], a)  # datasketch's affine permutations, (a·h + b) mod 2^32, all at once
        permuted += b
        first = np.searchsorted(owner, np.arange(len(texts), dtype=np.uint64))  # every text has a piece
        signatures = np.minimum.reduceat(permuted, first, axis=0)
        return [Sketch(int(sizes[i]) if words[i] else 0, frozenset(_ANCHOR.findall(bodies[i])), _names(tokens[i]), signatures[i])
                for i in range(len(texts))]

    def submit(self, texts: Sequence[str]) -> Future[list[Sketch]]:
        """The sketches, computed now in the caller's thread (``EnrichProcess.sketch`` computes them beside it)."""
        done: Future[list[Sketch]] = Future()
        done.set_result(self.sketch(texts))
        return done


class StoryIndex:
    """Streaming near-duplicate index: :meth:`assign` returns a story id per message, in order."""

    def __init__(self, params: StoryParams = StoryParams()) -> None:
        self.params = params
        # bands of two rows: a pair at Jaccard J is a candidate with probability 1 - (1 - J²)^bands, so cut
        # copies (low Jaccard, high containment) are found too; each candidate is then checked on its signature
        self._bands = _Bands(params.bands)
        self.sketcher = Sketcher(params)
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        # signatures by key modulo capacity: keys are sequential and evicted first-in first-out, so the live
        # ones (at most max_entries, plus the one being added) never share a row
        self._signatures = np.empty((params.max_entries + 1, params.num_perm), dtype=np.uint32)
        self._lowest_jaccard = _cut_copy_jaccard(params)
        self._by_message: dict[str, int] = {}
        self._banded: dict[str, list[int]] = {}  # story id → keys of its members in the LSH bands, oldest first
        self._exact: dict[int, int] = {}  # hash of a signature → the key of a live entry that has it
        self._next = 0
        self._lock = threading.Lock()
        self.watermark = float("-inf")

    def __len__(self) -> int:
        return len(self._entries)

    def sketches(self, messages: Sequence[tuple[str, str, float, str]],
                 sketched: Sequence[Sketch] | None = None) -> list[tuple[_Entry, np.ndarray]]:
        """What the index keeps of each (message id, story id, event time, text) and its signature; ``sketched``:
        the texts' sketches, already made elsewhere."""
        sketched = sketched if sketched is not None else self.sketcher.sketch([text for *_, text in messages])
        return [(_Entry(message_id, story_id, ts, k.size, k.anchors, k.names), k.signature)
                for (message_id, story_id, ts, _text), k in zip(messages, sketched, strict=True)]

    def assign(self, messages: Iterable[tuple[str, float, str]], sketched: Sequence[Sketch] | None = None) -> list[str]:
        """(message id, event time in epoch seconds, text) → story id for each, in the order given.

        A message id the index holds gets its recorded story back (a redelivery); the others are
        sketched together (or ``sketched`` holds each message's sketch, made elsewhere), then matched
        and added one by one, so a copy later in the batch joins a story begun earlier in it.
        """
        messages = list(messages)
        with self._lock:  # one batch at a time, so a story's first message is the same in every run
            if sketched is None:
                fresh = {mid: (mid, mid, ts, text) for mid, ts, text in messages if mid not in self._by_message}
                made = self.sketches(list(fresh.values()))
            else:
                fresh = {mid: ((mid, mid, ts, text), k) for (mid, ts, text), k in zip(messages, sketched, strict=True)
                         if mid not in self._by_message}
                made = self.sketches([m for m, _ in fresh.values()], [k for _, k in fresh.values()])
            sketched = {entry.message_id: (entry, signature) for entry, signature in made}
            story_ids = []
            for message_id, ts, text in messages:
                known = self._by_message.get(message_id)
                if known is not None:
                    story_ids.append(self._entries[known].story_id)
                    continue
                entry, signature = sketched.get(message_id) or self.sketches([(message_id, message_id, ts, text)])[0]
                self._forget_before(ts)  # a story older than the horizon is not joined, even before the next insert
                match = self._best_match(entry, signature)
                if match is not None:
                    entry = replace(entry, story_id=match.story_id)
                self._add(entry, signature)
                story_ids.append(entry.story_id)
            return story_ids

    def load(self, rows: Iterable[tuple[str, str, float, str]], chunk: int = 2048) -> int:
        """Refill the index with stored (message id, story id, event time, text), oldest first; returns the count."""
        count = 0
        rows = iter(rows)
        while batch := list(itertools.islice(rows, chunk)):
            with self._lock:
                fresh = [(mid, story or mid, ts, text) for mid, story, ts, text in batch if mid not in self._by_message]
                for entry, signature in self.sketches(fresh):
                    self._add(entry, signature)
                count += len(fresh)
        return count

    def _best_match(self, new: _Entry, signature: np.ndarray) -> _Entry | None:
        """The candidate most similar to ``new`` that is one story with it (ties: the oldest), or None."""
        if not self._entries or new.size == 0:
            return None
        same = self._exact.get(hash(signature.tobytes()))  # an exact copy (after normalising) is the common case:
        if same is not None:  # it needs no band lookup, whatever the size of its story
            old = self._entries[same]
            if (np.array_equal(self._signatures[same % len(self._signatures)], signature)
                    and self._anchors_agree(new.anchors, old.anchors) and self._names_agree(new, old)):
                return old
        keys = self._bands.query(_band_keys(signature, self.params.bands))  # sorted: ties go to the oldest
        if not keys:
            return None
        keys = np.array(keys, dtype=np.int64)
        p = self.params
        agree = np.count_nonzero(self._signatures[keys % len(self._signatures)] == signature, axis=1)
        jaccard = agree / p.num_perm
        best, best_score = None, 0.0
        for i in np.flatnonzero(jaccard >= self._lowest_jaccard).tolist():  # most candidates stop here
            old, j = self._entries[int(keys[i])], float(jaccard[i])
            if not self._anchors_agree(new.anchors, old.anchors) or not self._names_agree(new, old):
                continue
            score = j if j >= p.threshold else self._containment_score(new.size, old.size, j)
            if score > best_score:
                best, best_score = old, score
                if score >= 1.0:
                    break  # an identical signature: no later (younger) candidate can beat it
        return best

    def _anchors_agree(self, new: frozenset[str], old: frozenset[str]) -> bool:
        """Texts naming different tickers or figures ("X beats by $0.02" / "Y beats by $0.08") are two stories."""
        return not (new and old) or len(new & old) >= self.params.anchor_overlap * min(len(new), len(old))

    def _names_agree(self, new: _Entry, old: _Entry) -> bool:
        """A template headline changes its subject: "Klabin reports Q4 results" / "Nordic Semiconductor reports Q4
        results" each name what the other does not. A copy may lose names (cut) or gain some (a prefix), not both.
        Long texts are left to their shingles: a cut and re-greeted complaint does both."""
        if min(new.size, old.size) >= self.params.names_below:
            return True
        return not (new.names - old.names and old.names - new.names)

    def _containment_score(self, size: int, other: int, jaccard: float) -> float:
        """For a cut copy, whose Jaccard is low: ranked below any Jaccard match, 0 when it is not one."""
        p = self.params
        shorter, longer = sorted((size, other))
        if shorter < p.min_containment_shingles or shorter < p.min_length_ratio * longer:
            return 0.0
        contained = jaccard * (size + other) / ((1 + jaccard) * shorter)  # |A∩B| / |shorter|
        return min(contained, 1.0) * p.threshold if contained >= p.containment else 0.0

    def _add(self, entry: _Entry, signature: np.ndarray) -> None:
        key = self._next
        self._next += 1
        self._entries[key] = entry
        self._by_message[entry.message_id] = key
        self._signatures[key % len(self._signatures)] = signature
        self._bands.insert(key, _band_keys(signature, self.params.bands))
        self._exact.setdefault(hash(signature.tobytes()), key)
        members = self._banded.setdefault(entry.story_id, [])
        members.append(key)
        if len(members) > self.params.story_candidates:
            self._unband(members.pop(1))  # keep the story's first member and its most recent ones
        self._forget_before(entry.ts)

    def _unband(self, key: int) -> None:
        self._bands.remove(key, _band_keys(self._signatures[key % len(self._signatures)], self.params.bands))

    def _forget_before(self, ts: float) -> None:
        """Advance event time to ``ts`` and evict, oldest inserted first, what is past the horizon or the bound.

        Event time never runs ahead of the wall clock by more than an hour: one message from a producer with a
        clock in the future would otherwise evict every story.
        """
        self.watermark = max(self.watermark, min(ts, time.time() + FUTURE_SLACK_S))
        oldest_kept = self.watermark - self.params.horizon_s
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if len(self._entries) <= self.params.max_entries and entry.ts >= oldest_kept:
                return
            del self._entries[key]
            del self._by_message[entry.message_id]
            exact = hash(self._signatures[key % len(self._signatures)].tobytes())
            if self._exact.get(exact) == key:
                del self._exact[exact]  # a later copy registers itself when it is added
            members = self._banded[entry.story_id]
            if key in members:  # the story's oldest members go first: this is members[0] or an unbanded one
                members.remove(key)
                self._unband(key)
                if not members:
                    del self._banded[entry.story_id]


def _cut_copy_jaccard(params: StoryParams) -> float:
    """The Jaccard of the least similar cut copy that still joins: ``containment`` of a text ``min_length_ratio``
    as long as the other. A candidate below it cannot be one story with the new message."""
    shared = params.containment * params.min_length_ratio
    return min(params.threshold, shared / (1 + params.min_length_ratio - shared))


def _band_keys(signature: np.ndarray, bands: int) -> list[int]:
    """Each band's two signature values as one integer (two uint32 side by side read as a uint64)."""
    return signature[: 2 * bands].view(np.uint64).tolist()


class _Bands:
    """LSH banding: messages whose signatures agree on both rows of any band are each other's candidates.

    The scheme of datasketch's ``MinHashLSH``, which this index used first, in plain dicts of integers:
    measured on the story bench, datasketch's in-memory tables (a bytes key and a set per band and message)
    took ~30 µs of CPU and ~2 KB more per message. A band's value is a key, or a list of keys when several
    messages share it.
    """

    def __init__(self, bands: int) -> None:
        self.tables: list[dict[int, int | list[int]]] = [{} for _ in range(bands)]

    def query(self, band_keys: list[int]) -> list[int]:
        """Keys sharing a band with ``band_keys``, ascending (oldest first)."""
        found: set[int] = set()
        for table, band in zip(self.tables, band_keys):
            held = table.get(band)
            if held is None:
                continue
            if isinstance(held, int):
                found.add(held)
            else:
                found.update(held)
        return sorted(found)

    def insert(self, key: int, band_keys: list[int]) -> None:
        for table, band in zip(self.tables, band_keys):
            held = table.get(band)
            if held is None:
                table[band] = key
            elif isinstance(held, int):
                table[band] = [held, key]
            else:
                held.append(key)

    def remove(self, key: int, band_keys: list[int]) -> None:
        for table, band in zip(self.tables, band_keys):
            held = table[band]
            if isinstance(held, int):
                del table[band]
            else:
                held.remove(key)
                if len(held) == 1:
                    table[band] = held[0]


def params_from(settings: Settings) -> StoryParams:
    return StoryParams(threshold=settings.story_threshold, horizon_s=settings.story_horizon_s,
                       max_entries=settings.story_max_entries)


class SharedStoryIndex:
    """A worker's :class:`StoryIndex` that, every ``sync_s`` seconds, also learns the stories the other workers
    of the group stored meanwhile, so a copy arriving on another worker's partition joins their story.

    Before a batch is grouped, the messages stored since the last look (with ``sync_s`` of overlap, for batches
    stored late) are loaded with their story ids; the ones this index holds already, its own included, are
    skipped. What stays split: copies that reach two workers within ``sync_s`` of each other.
    ``clock`` (wall seconds, ``time.time`` by default) must be comparable with the stored ``processed_at``.
    """

    def __init__(self, index: StoryIndex, store: Queryable, sync_s: float, clock: Callable[[], float] = time.time) -> None:
        self.index, self.store, self.sync_s, self.clock = index, store, sync_s, clock
        self.sketcher: Sketcher | Any = index.sketcher  # the worker hands batches' sketches to a child process
        self._synced_at = clock()  # the index was just refilled from the store

    def __len__(self) -> int:
        return len(self.index)

    def assign(self, messages: Iterable[tuple[str, float, str]], sketched: Sequence[Sketch] | None = None) -> list[str]:
        now = self.clock()
        if now - self._synced_at >= self.sync_s:
            oldest = self.index.watermark - self.index.params.horizon_s
            rows = stored_since(self.store, from_epoch(self._synced_at - self.sync_s), from_epoch(max(oldest, 0.0)))
            learned = self.index.load(rows)
            log.debug("story index: %d of %d messages stored since the last look were new to this worker", learned, len(rows))
            self._synced_at = now
        return self.index.assign(messages, sketched)


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


def worker_stories(settings: Settings, store: Queryable) -> StoryIndex | SharedStoryIndex | None:
    """What a worker groups stories with: its restored index, shared with the group every ``story_sync_s``."""
    if not settings.stories:
        return None
    index = restored_index(settings, store)
    return SharedStoryIndex(index, store, settings.story_sync_s) if settings.story_sync_s > 0 else index
