"""Which companies, banks and tickers a message is about: cashtags, tickers and names with their aliases.

The catalogue joins three files: the generated reference list of index constituents
(``deploy/entities/companies.jsonl``, see its SOURCE.md), hand-kept short names and exclusions for it
(``deploy/entities/aliases.yaml``) and the team's watchlist (``deploy/watchlist.yaml`` or
``RISKPULSE_WATCHLIST_FILE``: institutions, their brands and products, English and Chinese aliases).

Every alias and bare ticker sits in one Aho-Corasick automaton over the lower-cased text, so a message
costs one pass whatever the catalogue's size; each hit then has to pass its word boundaries and its case
rule, which is what keeps tickers that are words ("IT", "ALL", "ON", "A") and names that are words
("Target", "Block") from firing on ordinary prose:

* ``any``: case-insensitive (names of two words or more, Chinese names, and coined names with a capital
  inside, "TransUnion", "PayPal", which complaints write in lower case and which are no English word);
* ``cap``: starts with a capital, or as the name does ("Nvidia", "NVIDIA", not "nvidia"; "eBay") — one-word names;
* ``exact``: as written or all upper case ("IBM", "ICBC") — acronyms;
* ``title``: with the alias's capitals ("Energy Transfer", not "energy transfer") — names made of ordinary
  words, which in lower case are ordinary prose;
* ``ticker``: a bare ticker, upper case only, never in a text that is mostly capitals (a shouted
  headline), and only tickers that are not English words or common acronyms.

A cashtag (``$AAPL``, ``$brk.b``) and a ticker after an exchange prefix ("NYSE: ALL") are always ticker
mentions; a symbol the catalogue does not know is still reported, under its own symbol.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import ahocorasick
import yaml

from riskpulse.core import RiskPulseError
from riskpulse.core.resources import deploy_file
from riskpulse.core.settings import Settings
from riskpulse.streams.enrich.misspellings import MisspeltNames
from riskpulse.streams.enrich.org_names import CONNECTORS, LEGAL_FORMS, NAME_HEADS, UnlistedNameFinder, slug

log = logging.getLogger("riskpulse.entities")

CaseRule = Literal["any", "cap", "exact", "title", "ticker"]
REFERENCE_FILE = deploy_file("entities", "companies.jsonl")
CURATED_FILE = deploy_file("entities", "aliases.yaml")
DEFAULT_WATCHLIST = deploy_file("watchlist.yaml")

# "$AAPL", "$brk.b", and the suffixed forms of feeds: "$BTC-USD", "$ES_F", "$AVNT:CA", "$NG1:COM"
CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{0,9}(?:[._:\-][A-Za-z0-9]{1,4})?)(?![\w])")
SYMBOL_SUFFIX = re.compile(r"[.:\-]")  # listing, class or pair suffixes; "_F" is a future ($ES_F is not Eversource)
EXCHANGES = r"(?:NYSE|NASDAQ|Nasdaq|NYSEARCA|NYSEAMERICAN|AMEX|OTC|OTCQX|OTCMKTS|TSX|LSE|HKEX)"
EXCHANGE_TICKER = re.compile(EXCHANGES + r"\s*:\s*\$?([A-Z]{1,5}(?:\.[A-Z])?)(?![\w])")  # "(NYSE: ALL)"
# Two of these in capitals make a text a shouted headline ("SHARES SURGE IN HEAVY TRADING"), whose capitals
# are words, not tickers; a list of tickers ("Upgrades: NFLX CVX GOOGL") has none of them.
SHOUTED_WORDS = frozenset("THE AND OF TO IN ON FOR WITH AS AT IS ARE BY FROM THIS THAT AFTER OVER NEW".split())
PRIORITY = {"watchlist": 0, "curated": 1, "reference": 2}
HYPHENATED = re.compile(r"(?<=[A-Za-z]{2})-(?=[A-Za-z]{2})")  # "Coca-Cola", not "T-Mobile" or "WD-40"
ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
CAMEL_CASE = re.compile(r"^[A-Z][a-z]+[A-Z]")  # "TransUnion", "BlackRock", not "NVIDIA" or "eBay"
NEXT_ANY_WORD = re.compile(r" (\w+)")
NEXT_WORD = re.compile(r" ([A-Z][a-z]+)\b")
NAME_WORDS = frozenset("group bank institute management holdings partners capital fund funds trust services association "
                       "council foundation institution institutions university agency authority".split())
HEADLINE_OPENING = re.compile(r"[A-Z][\w&.-]*(?: [A-Z][\w&.-]*){0,3}")  # up to four capitalised words
# what follows a company's name when a headline says what it does
CORPORATE_ACT = re.compile(
    r"\s+(?:to\s+(?:report|release|offer|acquire|buy|sell|spin\s+off|present|announce|host|pay|redeem|issue|"
    r"launch|list|merge|delist|restate|split)|reports|announces|declares|completes|launches|confirms|files\s+for|"
    r"names|appoints|partners\s+with|unveils|posts\s+Q[1-4]|CEO|CFO|Q[1-4])\b", re.IGNORECASE)
# a results release: the one headline where companies go by a short ticker ("EA to Release First Quarter … Results")
RESULTS_RELEASE = re.compile(r"\s+(?:to\s+)?(?:report|release|announce|host|post)s?\b[^.!?\n]{0,60}?\b(?:results|earnings)\b",
                             re.IGNORECASE)
# "Moving iMage Technologies (MiT)": an abbreviation defined in brackets right after a name
ABBREVIATION = re.compile(r"\s*\(([A-Za-z][A-Za-z&.]{1,9})\)")
LEADING_WORDS = frozenset({"the", "a", "an"})  # "The Knight-Swift Transportation …": not part of the name
# One spelling of a legal form stands for the others: "Immersion Corp" names "Immersion Corporation" and
# "Immersion Corp." too ("Co" without its dot is left out: it ends names that are no legal form).
LEGAL_FORM_SPELLINGS = ({"corp", "corp.", "corporation"}, {"inc", "inc.", "incorporated"}, {"ltd", "ltd.", "limited"},
                        {"plc", "p.l.c."}, {"co.", "company"}, {"llc", "l.l.c."})
_LEGAL_FORMS = frozenset(f.rstrip(".") for forms in LEGAL_FORM_SPELLINGS for f in forms)
_LEGAL_FORM_END = re.compile(r"(?i)(?<=[\s,])(" + "|".join(
    sorted((re.escape(f) for forms in LEGAL_FORM_SPELLINGS for f in forms), key=len, reverse=True)) + r")$")


class EntityError(RiskPulseError):
    """A catalogue or watchlist file cannot be used; the message names the file and entry."""


@dataclass(frozen=True)
class Entity:
    """One thing messages can be about: a listed company, a bank, or a watchlist institution."""

    id: str
    name: str
    kind: str = "company"
    watched: bool = False


@dataclass(frozen=True)
class Mention:
    """Where a message names an entity: ``text[start:end]``."""

    entity_id: str
    name: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.entity_id, "name": self.name, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class _Alias:
    entity_id: str
    text: str
    case: CaseRule


def case_rule(alias: str) -> CaseRule:
    """The default rule for an alias by its shape (see the module docstring)."""
    if _has_cjk(alias) or len(alias.split()) > 1 or CAMEL_CASE.search(alias):
        return "any"
    letters = [ch for ch in alias if ch.isalpha()]
    if letters and all(ch.isupper() for ch in letters):
        return "exact"
    return "cap"


def _fold_accents(text: str) -> str:
    """Latin letters without their accents ("Société Générale" → "Societe Generale"); other scripts unchanged."""
    if text.isascii() or _has_cjk(text):
        return text
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def _legal_form_spellings(text: str) -> list[str]:
    """ "Immersion Corp" → "Immersion Corp.", "Immersion Corporation": the other spellings of a closing legal form."""
    match = _LEGAL_FORM_END.search(text)
    if match is None:
        return []
    form = match.group(1)
    others = next(forms for forms in LEGAL_FORM_SPELLINGS if form.lower() in forms) - {form.lower()}
    capitalised = form[:1].isupper()
    return [text[:match.start(1)] + (o[:1].upper() + o[1:] if capitalised else o) for o in sorted(others)]


def _joined_spellings(text: str) -> list[str]:
    """ "Bath & Body Works" ↔ "Bath and Body Works", "Mercedes-Benz" → "Mercedes Benz": how writers join the
    words of a name."""
    spellings = []
    if " & " in text:
        spellings.append(text.replace(" & ", " and "))
    elif " and " in text:
        spellings.append(text.replace(" and ", " & "))
    if HYPHENATED.search(text):
        spellings.append(HYPHENATED.sub(" ", text))
    return spellings


def _closed_up(text: str) -> str | None:
    """ "Best Buy" → "BestBuy" (matched as written or in capitals, "BESTBUY/CBNA"): how hashtags, handles and
    complaint forms run a name of two to four plain words together."""
    words = text.split()
    if 2 <= len(words) <= 4 and all(w.isascii() and w.isalpha() for w in words) and len(text) >= 8:
        return "".join(words)
    return None


def _has_cjk(text: str) -> bool:
    return any("\u3000" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)


def _is_word_char(ch: str) -> bool:
    """Letters and digits of alphabetic scripts join words; CJK characters do not need a boundary."""
    if ch.isascii():
        return ch.isalnum() or ch == "_"
    return ch.isalnum() and not ("\u3000" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff")


class Catalogue:
    """Entities and the aliases that name them, built from the reference list, curated names and a watchlist."""

    def __init__(self) -> None:
        self.entities: dict[str, Entity] = {}
        self.tickers: dict[str, str] = {}  # ticker (upper case) → entity id, for cashtags
        self._aliases: dict[str, tuple[int, _Alias]] = {}  # lower-cased alias → (priority, alias)
        self._dropped: set[str] = set()
        self._not_bare: set[str] = set()
        self._home: dict[str, tuple[str, str]] = {}  # reference id → (name, country), to tell listings of one company
        self._listings: dict[str, set[str]] = {}  # lower-cased alias → the ids of one company's listings claiming it
        self.product_names: set[str] = set()  # lower-cased watchlist products ("Apple Card"): brands, not the firm's names

    # --- building ---------------------------------------------------------------------------
    def add_entity(self, entity: Entity) -> None:
        old = self.entities.get(entity.id)
        if old is not None:
            entity = Entity(entity.id, entity.name or old.name, entity.kind or old.kind, entity.watched or old.watched)
        self.entities[entity.id] = entity

    def add_alias(self, entity_id: str, text: str, origin: str, case: CaseRule | None = None) -> None:
        text = text.strip()
        if not text or text.lower() in self._dropped:
            return
        rule = case or case_rule(text)
        self._put(_Alias(entity_id, text, rule), PRIORITY[origin])
        spellings = {text, *_legal_form_spellings(text), *_joined_spellings(text)}
        for variant in {v for s in spellings for v in (s, _fold_accents(s), s.replace("&", "&amp;"))} - {text}:
            # "Credit Agricole" names "Crédit Agricole" too; tweets keep HTML's "&amp;" ("AT&amp;T")
            if variant.lower() not in self._dropped:
                self._put(_Alias(entity_id, variant, rule), PRIORITY[origin])
        closed = _closed_up(text)
        if closed and closed.lower() not in self._dropped:
            self._put(_Alias(entity_id, closed, "exact"), PRIORITY[origin])

    def _put(self, alias: _Alias, priority: int) -> None:
        """Keep the alias of the most trusted origin; two entities claiming one alias at the same origin
        make it ambiguous, and it names neither (until a more trusted file settles it)."""
        key = alias.text.lower()
        held = self._aliases.get(key)
        if held is None or priority < held[0]:
            self._aliases[key] = (priority, alias)
            self._listings.pop(key, None)
        elif key in self._listings and alias.entity_id in self._listings[key]:
            pass  # the same company's listing again
        elif priority == held[0] and held[1] is not None and self._one_company(held[1].entity_id, alias.entity_id):
            self._listings.setdefault(key, {held[1].entity_id}).add(alias.entity_id)  # kept; settled in load()
        elif priority == held[0] and held[1] is not None and held[1].entity_id != alias.entity_id:
            log.debug("alias %r names both %s and %s: dropped", alias.text, held[1].entity_id, alias.entity_id)
            self._aliases[key] = (priority, None)
            self._listings.pop(key, None)

    def _one_company(self, a: str, b: str) -> bool:
        """Two listings of one company: the reference gives both the same name and the same (known) home,
        "ABB" in Zurich, Stockholm and New York; "First Bancorp" of North Carolina and of Puerto Rico are two."""
        home = self._home.get(a)
        return home is not None and bool(home[1]) and home == self._home.get(b)

    def _settle_listings(self) -> None:
        """A name several listings of one company claim names the listing the other files chose for it (a
        curated ticker "GOOG" → GOOGL makes "Alphabet Inc." GOOGL's too), else the first listed. Before, such a
        name was dropped as ambiguous, and "Shell plc", "Nordea" or "ABB" named nothing."""
        for key, ids in self._listings.items():
            priority, alias = self._aliases[key]
            chosen = {self.tickers.get(i.upper(), i) for i in ids} & ids
            if alias.entity_id not in chosen and len(chosen) == 1:
                self._aliases[key] = (priority, _Alias(chosen.pop(), alias.text, alias.case))

    def add_ticker(self, entity_id: str, ticker: str, origin: str, bare: bool) -> None:
        ticker = ticker.upper()
        current = self.tickers.get(ticker)
        if current is None or origin != "reference":
            self.tickers[ticker] = entity_id
        held = self._aliases.get(ticker.lower())
        moved = held is not None and held[1] is not None and held[1].case == "ticker" and held[1].entity_id != entity_id
        if (bare or moved) and ticker not in self._not_bare:  # a ticker given to another entity takes its bare form along
            self.add_alias(entity_id, ticker, origin, "ticker")

    def drop_alias(self, text: str) -> None:
        self._dropped.add(text.lower())
        self._aliases.pop(text.lower(), None)

    # --- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, reference: Path = REFERENCE_FILE, curated: Path | None = CURATED_FILE,
             watchlist: Path | None = DEFAULT_WATCHLIST) -> "Catalogue":
        catalogue = cls()
        if curated is not None:
            catalogue._load_exclusions(curated)
        catalogue._load_reference(reference)
        if curated is not None:
            catalogue._load_entries(curated, "curated", watched=False)
        if watchlist is not None:
            catalogue._load_entries(watchlist, "watchlist", watched=True)
        catalogue._settle_listings()
        log.info("entity catalogue: %d entities, %d aliases and tickers, %d watched (%s)", len(catalogue.entities),
                 len(catalogue._aliases), len(catalogue.watched_ids), watchlist)
        return catalogue

    def _load_reference(self, path: Path) -> None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise EntityError(f"cannot read the entity reference list {path}: {exc.strerror}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                self.add_entity(Entity(row["id"], row["name"], row.get("kind", "company")))
                self._home[row["id"]] = (row["name"].lower(), row.get("country") or "")
                for alias in row["aliases"]:
                    if isinstance(alias, dict):
                        self.add_alias(row["id"], alias["text"], "reference", alias.get("case"))
                    else:
                        self.add_alias(row["id"], alias, "reference")
                bare = set(row.get("bare_tickers", []))
                for ticker in row["tickers"]:
                    self.add_ticker(row["id"], ticker, "reference", ticker in bare)
            except (ValueError, KeyError, TypeError) as exc:
                raise EntityError(f"{path}:{number}: not a reference entry ({exc})") from None

    def _load_exclusions(self, path: Path) -> None:
        data = _read_yaml(path)
        for text in data.get("drop_aliases") or []:
            self.drop_alias(str(text))
        self._not_bare.update(str(t).upper() for t in data.get("not_bare_tickers") or [])

    def _load_entries(self, path: Path, origin: str, watched: bool) -> None:
        for number, entry in enumerate(_read_yaml(path).get("entities") or [], 1):
            if not isinstance(entry, dict) or not entry.get("id"):
                raise EntityError(f"{path}: entry {number} needs an 'id' (a ticker or your own id)")
            entity_id = str(entry["id"])
            known = self.entities.get(entity_id)
            if known is None and not entry.get("name"):
                raise EntityError(f"{path}: entry {number} ({entity_id}) is not in the reference list, so it needs a 'name'")
            self.add_entity(Entity(entity_id, str(entry.get("name") or known.name), str(entry.get("kind") or
                                   (known.kind if known else "company")), watched))
            names = [entry["name"]] if entry.get("name") and watched else []  # a watchlist name is an alias too
            products = entry.get("products") or []
            self.product_names.update(str(p["text"] if isinstance(p, dict) else p).lower() for p in products)
            for alias in [*names, *(entry.get("aliases") or []), *products]:
                if isinstance(alias, dict):
                    self.add_alias(entity_id, str(alias["text"]), origin, alias.get("case"))
                else:
                    self.add_alias(entity_id, str(alias), origin)
            for ticker in entry.get("tickers") or []:
                self.add_ticker(entity_id, str(ticker), origin, bare=bool(entry.get("bare_tickers", False)))

    # --- reading --------------------------------------------------------------------------------
    @property
    def watched_ids(self) -> frozenset[str]:
        return frozenset(e.id for e in self.entities.values() if e.watched)

    def aliases(self) -> Iterable[_Alias]:
        return (alias for _, alias in self._aliases.values() if alias is not None)

    def entity_for_ticker(self, ticker: str) -> Entity:
        """The entity a cashtag names (a listing, class or pair suffix falls back to the base symbol: "AVNT:CA",
        "BMY-R"; a future's does not: "ES_F"); an unknown symbol is its own entity."""
        ticker = ticker.upper()
        entity_id = self.tickers.get(ticker) or self.tickers.get(SYMBOL_SUFFIX.split(ticker)[0])  # "BTC-USD" → BTC
        if entity_id is None:
            return Entity(ticker, ticker, "ticker")
        return self.entities[entity_id]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EntityError(f"cannot read {path}: {exc.strerror}; set RISKPULSE_WATCHLIST_FILE") from None
    except yaml.YAMLError as exc:
        raise EntityError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise EntityError(f"{path}: expected a mapping with an 'entities:' list")
    return data


class EntityExtractor:
    """Finds the entities of texts; build once (a few hundred ms), then call per batch.

    ``unlisted_names`` adds the companies no catalogue lists, found by a name's shape and context
    (``org_names``); where such a name and a catalogue alias start at one word, the catalogue's entity wins,
    unless the catalogue matched one word of a longer name of another company ("Alliant" in "Alliant
    Insurance Services" is not Alliant Energy)."""

    def __init__(self, catalogue: Catalogue, unlisted_names: bool = True) -> None:
        self.catalogue = catalogue
        self._unlisted = UnlistedNameFinder() if unlisted_names else None
        firsts = Counter(e.name.split()[0].strip(",.").lower() for e in catalogue.entities.values() if e.name.split())
        self._shared_first_words = frozenset(word for word, n in firsts.items() if n > 1)
        self._short_names: dict[str, re.Pattern[str]] = {}
        self._subjects = _headline_subjects(catalogue, self._shared_first_words)
        self._short_tickers = {e.id: e for e in catalogue.entities.values()
                               if e.kind != "ticker" and e.id.isalpha() and e.id.isupper() and 2 <= len(e.id) < 4}
        watched = catalogue.watched_ids
        self._misspelt = MisspeltNames(  # the watched firms' names; products are often common words ("Apple Card")
            ((a.entity_id, a.text) for a in catalogue.aliases() if a.entity_id in watched and a.case in ("any", "title")
             and a.text.lower() not in catalogue.product_names),
            NAME_WORDS | NAME_HEADS | CONNECTORS | LEADING_WORDS | LEGAL_FORMS | _LEGAL_FORMS)
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY)
        for alias in catalogue.aliases():
            self._automaton.add_word(alias.text.lower(), alias)
        if len(self._automaton):
            self._automaton.make_automaton()

    @property
    def watched_ids(self) -> frozenset[str]:
        return self.catalogue.watched_ids

    def extract(self, text: str) -> list[Mention]:
        """The entity mentions of one text, left to right, without overlaps (the longest match wins)."""
        candidates: list[tuple[int, int, Entity]] = []
        if "$" in text:  # the pattern's lookbehind is tried at every position: ~3 µs a text without one
            for match in CASHTAG.finditer(text):
                candidates.append((match.start(), match.end(), self.catalogue.entity_for_ticker(match.group(1))))
            if candidates:  # in the cashtags' order: a set's order follows the process's hash seed
                candidates.extend(self._anchored_names(text, list(dict.fromkeys(entity for _, _, entity in candidates))))
        if ":" in text:
            for match in EXCHANGE_TICKER.finditer(text):
                candidates.append((match.start(1), match.end(1), self.catalogue.entity_for_ticker(match.group(1))))
        lowered = text.lower()
        if len(lowered) != len(text):  # a few characters lower-case to two; keep offsets aligned
            lowered = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)
        shouting: bool | None = None
        if len(self._automaton):
            for last, alias in self._automaton.iter(lowered):
                start, end = last - len(alias.text) + 1, last + 1
                if not _bounded(text, start, end):
                    continue
                surface = text[start:end]
                if alias.case == "ticker":
                    if surface != alias.text:
                        continue
                    if shouting is None:
                        shouting = _is_shouting(text)
                    if shouting:
                        continue
                elif alias.case == "cap" and not (surface[0].isupper() or surface[0] == alias.text[0]):  # "eBay"
                    continue
                elif alias.case == "exact" and surface not in (alias.text, alias.text.upper()):
                    continue
                elif alias.case == "title" and (_after_capitalised_word(text, start) or _before_name_word(text, end)
                                                or not _word_capitals_kept(alias.text, surface)):
                    continue
                candidates.append((start, end, self.catalogue.entities[alias.entity_id]))
        if self._misspelt:
            candidates.extend((start, end, self.catalogue.entities[entity_id])
                              for start, end, entity_id in self._misspelt.find(text, lowered))
        subject = self._headline_subject(text)
        if subject is not None:
            candidates.append(subject)
            candidates.extend(self._anchored_names(text, [subject[2]]))  # "Discover Partners … Discover® Cards"
        if self._unlisted is not None:
            candidates.extend(self._unlisted_candidates(text, candidates))
        mentions = self._resolve(candidates)
        if mentions and "(" in text:
            mentions = _with_abbreviations(text, mentions, self.catalogue.tickers)
        return mentions

    def _headline_subject(self, text: str) -> tuple[int, int, Entity] | None:
        """A company's short name opening a headline before what companies do: "Gates to offer $568M of senior
        notes", "Sinclair to Report Second Quarter Results", "Snap CEO Evan Spiegel…". Elsewhere such names
        are words or surnames, which is why the catalogue does not match them alone. A ticker of two or three
        letters ("EA", "MSC") is often another firm's acronym: it counts only before a results release."""
        opening = HEADLINE_OPENING.match(text)
        if opening is None:
            return None
        words = opening.group(0).split(" ")
        for n in range(len(words), 0, -1):
            name = " ".join(words[:n])
            entity = self._subjects.get(name)
            if entity is not None and CORPORATE_ACT.match(text, len(name)):
                return 0, len(name), entity
        entity = self._short_tickers.get(words[0])
        if entity is not None and RESULTS_RELEASE.match(text, len(words[0])) and not _is_shouting(text):
            return 0, len(words[0]), entity
        return None

    def _anchored_names(self, text: str, vouched: list[Entity]) -> list[tuple[int, int, Entity]]:
        """A cashtag or a headline's subject vouches for its company's short names in the same message: "$SNAP:
        Snap confirms…", "$FIGS - Figs stock falls…", "$PPG - PPG Q2 Earnings", "Discover Partners With … for
        Discover® Student Cards". Alone, such names are words or tickers the catalogue does not match bare
        ("Snap", "Figs", "Gates"), since in other messages they are prose."""
        found = []
        for entity in vouched:
            if entity.kind == "ticker" or entity.id not in self.catalogue.entities:
                continue
            pattern = self._short_names.get(entity.id)
            if pattern is None:
                pattern = self._short_names[entity.id] = _short_names(entity, self._shared_first_words)
            for match in pattern.finditer(text):
                start, end = match.span()
                if (start == 0 or text[start - 1] != "$") and text[start].isupper():
                    found.append((start, end, entity))
        return found

    def _unlisted_candidates(self, text: str, listed: list[tuple[int, int, Entity]]) -> list[tuple[int, int, Entity]]:
        by_start = {start: (end, entity) for start, end, entity in listed}
        found = []
        for name in self._unlisted.find(text, [(start, end) for start, end, _ in listed]):
            entity = (self.catalogue.entity_for_ticker(name.symbol) if name.symbol
                      else Entity(name.entity_id, name.name, "organisation"))
            if entity.kind == "ticker":  # a symbol no catalogue knows: the name that spells it names it
                entity = Entity(entity.id, name.name, "company")
            held = by_start.get(name.start)
            if held is not None:
                end, listed_entity = held
                one_word = " " not in text[name.start:end].strip()
                if (not one_word or end >= name.end or _same_company(listed_entity.name, name.name)
                        or not _next_word_is_head(text, end) or text[end:name.end].strip(" ,.").lower() in _LEGAL_FORMS):
                    continue  # "Deutsche Bank Securities" stays Deutsche Bank; "Wynn Resorts" is WYNN's; "Anthem, Inc.",
                    # "Expro Secures Integrated Services" too; "Alliant Insurance Services" is not Alliant Energy
            found.append((name.start, name.end, entity))
        return found

    def extract_batch(self, texts: Sequence[str]) -> list[list[Mention]]:
        return [self.extract(text) for text in texts]

    def submit(self, texts: Sequence[str]) -> Future[list[list[Mention]]]:
        """The mentions of each text, found now in the caller's thread (``EnrichProcess.entities`` finds them beside it)."""
        found: Future[list[list[Mention]]] = Future()
        found.set_result(self.extract_batch(texts))
        return found

    @staticmethod
    def _resolve(candidates: list[tuple[int, int, Entity]]) -> list[Mention]:
        candidates.sort(key=lambda c: (c[0], c[0] - c[1]))  # stable: at one span, the catalogue's came first
        mentions: list[Mention] = []
        reached = 0
        for start, end, entity in candidates:
            if start < reached:
                continue
            mentions.append(Mention(entity.id, entity.name, start, end))
            reached = end
        return mentions


