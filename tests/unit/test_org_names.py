"""Companies no catalogue lists: found by a name's head, a symbol it spells, or a company's context — and not
in headlines' capitals, people's names, markets or public bodies."""

from __future__ import annotations

import pytest

from riskpulse.streams.enrich.entities import Catalogue, EntityExtractor
from riskpulse.streams.enrich.org_names import UnlistedNameFinder, slug


@pytest.fixture(scope="module")
def finder() -> UnlistedNameFinder:
    return UnlistedNameFinder()


def _names(finder: UnlistedNameFinder, text: str) -> list[tuple[str, str]]:
    return [(text[n.start:n.end], n.entity_id) for n in finder.find(text)]


@pytest.mark.parametrize(("text", "expected"), [
    ("Iowa First Bancshares reports Q4 results", [("Iowa First Bancshares", "org:iowa-first-bancshares")]),
    ("Kahn Swick & Foti, LLC reminds investors of the deadline", [("Kahn Swick & Foti, LLC", "org:kahn-swick-foti")]),
    ("A complaint about Verition Fund Management LLC and its fees",
     [("Verition Fund Management LLC", "org:verition-fund-management")]),
    ("Money flows from retail into Simply Better Brands this week", [("Simply Better Brands", "org:simply-better-brands")]),
])
def test_a_head_word_or_legal_form_closes_a_name(finder, text, expected):
    assert _names(finder, text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("$IOFB - Iowa First Bancshares reports Q4 results", [("Iowa First Bancshares", "IOFB")]),
    ("$APRN - Blue Apron: Still Unappetizing.", [("Blue Apron", "APRN")]),
    ("$EB - Eventbrite Needs To Find Acquisitions.", [("Eventbrite", "EB")]),
    ("$ACER - Acer Therapeutics: Upcoming Catalysts.", [("Acer Therapeutics", "ACER")]),
    ("Medigus (NASDAQ: MDGS) signs an agreement", [("Medigus", "MDGS")]),
])
def test_a_name_that_spells_the_symbol_beside_it_is_that_symbols_company(finder, text, expected):
    assert _names(finder, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("$SAVE - Spirit Airlines (SAVE) Investor Presentation", [("Spirit Airlines", "SAVE")]),
    ("$NRDEF - Nordea Bank AB (NRDEF) CEO Frank Vang-Jensen on Q2 2022 Results", [("Nordea Bank AB", "NRDEF")]),
    ("Spirit Airlines (SAVE) Investor Presentation", []),  # named once and not spelt: no evidence it is SAVE's
])
def test_a_name_between_a_cashtag_and_the_same_symbol_is_that_symbols_company(finder, text, expected):
    assert _names(finder, text) == expected


def test_a_symbol_is_not_spelt_across_other_words_of_a_headline(finder):
    names = _names(finder, "$ZGNX - FDA OKs Zogenix's Fintepla for Dravet syndrome")
    assert all(not surface.startswith("FDA") for surface, _ in names)


@pytest.mark.parametrize(("text", "surface"), [
    ("Akoustis down 13% on pricing equity offering", "Akoustis"),
    ("Intelsat's stock bounces 6.6% premarket", "Intelsat"),
    ("General Electric names Maersk CFO Carolina Dybeck Happe as finance chief", "Maersk"),
    ("Dubai's Union Coop slumps as much as 18% below a key level", "Union Coop"),
    ("O-I Glass shares +8% after Paddock emerges from Chapter 11 protection", "Paddock"),
    ("Fund raises its stake in Akoustis after the offering", "Akoustis"),
    ("Pork prices should rise in the short term, according to Sanford C. Bernstein strategists", "Sanford C. Bernstein"),
])
def test_a_companys_context_names_it(finder, text, surface):
    assert surface in [found for found, _ in _names(finder, text)]


@pytest.mark.parametrize("text", [
    "Stocks Rally As Energy Shares Jump In Late Trading",  # a headline's capitals are words
    "Nasdaq up 2% as tech rallies",  # a market
    "Bitcoin -3% after the weekend",
    "Yellen says inflation will ease",  # a person
    "The European Central Bank raised rates again",  # a public body
    "AAR wins contract from Defense Logistics Agency",
    "Coty Acquires $600M Majority Stake In Kylie Jenner's Cosmetics Company",  # the owner of a name
    "FinTech funding slows in the second quarter",  # a sector, not a coined name
    "Advisers see more Mergers & Acquisitions this year",
    "SHARES SURGE AT ACME HOLDINGS AS DEAL NEARS",  # a shout: no capital is evidence
    "Q4 2019 Investment Style Ratings For ETFs And Mutual Funds",
])
def test_capitals_without_a_companys_evidence_name_nothing(finder, text):
    assert _names(finder, text) == []


def test_coined_names_and_partnerships(finder):
    assert [s for s, _ in _names(finder, "Snap CEO talks TikTok and politics")] == ["TikTok"]
    assert [s for s, _ in _names(finder, "The law firm Kirkland &amp; Ellis will lead the case")] == ["Kirkland &amp; Ellis"]


