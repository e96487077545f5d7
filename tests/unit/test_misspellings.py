"""Watched names as customers mistype them, and the near misses that are other words."""

from __future__ import annotations

import pytest

from riskpulse.streams.enrich.entities import Catalogue, EntityExtractor
from riskpulse.streams.enrich.misspellings import MisspeltNames, one_edit_apart


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor(Catalogue.load())


def found(extractor: EntityExtractor, text: str) -> list[tuple[str, str]]:
    return [(m.entity_id, text[m.start:m.end]) for m in extractor.extract(text)]


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("capitol", "capital", True), ("fargos", "fargo", True), ("well", "wells", True), ("captial", "capital", True),
    ("sach", "sachs", True), ("fargo", "fargo", False), ("trust", "truist", True), ("capitals", "capitol", False),
    ("cart", "card", True), ("amercia", "america", True), ("ab", "ba", True), ("abc", "cab", False),
])
def test_one_edit_apart(a: str, b: str, expected: bool) -> None:
    assert one_edit_apart(a, b) is expected and one_edit_apart(b, a) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Disputing a Hard Inquiry from Capitol One on my report", [("COF", "Capitol One")]),
    ("I contacted Well Fargo and the Wells Fargos app", [("WFC", "Well Fargo"), ("WFC", "Wells Fargos")]),
    ("captial one closed my account", [("COF", "captial one")]),
    ("the name America express on my statement", [("AXP", "America express")]),
    ("Goldman Sach and Morgan Stanly said", [("GS", "Goldman Sach"), ("MS", "Morgan Stanly")]),
])
def test_a_watched_name_with_one_word_mistyped_is_found(extractor, text, expected):
    assert found(extractor, text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("the return on capital on equity", []),                             # "On" is too short to be a typo of "One"
    ("upset the apple cart", []),                                        # products ("Apple Card") are not tried
    ("we called Wells Fargo back today", [("WFC", "Wells Fargo")]),      # not "Wells Fargo Bank" mistyped
])
def test_near_misses_that_are_other_words_name_nothing_new(extractor, text, expected):
    assert found(extractor, text) == expected


def test_only_names_with_a_distinctive_exact_word_are_tried():
    names = MisspeltNames([("TFC", "Truist Bank"), ("COF", "Capital One")], frozenset({"bank", "capital"}))
    assert names.find("my Trust Bank account") == []  # its exact word, "Bank", is generic
    assert names.find("Truist Bnk") == []             # the mistyped word ends the name and is generic
    assert names.find("Capitol One") == [(0, 11, "COF")]
    assert not MisspeltNames([("X", "Short Co")], frozenset())  # names under 9 characters are not tried


def test_a_possessive_is_no_typo(extractor):
    assert found(extractor, "Goldman Sachs' profit fell") == [("GS", "Goldman Sachs")]