def _distinct_first_word(entity: Entity, shared_first_words: frozenset[str]) -> str:
    """The first word of a longer name when no other entity's name starts with it and it is no generic name
    word ("Gates" of "Gates Corporation"; not "Bank" of "Bank of America"), else ""."""
    words = entity.name.split()
    first = words[0].strip(",.") if len(words) > 1 else ""
    if len(first) >= 3 and first.lower() not in shared_first_words and first.lower() not in NAME_WORDS:
        return first
    return ""


def _short_names(entity: Entity, shared_first_words: frozenset[str]) -> re.Pattern[str]:
    """An entity's name, the first word of a longer name that no other entity's name starts with ("Gates" of
    "Gates Corporation"; not "Bank" of "Bank of America") and its ticker as written: one case-sensitive pattern
    for :meth:`EntityExtractor._anchored_names`."""
    names = {entity.name, entity.name.upper()}
    first = _distinct_first_word(entity, shared_first_words)
    if first:
        names |= {first, first.upper()}
    if entity.id.isalpha():
        names.add(entity.id)
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w$])(?:{alternatives})(?!\w|-\d)")  # not a model number: "F-150"


def _headline_subjects(catalogue: Catalogue, shared_first_words: frozenset[str]) -> dict[str, Entity]:
    """Names that name exactly one entity as a headline's subject, for :meth:`EntityExtractor._headline_subject`:
    its name, the first word of a longer name that starts no other ("Gates"; not "Vertex", which starts two
    companies' names, nor a short acronym, "ECB" of ECB Bancorp), and its ticker of four letters or more — as
    written, never shouted ("CANADA TO LAUNCH…" is not Canada Goose)."""
    owners: dict[str, set[str]] = {}
    for entity in catalogue.entities.values():
        if entity.kind == "ticker":
            continue
        names = {entity.name}
        first = _distinct_first_word(entity, shared_first_words)
        if first and not (first.isupper() and len(first) <= 4):
            names.add(first)
        if entity.id.isalpha() and len(entity.id) >= 4:  # "PNFP Reports…"; "MSC Confirms…" is a shipping line
            names.add(entity.id)
        for name in names:
            if " " in name or name.lower() not in shared_first_words:
                owners.setdefault(name, set()).add(entity.id)
    return {name: catalogue.entities[next(iter(ids))] for name, ids in owners.items() if len(ids) == 1}