def test_links_handles_and_hashtags_are_no_names(finder):
    assert _names(finder, "Read https://t.co/LKXMOP3zNK Inc. and follow @SomeBank #GreatHoldings") == []


def test_slug_joins_a_names_spellings():
    assert slug("Kahn Swick &amp; Foti") == slug("Kahn Swick & Foti") == "kahn-swick-foti"
    assert slug("Société Générale") == "societe-generale"


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor(Catalogue.load())


def _mentions(extractor: EntityExtractor, text: str) -> list[tuple[str, str]]:
    return [(text[m.start:m.end], m.entity_id) for m in extractor.extract(text)]


def test_the_catalogue_wins_where_it_names_the_same_company(extractor):
    [(surface, entity_id)] = _mentions(extractor, "Deutsche Bank Securities cut its target")
    assert surface == "Deutsche Bank" and entity_id in extractor.catalogue.entities
    assert _mentions(extractor, "Shareholders of Wynn Resorts approve the plan")[0][1] == "WYNN"


def test_an_unlisted_name_that_starts_with_another_companys_word_is_its_own(extractor):
    found = _mentions(extractor, "Alliant Insurance Services buys a broker in Ohio")
    assert found == [("Alliant Insurance Services", "org:alliant-insurance-services")]


def test_unlisted_names_can_be_switched_off():
    plain = EntityExtractor(Catalogue.load(), unlisted_names=False)
    assert plain.extract("Iowa First Bancshares reports Q4 results") == []


@pytest.mark.parametrize(("text", "surface"), [
    ("Finnish elevator maker Kone cuts 2022 outlook after weak China sales", "Kone"),
    ("Auto parts supplier Prevent sues Volkswagen for damages", "Prevent"),  # one common word: the noun says so
    ("My mortgage servicer Ocwen has been trying to foreclose", "Ocwen"),
])
def test_a_trades_noun_introduces_a_name(finder, text, surface):
    assert [found for found, _ in _names(finder, text)] == [surface]


@pytest.mark.parametrize("text", [
    "Bank of England policy maker Michael Saunders dismisses calls for cuts",  # a policy maker is a person
    "The firm Monday said it would appeal",
    "Axios media producer Sara Fischer on the lawsuit",
])
def test_a_persons_title_or_a_day_after_a_trades_noun_is_no_name(finder, text):
    assert _names(finder, text) == []


@pytest.mark.parametrize(("text", "surface"), [
    ("Jetcraft Strengthens US Footprint With Americas Sales Executive Appointments", "Jetcraft"),
    ("$SABR - Avianca signs multiyear distribution agreement with Sabre", "Avianca"),
])
def test_an_obscure_word_doing_what_companies_do_opens_a_headline(finder, text, surface):
    assert surface in [found for found, _ in _names(finder, text)]


@pytest.mark.parametrize("text", [
    "Kotecki says rates will rise next year",  # people speak; companies announce
    "Countercyclical sectors trade ahead of the open",  # no company's verb follows
    "Reuters Announces a new editor",  # a well-known word is not obscure: the catalogue names what it should
])
def test_a_headlines_first_word_without_a_companys_verb_is_no_name(finder, text):
    assert [found for found, _ in _names(finder, text)] == []


@pytest.mark.parametrize("text", [
    "I called XXXX XXXX Bank about my card and XX/XX/XXXX they said no",
    "My account at XXXX Financial was closed",
    "I paid {$200.00} to XXXX Capital LLC",
])
def test_a_complaints_redactions_name_no_company(finder, text):
    """The CFPB redacts names as XXXX: what is left of a name is no company's."""
    assert _names(finder, text) == []


@pytest.mark.parametrize("text", [
    "I filed with the Consumer Financial Protection Bureau last week",
    "The bank is insured by the Federal Deposit Insurance Corporation",
    "They broke the FCRA & FDCPA rules",
    "Sent letter to company Company signed for certified letter",
])
def test_regulators_laws_and_a_complaints_capitals_name_no_company(finder, text):
    assert _names(finder, text) == []


def test_a_sentences_first_english_word_before_company_words_is_no_name(finder):
    assert _names(finder, "Diluted earnings per share rose to EUR 1.05 from EUR 0.64.") == []
    assert [s for s, _ in _names(finder, "Intelsat's stock bounces 6.6% premarket")] == ["Intelsat"]


def test_and_after_a_trades_noun_joins_two_names(finder):
    text = "The largest Nordic bank Nordea and Finnish retail chain Stockmann launched a card"
    assert [s for s, _ in _names(finder, text)][:1] == ["Nordea"]


def test_a_symbol_no_catalogue_knows_takes_the_name_that_spells_it(extractor):
    mentions = extractor.extract("$IOFB - Iowa First Bancshares reports Q4 results")
    named = [m for m in mentions if m.start > 0]
    assert [(m.entity_id, m.name) for m in named] == [("IOFB", "Iowa First Bancshares")]
