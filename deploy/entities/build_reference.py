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
COMMON_WORD_ZIPF = 3.9  # a single-word short name at least this frequent in English is not used alone
BARE_TICKER_MAX_ZIPF = 3.0  # a ticker this frequent as a word ("ALL", "IT", "ON") is only taken as a cashtag
US_TICKER = re.compile(r"^[A-Z]{1,5}(?:\.[A-C])?$")  # US listings and share classes (BRK.B), not .F or .L


def short_name(name: str) -> str:
    stripped = re.sub(r"^the\s+", "", name, flags=re.IGNORECASE)
    while True:
        shorter = SUFFIX.sub("", stripped).strip(" ,")
        if shorter == stripped or not shorter:
            return stripped
        stripped = shorter


def usable_alias(alias: str) -> bool:
    words = alias.split()
    if len(alias) < 3 and not any(ch.isdigit() for ch in alias):
        return False
    return len(words) > 1 or zipf_frequency(alias.lower(), "en") < COMMON_WORD_ZIPF


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
        aliases = list(dict.fromkeys([*names, *(short_name(n) for n in names)]))
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
