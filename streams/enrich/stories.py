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
SKETCH_CHUNK = 64  # texts sketched in one numpy pass (see Sketcher.sketch)
MATCH_CHUNK = 256  # messages whose candidates among the indexed entries are found together (StoryIndex._assign_chunk)
PAIR_CHUNK = 16_384  # (message, candidate) pairs whose signatures are compared in one numpy pass

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
    pieces = owner << np.uint64(8 * width)
    for k in range(width):  # byte k of every window at once (a 2-D gather reduced along its short axis was 6× slower)
        pieces |= data[starts + k] << np.uint64(8 * (width - 1 - k))
    keyed = np.sort(pieces)  # grouped by text; then distinct within it (np.unique took 12× the sort, numpy 2.4)
    keyed = keyed[np.concatenate(([True], keyed[1:] != keyed[:-1]))]
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
class Sketches:
    """What story entries need of a batch of texts, computed without the index (so in any process), by column: each
    text's distinct shingle count, cashtags and figures, capitalised names, and MinHash signature (a row of one
    texts × permutations array). By column, a batch's sketches pickle to and from the worker's child process in a
    few pieces; as a list of per-text objects, each with its own array, pickling took ~24 µs a text on a Zen 3."""

    sizes: list[int]
    anchors: list[frozenset[str]]
    names: list[frozenset[str]]
    signatures: np.ndarray

    def __len__(self) -> int:
        return len(self.sizes)

    def take(self, rows: Sequence[int]) -> Sketches:
        """The sketches of these rows, in this order."""
        return Sketches([self.sizes[i] for i in rows], [self.anchors[i] for i in rows], [self.names[i] for i in rows],
                        self.signatures[np.asarray(rows, dtype=np.int64)])

    @staticmethod
    def concat(parts: Sequence[Sketches], num_perm: int) -> Sketches:
        return Sketches([n for part in parts for n in part.sizes], [a for part in parts for a in part.anchors],
                        [n for part in parts for n in part.names],
                        np.concatenate([part.signatures for part in parts]) if parts else np.empty((0, num_perm), np.uint32))


class Sketcher:
    """Sketches texts; stateless, so the worker can have a child process do it while the batch is classified."""

    def __init__(self, params: StoryParams = StoryParams()) -> None:
        self.params = params
        self._permutations = MinHash(num_perm=params.num_perm).permutations  # (a, b) of each of num_perm hashes

    def sketch(self, texts: Sequence[str]) -> Sketches:
        """Each text's sketch, a chunk of texts at a time in a few numpy passes: the permuted hashes are a
        (permutations × shingles) array, ~100 MB for 4,096 tweets and ten times that for long complaints, and
        a chunk that stays in cache is faster per text (64 tweets, ~1.5 MB: 48 µs a text on a Zen 3, 55 at 256)."""
        if len(texts) > SKETCH_CHUNK or not texts:
            return Sketches.concat([self.sketch(texts[i:i + SKETCH_CHUNK]) for i in range(0, len(texts), SKETCH_CHUNK)],
                                   self.params.num_perm)
        bodies = [_body(text) for text in texts]
        tokens = [_WORD.findall(body) for body in bodies]
        words = [" ".join(t).lower()[: self.params.max_chars] for t in tokens]
        hashes, owner, sizes = shingle_sets(words, self.params.shingle)
        a, b = self._permutations
        # datasketch's affine permutations, (a·h + b) mod 2^32, all at once: permutations × shingles, so each
        # text's minimum is taken along contiguous memory (3× faster than shingles × permutations)
        permuted = np.multiply(a[:, None], hashes[None, :])
        permuted += b[:, None]
        first = np.searchsorted(owner, np.arange(len(texts), dtype=np.uint64))  # every text has a piece
        signatures = np.ascontiguousarray(np.minimum.reduceat(permuted, first, axis=1).T)
        return Sketches([size if word else 0 for size, word in zip(sizes.tolist(), words)],
                        [frozenset(_ANCHOR.findall(body)) for body in bodies], [_names(t) for t in tokens], signatures)

    def submit(self, texts: Sequence[str]) -> Future[Sketches]:
        """The sketches, computed now in the caller's thread (``EnrichProcess.sketch`` computes them beside it)."""
        done: Future[Sketches] = Future()
        done.set_result(self.sketch(texts))
        return done


