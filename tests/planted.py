"""Planted news about one company, made from real texts: a real tweet that names exactly one company,
with that company's names and cashtags swapped for the target's. The sentences, their tone and their
labels stay real; only who they are about changes. Used by the explained-alert scenario and by the
demo sample's builder (``data/sample/build.py``), which marks such messages as planted.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from riskpulse.streams.enrich.entities import Catalogue, EntityExtractor

_SPACES = re.compile(r"\s+")
_TICKER = re.compile(r"\$?[A-Z][A-Z0-9.]{0,5}")


@lru_cache(maxsize=1)
def shipped_extractor() -> EntityExtractor:
    """The extractor over the shipped catalogue and watchlist."""
    return EntityExtractor(Catalogue.load())


@dataclass(frozen=True)
class Target:
    """The company the planted texts are about: its watchlist id, how it is written, its cashtag."""

    entity_id: str
    name: str
    ticker: str


def retarget(text: str, extractor: EntityExtractor, target: Target) -> str | None:
    """``text`` about ``target`` instead of the one company it names; None unless it names exactly one
    (not the target) and the result names only the target."""
    mentions = extractor.extract(text)
    if len({m.entity_id for m in mentions}) != 1 or mentions[0].entity_id == target.entity_id:
        return None
    if all(_TICKER.fullmatch(text[m.start:m.end]) for m in mentions):
        return None  # "$XYZ - Other Co cut to Hold": a feed line about someone else, cashtag first
    out = text
    for m in sorted(mentions, key=lambda m: m.start, reverse=True):
        written = text[m.start:m.end]
        swap = f"${target.ticker}" if written.startswith("$") else target.ticker if _TICKER.fullmatch(written) else target.name
        out = out[:m.start] + swap + out[m.end:]
    named = {m.entity_id for m in extractor.extract(out)}
    return out if named == {target.entity_id} else None


def retargeted(texts: Iterable[str], extractor: EntityExtractor, target: Target, n: int,
               rng: random.Random, avoid: Sequence[str] = ()) -> list[str]:
    """``n`` distinct texts retargeted at ``target`` (shuffled first; fails loudly if there are not enough)."""
    pool = list(dict.fromkeys(_SPACES.sub(" ", t).strip() for t in texts))
    rng.shuffle(pool)
    seen = {t.lower() for t in avoid}
    out: list[str] = []
    for text in pool:
        swapped = retarget(text, extractor, target)
        if swapped and swapped.lower() not in seen:
            seen.add(swapped.lower())
            out.append(swapped)
            if len(out) == n:
                return out
    raise AssertionError(f"only {len(out)} of {n} texts could be retargeted at {target.name}")
