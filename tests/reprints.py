"""Planted near-duplicates of real texts, with the truth of which story each copy belongs to.

A reprint is what syndication, retweeting and copy-pasting do to a text, one or two of: an
``RT @handle:`` prefix (cut to a tweet's length), new or extra links, a copy cut off with an
ellipsis, a light rewording (a few synonyms, a dropped word, a wire prefix or credit line), or a
complaint pasted with its own greeting and sign-off. :func:`replay` mixes such copies into real
texts at a given share, spread in event time after their original, for the story bench
(``bench/stories.py``), the unit tests of the grouping and the alert scenarios.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_URL = re.compile(r"https?://\S+")
HANDLES = ("markets", "zerohedge", "ReutersBiz", "WSJmarkets", "FinancialTimes", "business", "CNBC", "YahooFinance",
           "SeekingAlpha", "benzinga", "MarketWatch", "thestreet")
CREDITS = (" - Reuters", " | Bloomberg", " (via @CNBC)", " via @MarketWatch", " — WSJ", " #stocks", " $$")
PREFIXES = ("BREAKING: ", "UPDATE 1-", "JUST IN: ", "Report: ", "WATCH: ", "*")
SYNONYMS = {
    "says": "said", "said": "says", "rises": "climbs", "rose": "climbed", "falls": "drops", "fell": "dropped",
    "shares": "stock", "stock": "shares", "up": "higher", "down": "lower", "company": "firm", "firm": "company",
    "quarter": "Q", "percent": "%", "%": " percent", "billion": "bn", "million": "mln", "buy": "purchase",
    "sell": "sale", "big": "large", "cuts": "slashes", "raises": "lifts", "to": "2", "and": "&", "my": "the",
    "bank": "Bank", "account": "acct", "please": "pls", "money": "funds", "card": "Card", "the": "this",
}
GREETINGS = ("Hi, ", "Hello, ", "To whom it may concern: ", "Dear Sir/Madam, ", "URGENT: ", "Complaint: ")
SIGNOFFS = (" Thanks.", " Please help!", " Thank you for your time.", " Regards", " I want this fixed now.")


def _link(rng: random.Random) -> str:
    return "https://t.co/" + "".join(rng.choices(string.ascii_letters + string.digits, k=10))


def retweet(text: str, rng: random.Random) -> str:
    out = f"RT @{rng.choice(HANDLES)}: {text}"
    return out if len(out) <= 140 else out[:139].rstrip() + "…"  # the old 140-character cut


def relink(text: str, rng: random.Random) -> str:
    out = _URL.sub(lambda _: _link(rng), text)
    return out if out != text else f"{text.rstrip()} {_link(rng)}"


def truncate(text: str, rng: random.Random) -> str:
    """Keep 60–90% of the words after any RT prefix (at least 40 characters), cut mid-word as feeds do,
    with an ellipsis and a link; a text too short to keep that much is left whole."""
    prefix, body = _split_retweet(_URL.sub("", text).rstrip())
    cut = max(40, int(len(body) * rng.uniform(0.6, 0.9)))
    return prefix + body if cut >= len(body) else f"{prefix}{body[:cut]}… {_link(rng)}"


def _split_retweet(text: str) -> tuple[str, str]:
    match = re.match(r"RT @\w+: ", text)
    return (match.group(0), text[match.end():]) if match else ("", text)


def reword(text: str, rng: random.Random) -> str:
    """One or two light edits: synonyms, a dropped word, a wire prefix, a credit line."""
    words = text.split(" ")
    for _ in range(rng.randint(1, 2)):
        edit = rng.randrange(4)
        swappable = [i for i, w in enumerate(words) if w.lower() in SYNONYMS]
        if edit == 0 and swappable:
            i = rng.choice(swappable)
            words[i] = SYNONYMS[words[i].lower()]
        elif edit == 1 and len(words) > 8:
            del words[rng.randrange(1, len(words) - 1)]
        elif edit == 2:
            words[0] = rng.choice(PREFIXES) + words[0]
        else:
            words[-1] += rng.choice(CREDITS)
    return " ".join(words)


def paste(text: str, rng: random.Random) -> str:
    """A complaint copied by another customer: their own greeting and sign-off."""
    return rng.choice(GREETINGS) + text.strip() + rng.choice(SIGNOFFS)


KINDS: dict[str, Callable[[str, random.Random], str]] = {
    "retweet": retweet, "relink": relink, "truncate": truncate, "reword": reword, "paste": paste,
}


def reprint(text: str, rng: random.Random, news: bool = True) -> tuple[str, str]:
    """One or two of the edits (news gets no pasted greeting, complaints no RT); returns (text, kinds)."""
    pool = ["retweet", "relink", "truncate", "reword"] if news else ["paste", "reword", "truncate", "relink"]
    kinds = rng.sample(pool, rng.choice((1, 1, 2)))
    for kind in kinds:
        text = KINDS[kind](text, rng)
    return text, "+".join(kinds)


@dataclass(frozen=True)
class Planted:
    """One message of a replay: ``story`` is the id of the original it copies (its own id if original)."""

    id: str
    ts: float
    text: str
    source: str
    story: str
    kind: str = "original"


def replay(originals: Sequence[tuple[str, str, str]], copy_share: float = 0.4, seed: int = 7, rate: float = 10.0,
           start: float = 1_700_000_000.0, mean_delay_s: float = 900.0) -> list[Planted]:
    """Originals (id, source, text) at ``rate`` a second, plus copies making up ``copy_share`` of the result.

    Copies follow their original by an exponential delay (mean ``mean_delay_s``). Syndication is
    skewed: a few stories are copied dozens of times, most once or twice; a quarter of originals get any.
    """
    rng = random.Random(seed)
    messages = [Planted(mid, start + i / rate, text, source, mid) for i, (mid, source, text) in enumerate(originals)]
    wanted = round(len(messages) * copy_share / (1 - copy_share))
    copied = rng.sample(messages, max(1, len(messages) // 4)) if messages and wanted else []
    weights = [min(rng.paretovariate(1.2), 30.0) for _ in copied]  # capped: the largest gets ~60 copies per 10k
    for n in range(wanted):
        original = rng.choices(copied, weights)[0]
        text, kind = reprint(original.text, rng, news=original.source == "news")
        ts = original.ts + rng.expovariate(1 / mean_delay_s)
        messages.append(Planted(f"{original.id}~{n}", ts, text, original.source, original.id, kind))
    messages.sort(key=lambda m: (m.ts, m.id))
    return messages


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise(truth: Sequence[str], predicted: Sequence[str]) -> tuple[float, float]:
    """Precision and recall over pairs of messages: a pair is positive when both are in one story."""
    both: dict[tuple[str, str], int] = {}
    for t, p in zip(truth, predicted, strict=True):
        both[(t, p)] = both.get((t, p), 0) + 1
    true_pairs = sum(_pairs(n) for n in _sizes(truth).values())
    predicted_pairs = sum(_pairs(n) for n in _sizes(predicted).values())
    agreed = sum(_pairs(n) for n in both.values())
    return (agreed / predicted_pairs if predicted_pairs else 1.0), (agreed / true_pairs if true_pairs else 1.0)


def bcubed(truth: Sequence[str], predicted: Sequence[str]) -> tuple[float, float]:
    """B-cubed precision and recall: per message, the share of its predicted (true) story that is right."""
    both: dict[tuple[str, str], int] = {}
    for t, p in zip(truth, predicted, strict=True):
        both[(t, p)] = both.get((t, p), 0) + 1
    true_sizes, predicted_sizes = _sizes(truth), _sizes(predicted)
    precision = sum(n * n / predicted_sizes[p] for (_t, p), n in both.items()) / len(truth)
    recall = sum(n * n / true_sizes[t] for (t, _p), n in both.items()) / len(truth)
    return precision, recall


def _sizes(labels: Sequence[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for label in labels:
        sizes[label] = sizes.get(label, 0) + 1
    return sizes
