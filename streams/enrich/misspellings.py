"""Watched names as customers mistype them: "Capitol One", "Well Fargo", "Wells Fargos", "Goldman Sach".

A risk team's watchlist names the institutions whose every mention counts, and customer messages
misspell them (the shared complaints hold all three of the first examples). A name of two or more
words matches with one of its words one edit away (a letter added, dropped or changed, or two
neighbours swapped) when its other words are exact and one of those is no generic name word, and the mistyped word is no generic word
ending the name: "Trust Bank" is no typo of "Truist Bank", nor "capital on" of "Capital One", nor
"Wells Fargo back" of "Wells Fargo Bank". Only the watched entities'
names are tried: the reference list's thousands would turn ordinary phrases into companies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import ahocorasick

WORD = re.compile(r"[A-Za-z](?:[A-Za-z&-]|['’](?=[A-Za-z]))*")  # "Sachs'" is "Sachs": a possessive, no typo
NAME_SHAPE = re.compile(r"^[a-z][a-z'’&-]*(?: [a-z][a-z'’&-]*)+$")  # plain words only: not "J.P. Morgan", "U.S. Bank"
MIN_NAME_LENGTH = 9  # "Citi Bank" and longer: a typo of a short name is too often another word
MIN_TYPO_WORD = 4  # the mistyped word: "Fargp" of "Fargo", never "On" of "One"


class MisspeltNames:
    """Finds watched multi-word names with one word mistyped; built once from (entity id, name) pairs."""

    def __init__(self, names: Iterable[tuple[str, str]], generic_words: frozenset[str]) -> None:
        self._by_word: dict[str, list[tuple[tuple[str, ...], int, str]]] = {}
        self._generic = generic_words
        for entity_id, name in names:
            lowered = name.lower()
            if len(lowered) < MIN_NAME_LENGTH or not NAME_SHAPE.match(lowered):
                continue
            words = tuple(lowered.split(" "))
            for position, word in enumerate(words):
                if word not in generic_words:  # an exact, distinctive word is what sets off the check
                    self._by_word.setdefault(word, []).append((words, position, entity_id))
        self._longest = max((len(" ".join(w)) for entries in self._by_word.values() for w, _, _ in entries), default=0)
        self._triggers = ahocorasick.Automaton(ahocorasick.STORE_ANY)
        for word in self._by_word:
            self._triggers.add_word(word, word)
        if self._by_word:
            self._triggers.make_automaton()

    def __bool__(self) -> bool:
        return bool(self._by_word)

    def find(self, text: str, lowered: str | None = None) -> list[tuple[int, int, str]]:
        """(start, end, entity id) of each mistyped watched name in ``text`` (``lowered``: its lower case, same
        length). Only the words around a distinctive word of a watched name are read (one automaton pass)."""
        lowered = lowered if lowered is not None else text.lower()
        found = []
        for last, word in self._triggers.iter(lowered):
            start = last - len(word) + 1
            if (start and lowered[start - 1].isalnum()) or (last + 1 < len(lowered) and lowered[last + 1].isalnum()):
                continue  # inside a longer word
            low, high = max(0, start - self._longest - 1), min(len(text), last + self._longest + 2)
            while low and text[low - 1].isalnum():  # whole words only at the window's edges
                low -= 1
            while high < len(text) and text[high].isalnum():
                high += 1
            tokens = [(m.start(), m.end(), m.group().lower()) for m in WORD.finditer(text, low, high)]
            index = next((i for i, token in enumerate(tokens) if token[0] == start), None)
            if index is None or tokens[index][2] != word:
                continue
            found.extend(self._around(text, tokens, index))
        return found

    def _around(self, text: str, tokens: list[tuple[int, int, str]], index: int) -> list[tuple[int, int, str]]:
        """The watched names whose distinctive word is ``tokens[index]``, with one other word mistyped."""
        found = []
        word = tokens[index][2]
        for words, position, entity_id in self._by_word.get(word, ()):
            first = index - position
            if first < 0 or first + len(words) > len(tokens):
                continue
            span = tokens[first : first + len(words)]
            if any(text[a[1] : b[0]] != " " for a, b in zip(span, span[1:])):
                continue  # the words of one name, one space apart
            typos = [i for i, (expected, (_, _, seen)) in enumerate(zip(words, span)) if seen != expected]
            if len(typos) != 1:
                continue
            expected = words[typos[0]]
            if typos[0] == len(words) - 1 and expected in self._generic:
                continue  # a generic last word: "Wells Fargo back" is no "Wells Fargo Bank"
            if len(expected) >= MIN_TYPO_WORD and one_edit_apart(span[typos[0]][2], expected):
                found.append((span[0][0], span[-1][1], entity_id))
        return found


def one_edit_apart(a: str, b: str) -> bool:
    """``a`` and ``b`` differ by one letter added, dropped or changed, or by two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    start = 0
    while start < len(a) and a[start] == b[start]:
        start += 1
    if len(a) < len(b):  # one letter more in b
        return a[start:] == b[start + 1 :]
    return a[start + 1 :] == b[start + 1 :] or (  # changed, or swapped with the next
        start + 1 < len(a) and a[start] == b[start + 1] and a[start + 1] == b[start] and a[start + 2 :] == b[start + 2 :])
