"""Companies that no catalogue lists: private firms, law firms, funds, foreign and newly listed companies.

The catalogue names the companies it knows; news and complaints name many more ("Iowa First Bancshares",
"Kahn Swick & Foti, LLC", "Akoustis down 13%"). Those are found by the shape of a company name and the
words around it, each way with its own evidence:

* **a name's head**: a run of capitalised words that ends in a legal form ("Inc.", "LLC", "plc", "SA") or a
  word companies end their names with ("Bancshares", "Therapeutics", "Airlines", "Securities");
* **a symbol beside it**: "$IOFB - Iowa First Bancshares", "Acer Therapeutics (ACER)", "Medigus (NASDAQ:
  MDGS)" — the name is linked to that symbol's entity when its letters spell the symbol in order;
* **a company's context**: "Intelsat's stock", "Endonovo up 35%", "shares of Akoustis", "Berenberg
  reiterates", "Paddock emerges from Chapter 11": words that follow companies and not people;
* **a trade's noun before it**: "elevator maker Kone", "mortgage servicer Ocwen", "supplier Prevent";
* **a headline's obscure subject**: "Jetcraft Strengthens …", "$SABR - Avianca signs …" (an obscure word
  before what companies do: announces, appoints, raises; not "says");
* **a partnership**: "Kirkland & Ellis" (in prose; "Mergers & Acquisitions" is a trade, not a firm);
* **a coined word**: "TikTok", "HanesBrands" (not a sector's "FinTech" or a surname's "McDonald").

Only the runs of capitals beside such evidence are tokenised (one Aho-Corasick pass finds it), which keeps
a tweet to tens of microseconds.

A found name that no catalogue entry links becomes its own entity, ``org:`` and a slug of its name without
legal form ("org:first-bancshares"), so its mentions, trend and alerts group across messages. Runs of common
English words in a title-cased headline ("Stocks Rally As Energy Shares Jump") are not names; names of one
common word ("Fidelity", "Prevent") are left to the catalogue and the watchlist.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import ahocorasick
from wordfreq import zipf_frequency

# Legal forms close a name whatever its words; with their dot or without ("Corp", "Corp.").
LEGAL_FORMS = frozenset("""inc inc. incorporated corp corp. corporation co. llc l.l.c. ltd ltd. limited plc p.l.c. sa s.a.
    ag nv n.v. se asa gmbh lp l.p. llp spa s.p.a. bhd tbk oyj ab sarl pty pte""".split())
LOWER_CASE_LEGAL_FORMS = frozenset("inc inc. incorporated corp corp. corporation llc l.l.c. ltd ltd. limited plc".split())
# Words companies end their names with; in lower-case prose they are ordinary words, so they need capitals.
NAME_HEADS = frozenset("""bank bancorp bancshares bankshares bancorporation capital partners investors securities
    therapeutics pharmaceuticals pharma biopharma biotech biosciences bioscience biologics diagnostics genomics
    technologies technology airlines airways ratings properties realty reit management insurance assurance
    ventures associates companies brands software healthcare energy power media motors foods entertainment
    financial semiconductor semiconductors systems networks labs laboratories sciences mining minerals resources
    petroleum advisors advisers investments mortgage lending solutions industries enterprises communications
    telecom logistics shipping automotive holdings holding group trust acquisition hotels resorts casinos studios
    brewing beverages robotics aerospace utilities chemicals materials steel apparel restaurants biotechnology
    medical wireless interactive pharmacy services""".split())
# Heads of public bodies, not companies ("European Central Bank", "World Bank", "Reserve Bank of India").
PUBLIC_BODIES = frozenset("central reserve world development federal national export-import investment".split())
# Words that end a run: a name does not span them ("Stocks Rally As Energy", "Why Investors").
FUNCTION_WORDS = frozenset("""a an the as at by for from in into of on onto to with and or but nor if is are was were be
    been will would could should may might can do does did has have had not no than then that this these those
    what when where which who why how after before over under about against amid among across through toward
    towards upon within without beyond between during per via vs says said say top here here's there we you they
    it its our your i my think quarterly annual weekly daily monthly record""".split())
# A head followed by one of these names something else ("Defense Logistics Agency", "Energy Select Sector ETF").
NOT_AFTER_HEAD = frozenset("""agency authority department commission committee act index etf etfs fund conference
    association council board ministry office court law program programme bill report survey sector protection
    bureau""".split())
# Regulators whose names have a company's shape ("Federal Deposit Insurance Corporation").
PUBLIC_BODY_NAMES = frozenset({"federal-deposit-insurance", "federal-deposit-insurance-corporation",
                               "federal-home-loan-bank", "federal-reserve-bank", "national-credit-union-administration"})
# Reporting periods and numbers are no part of a name ("Q4 2019 Investment Style Ratings").
PERIOD = re.compile(r"^(?:[QH][1-4]|FY\d*|\d+|\d+[QH]\d*)$", re.IGNORECASE)
LISTING = re.compile(r"^[A-Z0-9]+\.[A-Z]{1,2}$")  # "BFF.MI": a symbol with its exchange, not a name
URL = re.compile(r"https?://\S+|www\.\S+|[@#]\w+")
CONNECTORS = frozenset({"&", "&amp;", "and", "of", "de", "du", "la", "del"})  # inside a name only
# "Nasdaq up 2%", "Bitcoin -3%": markets and assets take a company's context words too.
NOT_COMPANIES = frozenset("""nasdaq dow s&p s&amp;p ftse dax cac nikkei hang seng sensex nifty kospi stoxx russell bitcoin
    ether ethereum btc eth crypto gold silver oil brent crude copper wheat gas treasuries treasury yields dollar euro
    yen pound sterling yuan rupee ruble lira peso stocks shares futures bonds market markets wall street europe asia
    fed ecb dividend insider growth value tech penny meme chip chips bank banks retail""".split())
RARE_WORD_ZIPF = 3.5  # "Nordisk", "Blizzard"; not "Announces" (3.9) or "Secures"
COMMON_WORD_ZIPF = 4.0  # "rally", "energy", "gold" are above; "Akoustis", "Maersk", "Yellen" below
COMPANY_AFTER = re.compile(
    r"(?:['’]s)?\s+(?:shares?\b|stock\b|ipo\b|earnings\b|revenue\b|"
    r"(?:ceo|cfo|chairman|chief executive)\s+(?-i:[A-Z])|"  # "Maersk CFO Carolina …", not "names Carolina … CFO"
    r"(?:strategists|analysts|economists)\b|"
    r"(?:files?\s+for|emerges?\s+from|enters?)\s+(?:chapter\s+(?:7|11|15)|bankruptcy|administration|insolvency)|"
    r"(?:is\s+)?(?:up|down|rises?|falls?|jumps?|gains?|drops?|slides?|sinks?|soars?|surges?|plunges?|tumbles?|climbs?|"
    r"rall(?:y|ies)|slumps?|spikes?|sheds?|adds?)\s+(?:as much as\s+|about\s+|nearly\s+|more than\s+)?\d+(?:\.\d+)?%|"
    r"[+-]\d+(?:\.\d+)?%|"
    r"(?:upgrades|downgrades|reiterates|initiates|maintains|reaffirms)\b|"
    r"(?:reports|posts|declares|files for|prices)\s+(?:q[1-4]\b|fy\b|full-year|quarterly|earnings|results|dividend|"
    r"ipo|offering)|"
    r"to (?:acquire|buy|merge)\b|(?:acquires|buys)\s+[A-Z])",
    re.IGNORECASE)
# The words of COMPANY_AFTER and COMPANY_BEFORE (besides a price move's "%"): where a company's context can be.
CONTEXT_WORDS = frozenset([
    *"""share stock ipo earnings revenue ceo cfo chairman chief strategists analysts economists chapter bankruptcy
    administration insolvency upgrades downgrades reiterates initiates maintains reaffirms reports posts declares
    files prices acquires buys emerges enters""".split(),
    "to acquire", "to buy", "to merge", "shares of", "stake in", "merger with", "acquisition of", "takeover of"])
# "elevator maker Kone", "power utility Eskom", "mortgage servicer Ocwen": a trade's noun, in lower case, right
# before a name says what the name is.
# (Not "producer", "developer", "broker", "collector": people's jobs too, "media producer Sara Fischer".)
DESCRIPTORS = frozenset("""firm company maker automaker carmaker chipmaker drugmaker lender bank insurer reinsurer
    airline carrier retailer utility supplier manufacturer miner startup start-up brokerage conglomerate subsidiary
    servicer provider distributor homebuilder fintech issuer""".split())
DESCRIPTOR_BEFORE = re.compile(r"(?<![\w-])(?<!policy )(?<!decision )(?<!deal )(?<!film )(?:"  # a policy maker is a person
                               + "|".join(sorted(DESCRIPTORS, key=len, reverse=True)) + r") $")
# Capitalised words after a descriptor that are no name: titles, days, months ("the firm's Chief", "bank Monday").
NOT_NAME_WORDS = frozenset("""president ceo cfo chief chairman chairwoman director minister senator governor mr mrs ms dr
    monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
    september october november december i company""".split())
# What a company does in a headline's first words ("Kolibri Announces …", "Greystar raises …"); not what
# people do ("says", "joins", "wins"), so an obscure surname before them is not taken for a company.
HEADLINE_VERBS = frozenset("""announces appoints names expands launches receives signs hires achieves introduces
    selects sells acquires buys completes closes enters extends secures strengthens prepares promotes unveils opens
    declares raises reports posts prices files issues agrees lands integrates partners releases deploys debuts
    rolls ships recalls delays suspends withdraws lays cuts slashes trims boosts lifts lowers""".split())
OBSCURE_SENTENCE_START_ZIPF = 2.5  # one word opening a sentence before "earnings", "shares": "Intelsat" (2.3), not "Diluted"
OBSCURE_WORD_ZIPF = 2.0  # "Kolibri", "Jetcraft", "Greystar"; "Yellen" (2.7), "Musk" are above
COMPANY_BEFORE = re.compile(r"(?:shares of|stake in|merger with|acquisition of|takeover of)\s+$", re.IGNORECASE)
_SYMBOL_LEAD = r"\$([A-Z]{1,6})(?:\.[A-Z]{1,3})?\s*(?:[-–:|]|\([^)]*\)\s*[-–:]?)\s*"
SYMBOL_LEAD = re.compile(_SYMBOL_LEAD)
SYMBOL_BEFORE = re.compile(_SYMBOL_LEAD + "$")  # "$IOFB - ", "$ACER: "
SYMBOL_AFTER = re.compile(r"\((?:(?:NYSE|NASDAQ|Nasdaq|NYSEARCA|AMEX|OTC|OTCQX|TSX|LSE|ASX)\s*:\s*)?\$?([A-Z]{1,6})\)")
TOKEN = re.compile(r"&amp;|&|[^\W_](?:\w|[.\-'’](?=\w)|(?:&amp;|&)(?=\w))*\.?")  # "M&amp;T", "UPM-Kymmene"
ABBREVIATION = re.compile(r"^(?:[A-Z]\.|(?:[A-Za-z]\.){2,}|inc\.|corp\.|co\.|ltd\.)$", re.IGNORECASE)
# A name's word; not a redaction ("XXXX XXXX Bank" in a complaint names a bank no one can know).
_NAME_WORD = r"(?!X{2,}\b)(?:[A-Z]|[a-z]+[A-Z]|\d+[A-Za-z]*[A-Z])(?:[\w\-'’.]|&(?:amp;)?(?=\w))*"
_LEGAL_FORM = "|".join(re.escape(f) for f in sorted(LEGAL_FORMS, key=len, reverse=True))
RUN = re.compile(rf"(?<![\w$&;]){_NAME_WORD}(?:(?: (?:&amp;|&|and|of|de|du|la|del))* {_NAME_WORD}"
                 rf"|,? (?i:{_LEGAL_FORM})(?!\w))*")
LEGAL_FORM_END = re.compile(rf",?\s+(?:{_LEGAL_FORM})$", re.IGNORECASE)
WORD = re.compile(r"\b[A-Za-z]{3,}\b")  # the words that tell a shout's capitals
LONG_WORD = re.compile(r"\b[A-Za-z]{4,}\b")  # and a headline's
COINED = re.compile(r"^(?!(?:Mc|Mac|De|Di|Le|La|Van|Von|Du|O)[A-Z])[A-Z][a-z]+(?:[A-Z][a-z]+){1,2}$")  # not run-together text
# The sides of "Mergers & Acquisitions", "Oil & Gas", "Research & Development": pairs of a trade's words, no firm.
GENERIC_PAIR_WORDS = frozenset("""mergers acquisitions research development oil gas food beverage beverages health safety
    sales marketing terms conditions profit loss arts crafts banking finance fixed income energy utilities trading
    investment investments wealth management risk compliance media entertainment technology science sciences education
    training travel leisure real estate insurance pensions commodities metals mining retail consumer goods services
    products solutions strategy operations tax audit legal regulatory private equity venture capital credit debt""".split())
INNER_CAPITAL_IN_TEXT = re.compile(r"[a-z][A-Z][a-z]")
GENERIC_COINED = frozenset("""healthcare biopharma biosciences biopharmaceuticals biotech agtech medtech fintech proptech
    insurtech regtech edtech healthtech cleantech greentech smallcap midcap largecap megacap natgas opex capex nextgen
    airtags airpods bulletshares quicktake ecommerce overdraft""".split())
INNER_CAPITAL = re.compile(r"^[a-z]+[A-Z]")  # "ironSource", "eBay"
REDACTED_BEFORE = re.compile(r"X{2,} $")
AMPERSAND = re.compile(r" &(?:amp;)? ")
TRAILING_CASHTAGS = re.compile(r"(?:\$[A-Za-z.]+\s*)+$")
NEXT_INITIAL = re.compile(r"\s+(\w)")
NOT_ALNUM = re.compile(r"[^a-z0-9]")
# A headline's first word and the word after it ("$SABR - Avianca signs …"): where its obscure subject would be.
HEADLINE_OPENING = re.compile(r"(?:\$[A-Z.]+\s*(?:[-–:|]\s*)?)*([A-Za-z][\w.&-]*)(?:['’]s)? ([A-Za-z]+)")


@dataclass(frozen=True)
class OrgName:
    """A company name found in ``text[start:end]``; ``symbol`` when a symbol beside it spells it."""

    start: int
    end: int
    name: str
    symbol: str | None = None

    @property
    def entity_id(self) -> str:
        return self.symbol or "org:" + slug(self.name)


def slug(name: str) -> str:
    """ "Kahn Swick & Foti" → "kahn-swick-foti": one id for a name's spellings and accents."""
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))
    return "-".join(re.findall(r"[a-z0-9]+", folded.lower().replace("&amp;", "&")))