class StoryIndex:
    """Streaming near-duplicate index: :meth:`assign` returns a story id per message, in order.

    A batch is matched in parts of ``MATCH_CHUNK`` messages: a part's candidates, among the indexed entries and its
    own earlier messages, and how many permutations each pair agrees on, are found together in a few numpy passes;
    then its messages are matched and added one by one, each skipping the candidates evicted or unbanded since.
    The ids are the ones the messages would get one at a time.
    """

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
        self._unbanded: set[int] = set()  # while a batch part is matched: keys unbanded since its candidates were found
        self._lock = threading.Lock()
        self.watermark = float("-inf")

    def __len__(self) -> int:
        return len(self._entries)

    def sketches(self, messages: Sequence[tuple[str, str, float, str]],
                 sketched: Sketches | None = None) -> tuple[list[_Entry], np.ndarray]:
        """What the index keeps of each (message id, story id, event time, text), and their signatures; ``sketched``:
        the texts' sketches, already made elsewhere."""
        sketched = sketched if sketched is not None else self.sketcher.sketch([text for *_, text in messages])
        if len(sketched) != len(messages):
            raise ValueError(f"{len(sketched)} sketches for {len(messages)} messages")
        return ([_Entry(message_id, story_id, ts, size, anchors, names) for (message_id, story_id, ts, _text), size, anchors, names
                 in zip(messages, sketched.sizes, sketched.anchors, sketched.names)], sketched.signatures)

    def assign(self, messages: Iterable[tuple[str, float, str]], sketched: Sketches | None = None) -> list[str]:
        """(message id, event time in epoch seconds, text) → story id for each, in the order given.

        A message id the index holds gets its recorded story back (a redelivery); the others are
        sketched together (or ``sketched`` holds each message's sketch, made elsewhere), then matched
        and added one by one, so a copy later in the batch joins a story begun earlier in it.
        """
        messages = list(messages)
        with self._lock:  # one batch at a time, so a story's first message is the same in every run
            if sketched is not None and len(sketched) != len(messages):
                raise ValueError(f"{len(sketched)} sketches for {len(messages)} messages")
            fresh = list({mid: at for at, (mid, _, _) in enumerate(messages) if mid not in self._by_message}.values())
            entries, signatures = self.sketches([(messages[at][0], *messages[at]) for at in fresh],
                                                sketched.take(fresh) if sketched is not None else None)
            band_rows = _band_rows(signatures, self.params.bands)
            position = {entry.message_id: i for i, entry in enumerate(entries)}
            return [story_id for start in range(0, len(messages), MATCH_CHUNK)
                    for story_id in self._assign_chunk(messages[start:start + MATCH_CHUNK], entries, signatures, band_rows, position)]

    def _assign_chunk(self, messages: list[tuple[str, float, str]], entries: list[_Entry],
                      signatures: np.ndarray, band_rows: list[list[int]], position: dict[str, int]) -> list[str]:
        """:meth:`assign` for a part of a batch; ``entries``, ``signatures``, ``band_rows``: the whole batch's, at
        ``position`` by message id. Every candidate of its new messages, among the entries indexed before it and
        its own earlier messages, is found first, together (see :meth:`_candidates`)."""
        rows = [position[message_id] for message_id in dict.fromkeys(message_id for message_id, _, _ in messages)
                if message_id not in self._by_message]  # an earlier part may have added one already (a repeated id)
        candidates = dict(zip(rows, self._candidates([band_rows[i] for i in rows], signatures[rows])))
        try:
            story_ids = []
            for message_id, ts, _text in messages:
                known = self._by_message.get(message_id)
                if known is not None:
                    story_ids.append(self._entries[known].story_id)
                    continue
                i = position[message_id]
                entry, signature = entries[i], signatures[i]
                fingerprint = hash(signature.tobytes())
                self._forget_before(ts)  # a story older than the horizon is not joined, even before the next insert
                match = self._best_match(entry, signature, fingerprint, candidates[i])
                if match is not None:
                    entry = replace(entry, story_id=match.story_id)
                self._add(entry, signature, fingerprint, band_rows[i])  # its key: the next, as _candidates expects
                self._forget_before(ts)  # the bound: the oldest entry goes once this one is in
                story_ids.append(entry.story_id)
            return story_ids
        finally:
            self._unbanded.clear()

    def load(self, rows: Iterable[tuple[str, str, float, str]], chunk: int = 2048) -> int:
        """Refill the index with stored (message id, story id, event time, text), oldest first; returns the count."""
        count = 0
        rows = iter(rows)
        while batch := list(itertools.islice(rows, chunk)):
            with self._lock:
                fresh = [(mid, story or mid, ts, text) for mid, story, ts, text in batch if mid not in self._by_message]
                entries, signatures = self.sketches(fresh)
                for entry, signature, band_keys in zip(entries, signatures, _band_rows(signatures, self.params.bands)):
                    self._add(entry, signature, hash(signature.tobytes()), band_keys)
                    self._forget_before(entry.ts)
                count += len(fresh)
        return count

    def _candidates(self, band_rows: list[list[int]], signatures: np.ndarray) -> list[list[tuple[int, int]]]:
        """For new messages about to be added in this order (so the n-th will have key ``_next + n``): each one's
        (key, agreeing permutations) of the entries that share a band with it, indexed or earlier among them, and
        agree enough to be one story with it (the cut-copy floor), oldest first.

        Matching then drops what was evicted or unbanded since (``_entries``, ``_unbanded``). Finding them all at once
        costs a few numpy passes; per message, a dozen numpy calls on a few dozen candidates took ~60 µs on a Zen 3,
        most of the worker's story time. Pairs among the messages are at most n²/2, so callers keep n small.
        """
        first_new = self._next
        rows: list[int] = []
        keys: list[int] = []
        for table, column in zip(self._bands.tables, zip(*band_rows)):
            for row, held in enumerate(map(table.get, column)):
                if held is None:
                    continue
                if held.__class__ is int:
                    rows.append(row)
                    keys.append(held)
                else:
                    rows.extend(itertools.repeat(row, len(held)))
                    keys.extend(held)
        for run in _shared_band_runs(_band_array(signatures, self.params.bands)):
            for at, row in enumerate(run[1:], start=1):
                rows.extend(itertools.repeat(row, at))
                keys.extend(first_new + earlier for earlier in run[:at])
        found: list[list[tuple[int, int]]] = [[] for _ in band_rows]
        if not keys:
            return found
        span = first_new + len(band_rows)
        pairs = np.sort(np.array(rows, dtype=np.int64) * span + np.array(keys, dtype=np.int64))  # by row, then key
        pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]  # a pair shares several bands
        rows_of, keys_of = np.divmod(pairs, span)
        agree = np.empty(len(pairs), dtype=np.int64)
        indexed = keys_of < first_new  # the rest are among the new messages, whose signatures are not stored yet
        for start in range(0, len(pairs), PAIR_CHUNK):  # ~4 MB of gathered signatures at a time
            part = slice(start, start + PAIR_CHUNK)
            other = np.empty((len(keys_of[part]), signatures.shape[1]), dtype=signatures.dtype)
            old = indexed[part]
            other[old] = self._signatures[keys_of[part][old] % len(self._signatures)]
            other[~old] = signatures[keys_of[part][~old] - first_new]
            agree[part] = np.count_nonzero(other == signatures[rows_of[part]], axis=1)
        kept = np.flatnonzero(agree / self.params.num_perm >= self._lowest_jaccard)
        for row, key, count in zip(rows_of[kept].tolist(), keys_of[kept].tolist(), agree[kept].tolist()):
            found[row].append((key, count))
        return found

    def _best_match(self, new: _Entry, signature: np.ndarray, fingerprint: int,
                    candidates: list[tuple[int, int]]) -> _Entry | None:
        """The candidate most similar to ``new`` that is one story with it (ties: the oldest), or None.
        ``candidates``: (key, agreeing permutations), found before its batch part (see :meth:`_candidates`)."""
        if not self._entries or new.size == 0:
            return None
        same = self._exact.get(fingerprint)  # an exact copy (after normalising) is the common case:
        if same is not None:  # it needs no band lookup, whatever the size of its story
            old = self._entries[same]
            if (np.array_equal(self._signatures[same % len(self._signatures)], signature)
                    and self._anchors_agree(new.anchors, old.anchors) and self._names_agree(new, old)):
                return old
        p = self.params
        best, best_score = None, 0.0
        for key, agree in candidates:  # oldest first
            old = self._entries.get(key)
            if old is None or key in self._unbanded:  # evicted or unbanded since they were found
                continue
            if not self._anchors_agree(new.anchors, old.anchors) or not self._names_agree(new, old):
                continue
            j = agree / p.num_perm
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

    def _add(self, entry: _Entry, signature: np.ndarray, fingerprint: int, band_keys: list[int]) -> None:
        key = self._next
        self._next += 1
        self._entries[key] = entry
        self._by_message[entry.message_id] = key
        self._signatures[key % len(self._signatures)] = signature
        self._bands.insert(key, band_keys)
        self._exact.setdefault(fingerprint, key)
        members = self._banded.setdefault(entry.story_id, [])
        members.append(key)
        if len(members) > self.params.story_candidates:
            self._unband(members.pop(1))  # keep the story's first member and its most recent ones

    def _unband(self, key: int) -> None:
        self._bands.remove(key, _band_keys(self._signatures[key % len(self._signatures)], self.params.bands))
        self._unbanded.add(key)  # it may be a candidate found before its batch part: no longer one

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