def _next_word_is_head(text: str, end: int) -> bool:
    following = NEXT_ANY_WORD.match(text, end)
    return following is not None and following.group(1).lower() in NAME_HEADS


def _same_company(listed_name: str, found_name: str) -> bool:
    """ "Wynn Resorts, Limited" and "Wynn Resorts": one name, the catalogue's in full or without its legal form
    (a longer found name is another company's: "Avista Therapeutics" is not Avista)."""
    listed, found = slug(listed_name), slug(found_name)
    return listed == found or listed.startswith(found + "-")


def _bounded(text: str, start: int, end: int) -> bool:
    """No letter or digit of an alphabetic script joins the match on either side (ASCII without a call: most
    automaton hits are short aliases inside words, "ING" in "trading")."""
    if start > 0:
        outside, inside = text[start - 1], text[start]
        if ((outside in ASCII_WORD or (outside > "\x7f" and _is_word_char(outside)))
                and (inside in ASCII_WORD or (inside > "\x7f" and _is_word_char(inside)))):
            return False
    if end < len(text):
        outside, inside = text[end], text[end - 1]
        if ((outside in ASCII_WORD or (outside > "\x7f" and _is_word_char(outside)))
                and (inside in ASCII_WORD or (inside > "\x7f" and _is_word_char(inside)))):
            return False
    return True


