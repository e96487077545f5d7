"""Labelled sets for entity extraction, and how predictions are scored against them (tests and bench/entities.py).

* **cashtags**: every distinct tweet of the shared twitter-financial-news sets; the gold mentions are the
  cashtags the authors wrote, found by a plain whitespace tokenizer (not the extractor's regex), with the
  entity id the catalogue gives the symbol (the symbol itself when the catalogue does not know it).
* **bare tickers**: the tweets with a cashtag of a ticker the catalogue takes bare ("JPM", "AAPL"); the
  ``$`` is removed and the ticker must still be found, as written, at that place. Another bare-ticker hit
  is right if the author cashtagged that symbol in the same text, and a false positive otherwise (a lower
  bound on precision: the 13 such hits on 2026-11-27 were read by hand and all name the company).
* **company names**: ``tests/fixtures/entities_company_names.jsonl``, 370 real texts whose company, bank
  and brand names were labelled by hand (298 mentions; ``entity_id`` null for companies the catalogue does
  not hold: 98 since the SEC company list joined the catalogue, when the 44 mentions of companies it added
  were given their ids, each checked by hand against the text, whether or not the extractor found them). Split "tuned": 240 texts (210 tweets of the topic set's validation split, 30 CFPB complaint
  narratives), whose errors were read while the extractor was built; "held-out": 130 texts (110 tweets of
  the sentiment set's validation split, 20 CFPB narratives), labelled and scored after it was done; its
  errors were then read while the finder of unlisted companies (``org_names``) was built, so for that finder
  it is tuned too. "held-out-2": 110 tweets drawn at random (seed 20261127) from the topic set's train split,
  labelled (87 mentions, 36 of companies outside the catalogue, ids checked against it) after that finder
  was built, and scored once after (P 0.855, R 0.609); its errors were read then too, so no split is held
  out any more: a new one has to be labelled before the next change is scored.
  A prediction counts when it overlaps a gold mention and names the same entity; a ticker hit (bare or
  after an exchange prefix) that overlaps no gold name is left to the ticker sets.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from riskpulse.streams.enrich.entities import Catalogue, EntityExtractor

TWEET_FILES = (
    "twitter-financial-news-sentiment/train.csv", "twitter-financial-news-sentiment/validation.csv",
    "twitter-financial-news-topic/train.csv", "twitter-financial-news-topic/validation.csv",
)
COMPANY_NAMES = Path(__file__).resolve().parent / "fixtures" / "entities_company_names.jsonl"
_LEADING = "([{\"'“‘"
_TRAILING = ")]}\"'”’,.;:!?…-"


@dataclass(frozen=True)
class Gold:
    start: int
    end: int
    entity_id: str | None  # None: a company the catalogue does not hold


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    gold: tuple[Gold, ...]


@dataclass
class Score:
    name: str
    texts: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def as_dict(self) -> dict:
        return {"set": self.name, "texts": self.texts, "tp": self.tp, "fp": self.fp, "fn": self.fn,
                "precision": round(self.precision, 4), "recall": round(self.recall, 4), **self.extra}


def tweets(shared_data: Path) -> list[str]:
    """Every distinct tweet text of the shared sets, in file order."""
    texts: dict[str, None] = {}
    for name in TWEET_FILES:
        with open(shared_data / name, newline="", encoding="utf-8") as fh:
            texts.update((row["text"], None) for row in csv.DictReader(fh))
    return list(texts)


def cashtag_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, symbol) of each whitespace-separated token that is a cashtag: ``$`` then a letter."""
    spans = []
    for token in re.finditer(r"\S+", text):
        start, end = token.start(), token.end()
        while start < end and text[start] in _LEADING:
            start += 1
        while end > start and text[end - 1] in _TRAILING:
            end -= 1
        if text[end - 2:end] in ("'s", "’s"):
            end -= 2
        word = text[start:end]
        if len(word) > 1 and word[0] == "$" and word[1].isascii() and word[1].isalpha() and "$" not in word[1:]:
            spans.append((start, end, word[1:].upper()))
    return spans


def symbol_id(catalogue: Catalogue, symbol: str) -> str:
    return catalogue.entity_for_ticker(symbol).id


def cashtag_cases(shared_data: Path, catalogue: Catalogue) -> list[Case]:
    cases = []
    for number, text in enumerate(tweets(shared_data)):
        spans = cashtag_spans(text)
        if spans:
            cases.append(Case(f"tweet-{number}", text, tuple(Gold(s, e, symbol_id(catalogue, sym)) for s, e, sym in spans)))
    return cases


def bare_ticker_cases(shared_data: Path, catalogue: Catalogue) -> list[Case]:
    """Tweets with the ``$`` taken off their cashtags of tickers the catalogue matches bare."""
    bare = bare_tickers(catalogue)
    cases = []
    for number, text in enumerate(tweets(shared_data)):
        stripped = [(s, e, sym) for s, e, sym in cashtag_spans(text) if text[s + 1:e] in bare]
        if not stripped:
            continue
        out, gold, last = [], [], 0
        for removed, (start, end, symbol) in enumerate(stripped):
            out.append(text[last:start])
            new_start = start - removed
            gold.append(Gold(new_start, new_start + end - start - 1, symbol_id(catalogue, symbol)))
            last = start + 1
        out.append(text[last:])
        cases.append(Case(f"tweet-{number}", "".join(out), tuple(gold)))
    return cases