def _shared_band_runs(band_rows: np.ndarray) -> list[list[int]]:
    """The groups of rows of ``band_rows`` (rows × bands) that have the same value in some band, each in row order;
    a group per band and value, so two rows sharing several bands are in several groups."""
    order = np.argsort(band_rows, axis=0, kind="stable")  # each band's rows by value, then row
    ranked = np.take_along_axis(band_rows, order, axis=0)
    bands, positions = np.nonzero((ranked[1:] == ranked[:-1]).T)  # by band, then position: row at p ties with p + 1
    runs: list[list[int]] = []
    last = (-1, -2)
    for band, at in zip(bands.tolist(), positions.tolist()):
        if (band, at) != (last[0], last[1] + 1):
            runs.append([int(order[at, band])])
        runs[-1].append(int(order[at + 1, band]))
        last = (band, at)
    return runs


def _band_array(signatures: np.ndarray, bands: int) -> np.ndarray:
    """:func:`_band_keys` of each row of ``signatures``, as one (rows × bands) uint64 array."""
    return np.ascontiguousarray(signatures[:, : 2 * bands]).view(np.uint64)


def _band_rows(signatures: np.ndarray, bands: int) -> list[list[int]]:
    """:func:`_band_keys` of each row of ``signatures``, in one pass."""
    return _band_array(signatures, bands).tolist()


class _Bands:
    """LSH banding: messages whose signatures agree on both rows of any band are each other's candidates.

    The scheme of datasketch's ``MinHashLSH``, which this index used first, in plain dicts of integers:
    measured on the story bench, datasketch's in-memory tables (a bytes key and a set per band and message)
    took ~30 µs of CPU and ~2 KB more per message. A band's value is a key, or a list of keys when several
    messages share it.
    """

    def __init__(self, bands: int) -> None:
        self.tables: list[dict[int, int | list[int]]] = [{} for _ in range(bands)]

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

    def assign(self, messages: Iterable[tuple[str, float, str]], sketched: Sketches | None = None) -> list[str]:
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
