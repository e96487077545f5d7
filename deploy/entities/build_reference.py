"""Regenerate ``companies.jsonl`` from the index constituents shipped in the PyPI package pytickersymbols.

Run by hand (see SOURCE.md); the product only reads the generated file. It needs pytickersymbols (the data)
and wordfreq (to tell a name that is also a common English word, like "Match" or "Block", from one that
is not, like "Nvidia"): neither is a runtime dependency.

    python deploy/entities/build_reference.py > deploy/entities/companies.jsonl
"""

from __future__ import annotations

import json
import re
import sys

from pytickersymbols.indices_data import INDICES
from wordfreq import zipf_frequency

# Legal-form and listing suffixes that people drop when they name a company ("Apple Inc." → "Apple").
SUFFIX = re.compile(
    r"(?:,?\s+(?:inc\.?|incorporated|corp\.?|corporation|co\.|company|companies|plc|ltd\.?|limited|group|"
    r"holdings?|n\.?v\.?|s\.?a\.?|se|ag|asa|ab|oyj|s\.?p\.?a\.?|l\.?p\.?|& co\.?|reit|class [a-c]|"
    r"\(class [a-c]\)|\([^)]*\)))+$",
    re.IGNORECASE,
)
# Words that end a company's name without naming it ("Gilead Sciences", "Micron Technology"): the one word
# before them is also an alias when it is not a common word itself.
GENERIC_TAIL = re.compile(
    r"\s+(?:sciences|biosciences|technologies|technology|pharmaceuticals?|therapeutics|industries|systems|networks|"
    r"semiconductors?|software|laboratories)$", re.IGNORECASE)
COMMON_WORD_ZIPF = 3.9  # a single-word short name at least this frequent in English is not used alone
HEAD_WORD_MAX_ZIPF = 3.0  # stricter for a head word, which may be a surname or a place ("Powell", "Abbott", "Gibraltar")
BARE_TICKER_MAX_ZIPF = 3.0  # a ticker this frequent as a word ("ALL", "IT", "ON") is only taken as a cashtag
US_TICKER = re.compile(r"^[A-Z]{1,5}(?:\.[A-C])?$")  # US listings and share classes (BRK.B), not .F or .L


def short_name(name: str) -> str:
    stripped = re.sub(r"^the\s+", "", name, flags=re.IGNORECASE)
    while True:
        shorter = SUFFIX.sub("", stripped).strip(" ,")
        if shorter == stripped or not shorter:
            return stripped
        stripped = shorter


def head_word(name: str) -> str | None:
    """ "Gilead Sciences" → "Gilead"; None unless one word is left before a generic tail."""
    head = GENERIC_TAIL.sub("", name)
    if head == name or len(head.split()) != 1 or len(head) < 4:
        return None
    return head if zipf_frequency(head.lower(), "en") < HEAD_WORD_MAX_ZIPF else None


def usable_alias(alias: str) -> bool:
    """Three characters or more ("Q2" is a quarter, "3M" is added by hand), and a single word only if it is not
    common in English."""
    if len(alias) < 3:
        return False
    return len(alias.split()) > 1 or zipf_frequency(alias.lower(), "en") < COMMON_WORD_ZIPF


def main() -> None:
    companies: dict[str, dict] = {}
    for index_name, index in INDICES.items():
        for company in index["companies"]:
            symbol = company.get("symbol")
            if not symbol:
                continue
            entry = companies.setdefault(symbol, {"id": symbol, "names": [], "tickers": {symbol}, "indices": set(),
                                                   "country": company.get("country", ""), "industries": set()})
            entry["names"].append(company["name"])
            entry["indices"].add(index_name)
            entry["industries"].update(company.get("industries", []))
            for listing in company.get("symbols", []):
                yahoo = listing["yahoo"].replace("-", ".")
                if US_TICKER.match(yahoo):
                    entry["tickers"].add(yahoo)
    owner: dict[str, str] = {}
    for symbol in companies:  # a company's own symbol beats another's secondary listing
        owner[symbol] = symbol
    for symbol, entry in sorted(companies.items()):
        for ticker in sorted(entry["tickers"]):
            owner.setdefault(ticker, symbol)
    for symbol, entry in sorted(companies.items()):
        names = list(dict.fromkeys(entry["names"]))
        shorts = [short_name(n) for n in names]
        aliases = list(dict.fromkeys([*names, *shorts, *filter(None, map(head_word, shorts))]))
        tickers = sorted(t for t in entry["tickers"] if owner[t] == symbol)
        kind = "bank" if any(re.search(r"\bbank", i, re.IGNORECASE) for i in entry["industries"]) else "company"
        print(json.dumps({
            "id": symbol,
            "name": short_name(names[0]) if usable_alias(short_name(names[0])) else names[0],
            "kind": kind,
            "country": entry["country"],
            "tickers": tickers,
            "bare_tickers": [t for t in tickers if len(t) >= 2 and t.isalpha()
                             and zipf_frequency(t.lower(), "en") < BARE_TICKER_MAX_ZIPF],
            "aliases": [a for a in aliases if usable_alias(a)],
            "indices": sorted(entry["indices"]),
        }, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