def _after_capitalised_word(text: str, start: int) -> bool:
    """ "CNB Community Bancorp", "Alliance Global Partners": a name of ordinary words right after a capitalised
    word is the tail of another name."""
    if start < 2 or text[start - 1] != " ":
        return False
    begin = start - 1
    while begin > 0 and text[begin - 1].isalpha():
        begin -= 1
    return begin < start - 1 and text[begin].isupper() and text[begin:start - 1].lower() not in LEADING_WORDS


def _before_name_word(text: str, end: int) -> bool:
    """ "Financial Institutions Group", "Public Policy Management Institute": a name of ordinary words followed by
    a word that ends organisations' names is the head of another name (were that name known, it would be the
    longer match)."""
    following = NEXT_WORD.match(text, end)
    return following is not None and following.group(1).lower() in NAME_WORDS


def _with_abbreviations(text: str, mentions: list[Mention], tickers: dict[str, str]) -> list[Mention]:
    """A name's abbreviation defined in brackets right after it names the same entity there and further on:
    "Moving iMage Technologies (MiT) … MiT", "Nomura Research Institute (NRI)". A bracketed symbol is no
    abbreviation: one the catalogue lists ("Barclays PLC (BCS)", "Immersion Corporation (IMMR)"), or one that
    spells no abbreviation of the name from its first letter ("Apple (AAPL)", "Hedge Funds Are Dumping Altair
    Engineering Inc. (ALTR)", whose found name is too long)."""
    taken = [(m.start, m.end) for m in mentions]
    added = []
    for mention in mentions:
        match = ABBREVIATION.match(text, mention.end)
        if match is None:
            continue
        abbreviation, name = match.group(1), text[mention.start:mention.end]
        if (abbreviation[0].lower() != name[0].lower() or not _abbreviates(abbreviation, name)
                or abbreviation == mention.entity_id or (abbreviation.isupper() and abbreviation in tickers)):
            continue
        if any(start < match.end(1) and match.start(1) < end for start, end in taken):
            continue  # already a mention: the symbol rule's or another entity's
        for found in re.finditer(rf"(?<![\w$]){re.escape(abbreviation)}(?!\w)", text[match.start(1):]):
            start, end = match.start(1) + found.start(), match.start(1) + found.end()
            if not any(s < end and start < e for s, e in taken):
                added.append(Mention(mention.entity_id, mention.name, start, end))
                taken.append((start, end))
    return sorted(mentions + added, key=lambda m: m.start) if added else mentions