class _Token:
    """A word with its offsets; its bare form (no possessive, no sentence's full stop) is computed once."""

    __slots__ = ("start", "end", "text", "bare", "lower", "capitalised", "closes_run")

    def __init__(self, start: int, end: int, text: str) -> None:
        self.start, self.end, self.text = start, end, text
        word = text[:-2] if text.endswith(("'s", "’s")) else text
        full_stop = word.endswith(".") and not ABBREVIATION.match(word)
        self.bare = word[:-1] if full_stop else word
        self.lower = self.bare.lower()
        self.capitalised = bool(self.bare) and (self.bare[0].isupper() or bool(INNER_CAPITAL.match(self.bare))
                                                or (self.bare[0].isdigit() and any(ch.isupper() for ch in self.bare)))
        self.closes_run = word != text or full_stop  # a possessive or a full stop ends the name at this word


@lru_cache(maxsize=65536)
def word_zipf(word: str) -> float:
    """How common an English word is (wordfreq's Zipf scale: 0 unknown, 7 "the"); looked up once a word."""
    return zipf_frequency(word, "en")


class UnlistedNameFinder:
    """Finds company names by their shape and context (see the module docstring); stateless, thread-safe."""

    @staticmethod
    def _common(word: str) -> bool:
        return word_zipf(word) >= COMMON_WORD_ZIPF

    @staticmethod
    def _rare(word: str) -> bool:
        """Rare enough to be part of a name it follows ("Novo Nordisk"), unlike a headline's verb ("Announces")."""
        return word_zipf(word) < RARE_WORD_ZIPF

    def find(self, text: str, known: Sequence[tuple[int, int]] = ()) -> list[OrgName]:
        """The company names of ``text``; runs of capitals inside a ``known`` span (the catalogue's matches) are
        skipped: a name found there would lose to the catalogue's anyway."""
        if "http" in text or "#" in text or "@" in text or "www." in text:
            words_only = URL.sub(_blank, text)
        else:
            words_only = text
        near, percents = self._evidence(words_only)
        if not near and not percents:
            return []  # many texts: no head word, legal form, symbol or company context anywhere
        found: list[OrgName] = []
        title_case = _TitleCase(words_only)
        for low, high in _windows(near, percents, len(text)):
            for span in RUN.finditer(words_only, low, high):
                start, end = span.span()
                if not (_any_between(near, start - 20, end + 4) or _any_between(percents, end, end + 24)):
                    continue
                if any(low_known <= start and end <= high_known for low_known, high_known in known):
                    continue
                if REDACTED_BEFORE.search(words_only, max(0, start - 12), start):
                    continue  # "XXXX Capital LLC": the name's first words are redacted
                for run in _split(words_only, start, end):
                    found.extend(self._from_run(text, run, title_case, near, percents))
        if found and _shouting(words_only):
            return []
        return [name for name in found if not self._public_body(name)]

    def _evidence(self, text: str) -> tuple[list[int], list[int]]:
        """Where a name could end or start: head words, legal forms and context words (one Aho-Corasick pass),
        symbols beside a name; and where a price move's "%" is. Runs of capitals far from all of them are no
        company this finder could show, and are never tokenised."""
        near = [last - length + 1 for last, length in _TRIGGERS.iter(text)
                if (last + 1 == len(text) or not text[last + 1].isalnum())
                and (last - length < 0 or not text[last - length].isalnum())]  # whole words: not "se" in "these"
        if "$" in text:
            near.extend(match.end() for match in SYMBOL_LEAD.finditer(text))
        if "(" in text:
            near.extend(match.start() for match in SYMBOL_AFTER.finditer(text))
        if "&" in text:
            near.extend(match.start() for match in AMPERSAND.finditer(text))
        near.extend(match.start() for match in INNER_CAPITAL_IN_TEXT.finditer(text))
        opening = HEADLINE_OPENING.match(text)
        if opening is not None and opening.group(2).lower() in HEADLINE_VERBS:
            near.append(opening.start(1))  # a headline's subject ("Jetcraft Strengthens …")
        near.sort()
        percents = [i for i, ch in enumerate(text) if ch == "%"] if "%" in text else []
        return near, percents

    # --- the kinds of evidence ------------------------------------------------------------------
    def _from_run(self, text: str, run: list[_Token], title_case: _TitleCase | bool, near: list[int],
                  percents: list[int]) -> list[OrgName]:
        headed = _headed(run, title_case)
        if headed is not None:
            words, legal = headed
            if (len(words) > 2 and _sentence_initial(text, words[0]) and self._common(words[0].lower)
                    and any(not self._common(w.lower) for w in words[1:-1])):
                words = words[1:]  # "Largest Ceragon Networks", "Former Wynn Resorts": a sentence's first word
            symbol = self._symbol(text, words)
            if self._plausible(text, words, legal, title_case) or symbol or self._in_company_context(text, words):
                return [self._name(text, words, symbol)]
            return []
        described = self._described(text, run) or self._headline_subject(text, run)
        if described:
            return described
        spelt = ("$" in text and SYMBOL_BEFORE.search(text, max(0, run[0].start - 60), run[0].start)) or "(" in text
        for size in range(1, min(len(run), 5) + 1 if spelt else 0):  # "$IOFB - Iowa First …": the shortest that spells it
            words = _trim(run[:size])
            symbol = self._symbol(text, words) if words and not _is_symbol_itself(words) else None
            if symbol is None:
                continue
            words = self._extend(run, size, words)
            if any(w.bare.upper() == symbol for w in words) or all(self._common(w.lower) for w in words):
                return []  # "ICE Benchmark Administration" (the symbol's own company), "Special Opportunities Fund"
            return [self._name(text, words, symbol)]
        for i in range(len(run)):  # "Maersk CFO …", "HanesBrands Reports Full-Year …": the context may sit inside the run
            end = run[i].start + len(run[i].bare)
            before = i == len(run) - 1 and _any_between(near, run[0].start - 20, run[0].start - 1)
            if not (_any_between(near, end, end + 4) or _any_between(percents, end, end + 24) or before):
                continue  # no context word or "%" next to it: the regexes below cannot match
            if not (COMPANY_AFTER.match(text, end)
                    or (before and COMPANY_BEFORE.search(text, max(0, run[0].start - 40), run[0].start))):
                continue
            words = self._core(text, run[:i + 1], title_case)
            if not words or _is_symbol_itself(words):
                continue
            if len(words) == 1 and (self._common(words[0].lower) or (
                    _sentence_initial(text, words[0]) and word_zipf(words[0].lower) >= OBSCURE_SENTENCE_START_ZIPF)):
                continue  # "Diluted earnings per share …": a sentence's first word needs to be no English word
            if self._in_company_context(text, words) or (i == len(run) - 1 and not _owner(text, words)
                                                         and COMPANY_BEFORE.search(text, max(0, words[0].start - 40), words[0].start)):
                return [self._name(text, words)]
        if "&" in text[run[0].start:run[-1].end] and not title_case and (found := self._partnership(text, run, title_case)):
            return found
        if INNER_CAPITAL_IN_TEXT.search(text, run[0].start, run[-1].end):
            return self._coined(text, run)
        return []

    def _described(self, text: str, run: list[_Token]) -> list[OrgName]:
        """ "Finnish elevator maker Kone cuts …", "auto parts supplier Prevent sues …": the name a trade's noun
        introduces, up to its first function word (one common word is a name here: the noun says so)."""
        if not DESCRIPTOR_BEFORE.search(text, max(0, run[0].start - 16), run[0].start):
            return []
        words: list[_Token] = []
        for word in run[:4]:
            if word.lower in NOT_NAME_WORDS or word.lower in NOT_COMPANIES or _cuts([word], 0) or word.lower == "and" or (
                    word.lower in FUNCTION_WORDS and word.lower not in CONNECTORS):
                break  # "bank Nordea and Finnish retail chain Stockmann": "and" joins two names here
            words.append(word)
            if word.closes_run:
                break
        while words and words[-1].lower in CONNECTORS:
            words.pop()
        if not words or _is_symbol_itself(words) or _owner(text, words):
            return []
        return [self._name(text, words)]

    def _headline_subject(self, text: str, run: list[_Token]) -> list[OrgName]:
        """ "Jetcraft Strengthens US Footprint …", "$SABR - Avianca signs …": an obscure word opening a sentence,
        followed by what companies do, is a company."""
        first = run[0]
        if first.closes_run and first.bare == first.text:
            return []
        following = _FOLLOWING_WORD.match(text, first.end)
        if (following is None or following.group(1).lower() not in HEADLINE_VERBS or first.bare.isupper()
                or not _sentence_initial(text, first) or word_zipf(first.lower) >= OBSCURE_WORD_ZIPF):
            return []
        return [self._name(text, [first])]

    def _partnership(self, text: str, run: list[_Token], title_case: _TitleCase | bool) -> list[OrgName]:
        """ "Kirkland & Ellis", "Marks & Spencer": names joined by "&" where a side is no common word ("Mergers &
        Acquisitions" is not a firm)."""
        for i, word in enumerate(run):
            if word.lower in ("&", "&amp;") and 0 < i < len(run) - 1 and run[i + 1].capitalised:
                left = self._core(text, run[:i], title_case)
                right = self._extend(run, i + 2, [run[i + 1]])
                if left and all(any(w.lower not in GENERIC_PAIR_WORDS for w in side) for side in (left, right)) \
                        and any(not self._common(w.lower) for w in (*left, *right)) \
                        and not all(w.bare.isupper() and len(w.bare) > 2 for w in (*left, *right)):  # "FCRA & FDCPA": laws
                    return [self._name(text, [*left, word, *right])]
        return []

    def _coined(self, text: str, run: list[_Token]) -> list[OrgName]:
        """ "TikTok", "SharpLaunch", "HanesBrands": a word with a capital inside is a coined name, a company's or
        its brand's, unless it is a sector's ("FinTech", "HealthCare") or a surname's ("McDonald", "DeSantis")."""
        for i, word in enumerate(run):
            if COINED.match(word.bare) and word.lower not in GENERIC_COINED:
                return [self._name(text, self._extend(run, i + 1, [word]))]
        return []

    def _extend(self, run: list[_Token], size: int, words: list[_Token]) -> list[_Token]:
        """ "Acer" spells $ACER, "Novo" $NVO; the names are "Acer Therapeutics" and "Novo Nordisk": heads, legal
        forms and uncommon words that follow belong to it ("Eventbrite Needs …" stops at "Needs")."""
        words = list(words)
        while size < len(run) and not words[-1].closes_run and (
                run[size].lower in NAME_HEADS or run[size].lower in LEGAL_FORMS or self._rare(run[size].lower)):
            words.append(run[size])
            size += 1
        return words

    @staticmethod
    def _in_company_context(text: str, words: list[_Token]) -> bool:
        last = words[-1]
        return not _owner(text, words) and COMPANY_AFTER.match(text, last.start + len(last.bare)) is not None

    def _core(self, text: str, run: list[_Token], title_case: _TitleCase | bool) -> list[_Token]:
        """The run's words after its last function word, and in a title-cased headline after its last common word
        too ("Tesla Names Maersk" → "Maersk"); in prose a capitalised common word is part of the name ("Canada
        Goose"), unless it opens the sentence."""
        words = list(run)
        cut = 0
        for i, word in enumerate(words):
            common = self._common(word.lower) and word.lower not in NAME_HEADS
            if _cuts(words, i) or word.lower in NOT_COMPANIES or (common and (title_case or _sentence_initial(text, word))):
                cut = i + 1
        words = words[cut:]
        while words and words[0].lower in CONNECTORS:
            words.pop(0)
        while words and words[-1].lower in CONNECTORS:
            words.pop()
        return words

    def _plausible(self, text: str, words: list[_Token], legal: bool, title_case: _TitleCase | bool) -> bool:
        """A legal form makes a name; otherwise one word of the name must be no common English word, or, in prose,
        the name's capitals must be its own: not a headline's, not a sentence's first ("… at Simply Better Brands")."""
        body = [w for w in words[:-1] if w.lower not in CONNECTORS]
        if not body or all(w.lower in NOT_COMPANIES for w in body):
            return False
        if not legal and len(body) == 1 and body[0].lower in PUBLIC_BODIES:
            return False
        if any(w.lower in PUBLIC_BODIES for w in body) and words[-1].lower == "bank":
            return False
        if legal or any(not self._common(w.lower) for w in body):
            return True
        return not title_case and not _sentence_initial(text, words[0])

    def _symbol(self, text: str, words: list[_Token]) -> str | None:
        before = SYMBOL_BEFORE.search(text, max(0, words[0].start - 60), words[0].start) if "$" in text else None
        after = SYMBOL_AFTER.match(text, _skip_spaces(text, words[-1].start + len(words[-1].bare))) if "(" in text else None
        if before is not None and after is not None and before.group(1) == after.group(1):
            return after.group(1)  # "$SAVE - Spirit Airlines (SAVE)": named twice, it need not spell the name
        for match in (before, after):
            if match is not None and _spells(match.group(1), [w.bare for w in words], self._common):
                return match.group(1)
        return None

    @staticmethod
    def _name(text: str, words: list[_Token], symbol: str | None = None) -> OrgName:
        start, end = words[0].start, words[-1].start + len(words[-1].bare)
        surface = text[start:end]
        name = LEGAL_FORM_END.sub("", surface).replace("&amp;", "&")
        return OrgName(start, end, name or surface, symbol)

    @staticmethod
    def _public_body(name: OrgName) -> bool:
        return slug(name.name) in PUBLIC_BODY_NAMES