def bare_tickers(catalogue: Catalogue) -> frozenset[str]:
    return frozenset(alias.text for alias in catalogue.aliases() if alias.case == "ticker")


def company_name_cases(path: Path = COMPANY_NAMES, split: str | None = None) -> list[Case]:
    """The hand-labelled texts: ``split`` "tuned" (the extractor's errors on them were read while building it),
    "held-out" (labelled, then scored once, after the extractor was done) or None for both."""
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if split is not None and row["split"] != split:
            continue
        gold = tuple(Gold(m["start"], m["end"], m["entity_id"]) for m in row["mentions"])
        for g, m in zip(gold, row["mentions"]):
            assert row["text"][g.start:g.end] == m["text"], f"{row['id']}: span {g} is not {m['text']!r}"
        cases.append(Case(row["id"], row["text"], gold))
    return cases


def _exact(pred: Iterable[tuple[int, int, str]], gold: Sequence[Gold]) -> tuple[int, int, int]:
    predicted = set(pred)
    wanted = {(g.start, g.end, g.entity_id) for g in gold}
    return len(predicted & wanted), len(predicted - wanted), len(wanted - predicted)


def score_cashtags(cases: Sequence[Case], extractor: EntityExtractor) -> Score:
    score = Score("cashtags", texts=len(cases))
    for case in cases:
        pred = [(m.start, m.end, m.entity_id) for m in extractor.extract(case.text) if case.text[m.start] == "$"]
        tp, fp, fn = _exact(pred, case.gold)
        score.tp, score.fp, score.fn = score.tp + tp, score.fp + fp, score.fn + fn
    return score


def score_bare_tickers(cases: Sequence[Case], extractor: EntityExtractor) -> Score:
    """A bare hit at a stripped cashtag is right with the same entity; a hit elsewhere is right when the author
    cashtagged that symbol in the same text ("$NFLX - … NFLX gains"), and otherwise counts as a false positive."""
    bare = bare_tickers(extractor.catalogue)
    score = Score("bare_tickers", texts=len(cases))
    same_text = 0
    for case in cases:
        tagged = {(case.text[g.start:g.end], g.entity_id) for g in case.gold}
        pred = [(m.start, m.end, m.entity_id) for m in extractor.extract(case.text)
                if case.text[m.start] != "$" and case.text[m.start:m.end] in bare]
        tp, _, fn = _exact(pred, case.gold)
        wanted = {(g.start, g.end, g.entity_id) for g in case.gold}
        elsewhere = [p for p in pred if p not in wanted]
        also = sum((case.text[s:e], entity) in tagged for s, e, entity in elsewhere)
        same_text += also
        score.tp, score.fp, score.fn = score.tp + tp + also, score.fp + len(elsewhere) - also, score.fn + fn
    score.extra = {"right_by_same_text_cashtag": same_text}
    return score


def is_ticker_hit(text: str, mention, catalogue: Catalogue, bare: frozenset[str]) -> bool:
    """A cashtag, a bare ticker or a ticker after an exchange prefix ("NYSE:KNX"), not a name."""
    surface = text[mention.start:mention.end]
    return surface[0] == "$" or surface in bare or (
        surface.isupper() and catalogue.tickers.get(surface, surface) == mention.entity_id
        and text[max(0, mention.start - 12):mention.start].rstrip(" ").endswith(":"))


def score_company_names(cases: Sequence[Case], extractor: EntityExtractor, name: str = "company_names") -> tuple[Score, list[str]]:
    """Overlap-and-same-entity scoring; returns the score and a line per error (for reading, not asserting)."""
    bare = bare_tickers(extractor.catalogue)
    score = Score(name, texts=len(cases))
    in_catalogue = found_in_catalogue = exact = 0
    errors: list[str] = []
    for case in cases:
        mentions = [m for m in extractor.extract(case.text) if case.text[m.start] != "$"]
        tickers = {m for m in mentions if is_ticker_hit(case.text, m, extractor.catalogue, bare)}
        matched: set[int] = set()
        for m in mentions:
            hits = [i for i, g in enumerate(case.gold) if g.start < m.end and m.start < g.end]
            right = [i for i in hits if case.gold[i].entity_id == m.entity_id
                     or (case.gold[i].entity_id is None and m.entity_id not in extractor.catalogue.entities)]
            if right:
                if right[0] not in matched:
                    score.tp += 1
                    matched.add(right[0])
                    exact += (case.gold[right[0]].start, case.gold[right[0]].end) == (m.start, m.end)
            elif hits or m not in tickers:
                score.fp += 1
                errors.append(f"FP {case.id}: {case.text[m.start:m.end]!r} → {m.entity_id}")
        for i, g in enumerate(case.gold):
            in_catalogue += g.entity_id is not None
            if i in matched:
                found_in_catalogue += g.entity_id is not None
            else:
                score.fn += 1
                errors.append(f"FN {case.id}: {case.text[g.start:g.end]!r} ({g.entity_id or 'not in catalogue'})")
    score.extra = {
        "mentions": len([g for c in cases for g in c.gold]), "mentions_in_catalogue": in_catalogue,
        "recall_in_catalogue": round(found_in_catalogue / in_catalogue, 4) if in_catalogue else 1.0,
        "exact_span_share": round(exact / score.tp, 4) if score.tp else 1.0,
    }
    return score, errors