def _abbreviates(short: str, name: str) -> bool:
    """Schwartz and Hearst's test (2003): the abbreviation's letters appear in the name in order, right to left,
    its first letter at the start of one of the name's words."""
    short, name = short.lower(), name.lower()
    at = len(name) - 1
    for index in range(len(short) - 1, -1, -1):
        letter = short[index]
        if not letter.isalnum():
            continue
        while at >= 0 and (name[at] != letter or (index == 0 and at > 0 and name[at - 1].isalnum())):
            at -= 1
        if at < 0:
            return False
        at -= 1
    return True


def _word_capitals_kept(alias: str, surface: str) -> bool:
    """Each word of the alias is capitalised where the alias's word is: "Moving iMage Technologies" for "Moving
    iMAGE Technologies", "Energy Transfer"; not "energy transfer" (the surface has the alias's length)."""
    position = 0
    for word in alias.split(" "):
        first = next((i for i, ch in enumerate(word) if ch.isupper()), None)
        if first is not None and not surface[position + first].isupper():
            return False
        position += len(word) + 1
    return True


def _is_shouting(text: str) -> bool:
    return sum(word in SHOUTED_WORDS for word in re.findall(r"[A-Z]{2,5}", text)) >= 2


def entity_ids(mentions: Iterable[Mention]) -> list[str]:
    """The distinct entities of a message, in order of first mention."""
    return list(dict.fromkeys(m.entity_id for m in mentions))