def _blank(match: re.Match) -> str:
    """Links, handles and hashtags are no words of a name; blanking them keeps the offsets."""
    return " " * len(match.group())


def _headed(run: list[_Token], title_case: _TitleCase | bool) -> tuple[list[_Token], bool] | None:
    """The run up to its last legal form or head word, and whether that is a legal form; None without one. In a
    headline the first head ends the name: its later capitals are the headline's ("Avista Therapeutics Partners
    with Roche")."""
    order = range(len(run) - 1, 0, -1)
    if len(run) > 2 and title_case:
        order = range(1, len(run))
    for i in order:
        head = run[i].lower
        if head in LEGAL_FORMS or (head in NAME_HEADS and run[i].capitalised):
            if i + 1 < len(run) and run[i + 1].lower in NOT_AFTER_HEAD:
                return None
            while i + 1 < len(run) and run[i + 1].lower in LEGAL_FORMS:  # "The First Bancshares, Inc."
                i += 1
                head = run[i].lower
            words = _trim(run[:i + 1])
            return (words, head in LEGAL_FORMS) if len(words) >= 2 else None
    return None


def _is_symbol_itself(words: list[_Token]) -> bool:
    """ "PAYO", "BFF.MI", "WWE": a symbol or an acronym alone is the catalogue's and the cashtags' business."""
    return len(words) == 1 and bool(LISTING.match(words[0].bare) or (words[0].bare.isupper() and len(words[0].bare) <= 5))


