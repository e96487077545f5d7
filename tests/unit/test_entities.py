"""Entity extraction: cashtags, bare tickers, names and aliases, case rules, Chinese, the watchlist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskpulse.streams.enrich.entities import (
    Catalogue, EntityError, EntityExtractor, case_rule, entity_ids, load_extractor,
)
from riskpulse.core.settings import Settings


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor(Catalogue.load())


def found(extractor: EntityExtractor, text: str) -> list[tuple[str, str]]:
    """(entity id, the text it was found in) per mention, spans checked against the text."""
    return [(m.entity_id, text[m.start:m.end]) for m in extractor.extract(text)]


def test_cashtags_known_unknown_and_share_classes(extractor):
    text = "$AAPL and $goog up, $BRK.B flat, $XYZW (unknown) down; $5 and US$3 are money, not tickers"
    assert found(extractor, text) == [("AAPL", "$AAPL"), ("GOOGL", "$goog"), ("BRK.B", "$BRK.B"), ("XYZW", "$XYZW")]
    unknown = [m for m in extractor.extract(text) if m.entity_id == "XYZW"][0]
    assert unknown.name == "XYZW"
    assert found(extractor, "$AAPL:US $BTC-USD $ES_F") == [("AAPL", "$AAPL:US"), ("BTC-USD", "$BTC-USD"), ("ES_F", "$ES_F")]


def test_names_and_aliases_map_to_one_entity(extractor):
    text = "Apple Inc. said Apple's iPhone sales rose; Google and Alphabet; JPMorgan, J.P. Morgan and JPM."
    assert found(extractor, text) == [
        ("AAPL", "Apple Inc."), ("AAPL", "Apple's"), ("GOOGL", "Google"), ("GOOGL", "Alphabet"),
        ("JPM", "JPMorgan"), ("JPM", "J.P. Morgan"), ("JPM", "JPM"),
    ]
    assert entity_ids(extractor.extract(text)) == ["AAPL", "GOOGL", "JPM"]


def test_tickers_that_are_words_need_a_cashtag_or_an_exchange(extractor):
    assert found(extractor, "IT budgets rise. ALL is well. A stock ON fire. Is GE ok?") == [("GE", "GE")]
    assert found(extractor, "Allstate (NYSE: ALL) and $ON rally") == [("ALL", "Allstate"), ("ALL", "ALL"), ("ON", "$ON")]


def test_common_word_names_need_more_than_the_word(extractor):
    assert found(extractor, "Analyst raises Price Target; a Match made; Block trade; News at ten") == []
    assert found(extractor, "Target Corp and Match Group report") == [("TGT", "Target Corp"), ("MTCH", "Match Group")]
    assert found(extractor, "I ate an apple") == []  # one-word names must be capitalised


def test_word_boundaries(extractor):
    assert found(extractor, "Pineapple, AAPLX, UBSxyz and Intelligence") == []
    assert found(extractor, "#Tesla (Tesla) Tesla-made Tesla's") == [("TSLA", "Tesla")] * 4


def test_shouted_headline_is_not_a_list_of_tickers(extractor):
    assert found(extractor, "MSFT SHARES SURGE IN HEAVY TRADING AFTER THE CALL") == []
    assert [e for e, _ in found(extractor, "Upgrades: NFLX $CVX GOOGL JPM")] == ["NFLX", "CVX", "GOOGL", "JPM"]


def test_longest_match_wins_and_nothing_overlaps(extractor):
    assert found(extractor, "Bank of America Merrill Lynch said") == [("BAC", "Bank of America Merrill Lynch")]
    assert found(extractor, "中国工商银行和工商银行") == [("1398.HK", "中国工商银行"), ("1398.HK", "工商银行")]


def test_chinese_and_products_from_the_watchlist(extractor):
    text = "我在招商银行的卡被盗刷，支付宝也冻结了; my Chase Sapphire card and Zelle transfer failed"
    assert found(extractor, text) == [
        ("3968.HK", "招商银行"), ("ANTGROUP", "支付宝"), ("JPM", "Chase Sapphire"), ("ZELLE", "Zelle"),
    ]
    assert {"JPM", "1398.HK", "ZELLE"} <= extractor.watched_ids
    assert "AAPL" not in extractor.watched_ids


def test_offsets_survive_characters_that_lower_case_to_two(extractor):
    text = "İstanbul office of HSBC"
    assert found(extractor, text) == [("HSBA.L", "HSBC")]


def test_case_rules_by_shape():
    assert case_rule("Nvidia") == "cap"
    assert case_rule("IBM") == "exact"
    assert case_rule("Goldman Sachs") == "any"
    assert case_rule("招商银行") == "any"


def test_watchlist_entries(tmp_path: Path):
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(
        "entities:\n"
        "  - {id: ACME, name: Acme Bank, kind: bank, aliases: [Acme, 阿克米银行], products: [Acme Gold Card], tickers: [ACMB]}\n"
        "  - {id: AAPL, aliases: [Cupertino giant]}\n",
        encoding="utf-8",
    )
    extractor = EntityExtractor(Catalogue.load(watchlist=watchlist))
    text = "Acme Bank froze my Acme Gold Card; 阿克米银行 said $ACMB; the Cupertino giant too"
    assert found(extractor, text) == [
        ("ACME", "Acme Bank"), ("ACME", "Acme Gold Card"), ("ACME", "阿克米银行"), ("ACME", "$ACMB"), ("AAPL", "Cupertino giant"),
    ]
    assert extractor.watched_ids == {"ACME", "AAPL"}
    assert extractor.catalogue.entities["ACME"].kind == "bank"


@pytest.mark.parametrize("content, complaint", [
    ("entities:\n  - {aliases: [X]}\n", "needs an 'id'"),
    ("entities:\n  - {id: NOPE, aliases: [X]}\n", "needs a 'name'"),
    ("entities: [\n", "not valid YAML"),
])
def test_bad_watchlist_names_the_problem(tmp_path: Path, content: str, complaint: str):
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(content, encoding="utf-8")
    with pytest.raises(EntityError, match=complaint):
        Catalogue.load(watchlist=watchlist)


def test_load_extractor_follows_the_settings_and_the_file(tmp_path: Path):
    watchlist = tmp_path / "w.yaml"
    watchlist.write_text("entities:\n  - {id: ONE, name: First Watched}\n", encoding="utf-8")
    settings = Settings(watchlist_file=watchlist)
    first = load_extractor(settings)
    assert first is load_extractor(settings) and first.watched_ids == {"ONE"}
    watchlist.write_text("entities:\n  - {id: TWO, name: Second Watched}\n", encoding="utf-8")
    import os
    os.utime(watchlist, (1, 1))
    assert load_extractor(settings).watched_ids == {"TWO"}
    with pytest.raises(EntityError, match="RISKPULSE_WATCHLIST_FILE"):
        load_extractor(Settings(watchlist_file=tmp_path / "missing.yaml"))


def reference_extractor(tmp_path: Path, *rows: dict) -> EntityExtractor:
    reference = tmp_path / "companies.jsonl"
    reference.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    return EntityExtractor(Catalogue.load(reference=reference, curated=None, watchlist=None))


def test_title_case_names_need_their_capitals_and_no_name_before_them(tmp_path: Path):
    extractor = reference_extractor(tmp_path, {"id": "ET", "name": "Energy Transfer", "tickers": ["ET"],
                                               "aliases": [{"text": "Energy Transfer", "case": "title"}]})
    assert found(extractor, "Energy Transfer rallies; The Energy Transfer deal") == [
        ("ET", "Energy Transfer"), ("ET", "Energy Transfer")]
    assert found(extractor, "energy transfer in cells; Energy transfer rates") == []
    assert found(extractor, "Alliance Energy Transfer rallies") == []  # the tail of another name
    assert found(extractor, "the Energy Transfer Institute said") == []  # the head of another name


def test_a_legal_form_names_the_company_in_each_spelling(tmp_path: Path):
    extractor = reference_extractor(tmp_path, {"id": "IMMR", "name": "Immersion", "tickers": ["IMMR"],
                                               "aliases": ["Immersion Corp"]},
                                    {"id": "SSL", "name": "Sasol", "tickers": ["SSL"], "aliases": ["Sasol Ltd."]})
    assert found(extractor, "Immersion Corporation (IMMR) and Immersion Corp. and Sasol Limited") == [
        ("IMMR", "Immersion Corporation"), ("IMMR", "Immersion Corp."), ("SSL", "Sasol Limited")]


def test_coined_names_match_in_lower_case(extractor):
    assert case_rule("TransUnion") == "any" and case_rule("Nvidia") == "cap" and case_rule("eBay") == "cap"
    assert found(extractor, "the transunion report and my paypal account") == [("TRU", "transunion"), ("PYPL", "paypal")]
    assert found(extractor, "sold on eBay, not on nvidia") == [("EBAY", "eBay")]  # a name that starts in lower case


def test_names_joined_by_and_or_a_hyphen_in_each_spelling(tmp_path: Path):
    extractor = reference_extractor(tmp_path, {"id": "BBWI", "name": "Bath & Body Works", "tickers": ["BBWI"],
                                               "aliases": ["Bath & Body Works"]},
                                    {"id": "MBG", "name": "Mercedes-Benz", "tickers": ["MBG"], "aliases": ["Mercedes-Benz"]})
    assert found(extractor, "Bath and Body Works, Bath &amp; Body Works and Mercedes Benz") == [
        ("BBWI", "Bath and Body Works"), ("BBWI", "Bath &amp; Body Works"), ("MBG", "Mercedes Benz")]


def test_a_cashtag_vouches_for_its_company_s_short_names(extractor):
    assert found(extractor, "$SNAP: Snap confirms the launch") == [("SNAP", "$SNAP"), ("SNAP", "Snap")]
    assert found(extractor, "$PPG - PPG Q2 Earnings Preview") == [("PPG", "$PPG"), ("PPG", "PPG")]
    assert found(extractor, "$GTES - Gates to offer notes") == [("GTES", "$GTES"), ("GTES", "Gates")]
    assert found(extractor, "Snap decisions and a Gates foundation grant") == []   # no cashtag: prose
    assert found(extractor, "$SNAP up; a snap election") == [("SNAP", "$SNAP")]   # lower case stays prose
    # a first word that starts other companies' names is no short name: "Bank" of Bank of America
    assert ("BAC", "Bank") not in found(extractor, "$BAC - Bank stocks rally")


def test_a_name_run_together_is_matched_as_written_or_in_capitals(extractor):
    assert found(extractor, "unverified account BESTBUY/CBNA") == [("BBY", "BESTBUY"), ("C", "CBNA")]  # CBNA: the watchlist
    assert found(extractor, "thanks #WellsFargo and @CapitalOne") == [("WFC", "WellsFargo"), ("COF", "CapitalOne")]
    assert found(extractor, "go to bestbuy dot com") == []


def test_one_company_listed_on_several_exchanges_keeps_its_names(extractor):
    # the reference lists ABB in New York, Stockholm and Zurich: its name used to be dropped as ambiguous
    assert found(extractor, "ABB to spin off its turbocharging business") == [("ABB", "ABB")]
    assert [e for e, _ in found(extractor, "Shell plc and Nordea report")] == ["SHEL.L", "NDA-FI.HE"]
    assert found(extractor, "Alphabet Inc. and Alphabet") == [("GOOGL", "Alphabet Inc."), ("GOOGL", "Alphabet")]
    # two companies of one name (North Carolina, Puerto Rico) stay ambiguous: neither is named
    assert found(extractor, "First Bancorp declares a dividend") == []


def test_a_short_name_opening_a_headline_before_what_companies_do(extractor):
    assert found(extractor, "Gates to offer $568M of senior notes") == [("GTES", "Gates")]
    assert found(extractor, "Sinclair to Report Second Quarter 2022 Results") == [("SBGI", "Sinclair")]
    assert found(extractor, "Snap CEO Evan Spiegel talks earnings") == [("SNAP", "Snap")]
    assert found(extractor, "Gates of the old town reopen") == []           # no corporate act: a word
    assert found(extractor, "I saw Sinclair to report it") == []            # not the headline's subject
    assert "GOOS" not in [e for e, _ in found(extractor, "CANADA TO LAUNCH ITS OWN DISPUTE CONSULTATION")]
    # "Vertex" starts two companies' names (Vertex Inc., Vertex Pharmaceuticals): neither is guessed
    assert "VERX" not in [e for e, _ in found(extractor, "Vertex to Announce Second Quarter Results")]


def test_a_title_name_keeps_each_word_s_first_capital(tmp_path: Path):
    extractor = reference_extractor(tmp_path, {"id": "MITQ", "name": "Moving iMAGE Technologies", "tickers": ["MITQ"],
                                               "aliases": [{"text": "Moving iMAGE Technologies", "case": "title"}]})
    assert found(extractor, "Moving iMage Technologies signs") == [("MITQ", "Moving iMage Technologies")]
    assert found(extractor, "moving image technologies in film") == []


def test_a_headline_subject_vouches_for_its_name_further_on(extractor):
    text = "Discover Partners With Artist to Create Next Design for Discover® Student Cards"
    assert found(extractor, text) == [("DFS", "Discover"), ("DFS", "Discover")]
    assert found(extractor, "Ford unveils its new F-150 Raptor") == [("F", "Ford")]  # a model number, not the ticker
    assert found(extractor, "Discover new ways to save with Discover® cards") == []  # no headline subject: a word


def test_a_short_ticker_opens_a_headline_only_before_a_results_release(extractor):
    assert found(extractor, "EA to Release First Quarter Fiscal Year 2023 Results on August 2") == [("EA", "EA")]
    assert found(extractor, "ITT to Release 2022 Second Quarter Results") == [("ITT", "ITT")]
    assert found(extractor, "EA to buy a studio") == []                     # an acronym of many firms
    assert found(extractor, "EA TO RELEASE THE RESULTS OF THE VOTE") == []  # shouted


def test_an_abbreviation_in_brackets_names_the_entity_there_and_further_on(extractor):
    text = "Moving iMage Technologies (MiT) and Alamo Drafthouse Cinemas Announce; MiT shares rise"
    assert [(e, s) for e, s in found(extractor, text) if e == "MITQ"] == [
        ("MITQ", "Moving iMage Technologies"), ("MITQ", "MiT"), ("MITQ", "MiT")]
    # a bracketed ticker is a symbol, not an abbreviation; nor is what does not spell the name from its start
    assert found(extractor, "Immersion Corporation (IMMR) and Apple (AAPL)") == [
        ("IMMR", "Immersion Corporation"), ("AAPL", "Apple"), ("AAPL", "AAPL")]  # "(AAPL)": a listed ticker, bare


def test_mentions_do_not_depend_on_the_process_hash_seed():
    """The worker's enrichment process and the test process found "ASML" (named by two cashtags' companies) as
    two different listings: the anchored names were gathered from a set, whose order follows PYTHONHASHSEED."""
    import os
    import subprocess
    import sys

    code = ("from riskpulse.streams.enrich.entities import Catalogue, EntityExtractor\n"
            "ex = EntityExtractor(Catalogue.load())\n"
            "print([(m.entity_id, m.start) for t in ['$ASML $ASMLF - ASML Q2: Full Order Book', "
            "'$GOOG $GOOGL: Alphabet and Google', '$VOW3.DE $VOW.DE Volkswagen recalls'] for m in ex.extract(t)])")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3", "4")}
    assert len(outputs) == 1, outputs