def annotate_lines(lines: Iterable[str], extractor: EntityExtractor) -> Iterator[tuple[int, str | None, str]]:
    """For each JSONL line with ``id`` and ``text``: (line number, its output line, "") or, for a line that is
    not such an object, (line number, None, why). Offsets are Python string (code point) indices."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text = row["text"]
            if not isinstance(text, str):
                raise TypeError(f"text is a {type(text).__name__}")
        except (ValueError, KeyError, TypeError) as exc:
            yield number, None, f"expected a JSON object with id and text ({exc.__class__.__name__}: {exc})"
            continue
        mentions = [m.to_dict() for m in extractor.extract(text)]
        yield number, json.dumps({"id": row.get("id"), "entities": mentions}, ensure_ascii=False), ""


def watchlist_path(settings: Settings) -> Path:
    return settings.watchlist_file or DEFAULT_WATCHLIST


def watchlist_ids(path: Path) -> frozenset[str]:
    """The entity ids a watchlist lists (what ``watchlist_only`` alert rules watch), without building a catalogue."""
    entries = _read_yaml(path).get("entities") or []
    return frozenset(str(e["id"]) for e in entries if isinstance(e, dict) and e.get("id"))


@lru_cache(maxsize=4)
def _cached_extractor(watchlist: Path, mtime: float, unlisted_names: bool) -> EntityExtractor:
    return EntityExtractor(Catalogue.load(watchlist=watchlist), unlisted_names=unlisted_names)


def load_extractor(settings: Settings) -> EntityExtractor:
    """The extractor for the configured watchlist; rebuilt only when the watchlist file changes."""
    path = watchlist_path(settings)
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise EntityError(f"cannot read the watchlist {path}: {exc.strerror}; set RISKPULSE_WATCHLIST_FILE") from None
    return _cached_extractor(path, mtime, settings.entities_unlisted)