def _split(text: str, start: int, end: int) -> list[list[_Token]]:
    """A run's words, split after a possessive or a full stop, without connectors at either end."""
    runs: list[list[_Token]] = []
    current: list[_Token] = []
    for match in TOKEN.finditer(text, start, end):
        token = _Token(match.start(), match.end(), match.group())
        if current or token.lower not in CONNECTORS:
            current.append(token)
        if token.closes_run and current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [stripped for run in runs if (stripped := _strip_connectors(run))]


class _TitleCase:
    """Whether most longer words are capitalised (a headline, whose capitals say nothing about names); worked out
    only when a name's evidence needs it."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._value: bool | None = None

    def __bool__(self) -> bool:
        if self._value is None:
            long_words = LONG_WORD.findall(self._text)
            self._value = len(long_words) >= 3 and sum(w[0] < "a" for w in long_words) >= 0.7 * len(long_words)
        return self._value


def _shouting(text: str) -> bool:
    """Most words in capitals: no capital is evidence of anything."""
    words = WORD.findall(text)
    return len(words) >= 4 and sum(map(str.isupper, words)) >= 0.7 * len(words)


def _windows(near: list[int], percents: list[int], length: int) -> list[tuple[int, int]]:
    """The stretches of text a name with evidence at ``near`` (or a price move's "%") can lie in, merged: a name
    reaches back at most ~120 characters from its head or context word and ends before its "%"."""
    spans = sorted([(max(0, p - 120), min(length, p + 40)) for p in near]
                   + [(max(0, p - 60), p) for p in percents])
    merged: list[tuple[int, int]] = []
    for low, high in spans:
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _any_between(positions: list[int], low: int, high: int) -> bool:
    i = bisect_left(positions, low)
    return i < len(positions) and positions[i] <= high


def _triggers() -> ahocorasick.Automaton:
    """Heads as names write them ("Bancshares", "BANCSHARES"), context words in any of three cases, legal forms
    capitalised or upper case (lower case only the long ones complaints write: "capio partners llc"; "sa", "ag"
    in lower case are inside every other word)."""
    automaton = ahocorasick.Automaton(ahocorasick.STORE_LENGTH)
    for word in NAME_HEADS:
        automaton.add_word(word[0].upper() + word[1:])
        automaton.add_word(word.upper())
    for word in DESCRIPTORS:
        automaton.add_word(word)
    for word in (*LEGAL_FORMS, *CONTEXT_WORDS):
        lower = (word,) if word in CONTEXT_WORDS or word in LOWER_CASE_LEGAL_FORMS else ()
        for spelling in (*lower, word[0].upper() + word[1:], word.upper()):
            automaton.add_word(spelling)
    automaton.make_automaton()
    return automaton


def _strip_connectors(run: list[_Token]) -> list[_Token]:
    while run and run[-1].lower in CONNECTORS:
        run = run[:-1]
    return run


def _trim(words: list[_Token]) -> list[_Token]:
    """The name ends at its head; it starts after the run's last function word ("Why Iowa First Bancshares"),
    keeping a leading "The" out of the span."""
    cut = 0
    for i, word in enumerate(words[:-1]):
        if _cuts(words, i):
            cut = i + 1
    words = words[cut:]
    while words and words[0].lower in CONNECTORS:
        words = words[1:]
    return words


def _cuts(words: list[_Token], i: int) -> bool:
    """A name does not reach back over a function word, a period ("Q4 2019 …") or an "of" that follows no head
    word ("Cases of Missold Insurance"; "Bank of America" keeps it)."""
    word = words[i]
    if word.lower in ("of", "de", "du", "del"):
        return i == 0 or words[i - 1].lower not in NAME_HEADS
    return (word.lower in FUNCTION_WORDS and word.lower not in CONNECTORS) or bool(PERIOD.match(word.bare))


def _sentence_initial(text: str, token: _Token) -> bool:
    """The first word of the text or of a sentence, a title or a list item: capitalised whatever it is."""
    before = text[:token.start].rstrip()
    before = TRAILING_CASHTAGS.sub("", before).rstrip()  # "$IOFB $XYZ Iowa …"
    return not before or before[-1] in ".!?:;-–|\"“(*•"


_FOLLOWING_WORD = re.compile(r"(?:['’]s)? ([A-Za-z]+)\b")


def _owner(text: str, words: list[_Token]) -> bool:
    """ "Kylie Jenner's Cosmetics Company": a possessive before a capitalised word owns a name, it is not the company."""
    return words[-1].bare != words[-1].text and _next_capitalised(text, words[-1].end)


def _next_capitalised(text: str, end: int) -> bool:
    following = NEXT_INITIAL.match(text[end:end + 3])
    return following is not None and following.group(1).isupper()


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position] == " ":
        position += 1
    return position


def _spells(symbol: str, words: list[str], common: Callable[[str], bool]) -> bool:
    """ "IOFB" is spelt in order by "Iowa First Bancshares", "ZGNX" by "Zogenix", "APRN" by "Blue Apron": the
    symbol's letters in order, from the start of the name or after its leading common words ("FDA OKs Zogenix"
    is not a name of $ZGNX)."""
    symbol = symbol.lower()
    words = [NOT_ALNUM.sub("", w.lower()) for w in words]
    for first in range(len(words)):
        if first and not common(words[first - 1]):
            return False
        letters = "".join(words[first:])
        if not letters or letters[0] != symbol[0]:
            continue
        position = 0
        for ch in symbol:
            position = letters.find(ch, position) + 1
            if position == 0:
                break
        else:
            return True
    return False


_TRIGGERS = _triggers()
