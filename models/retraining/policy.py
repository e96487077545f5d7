"""What a retraining run learns from, and when its challenger may replace the champion.

Pure rules, no I/O, so they read in one place and test in milliseconds:

* **Analyst labels win.** An analyst label replaces the original training label of the
  same text for the same task (texts compared after collapsing whitespace and case).
* **Conflicts: majority of analysts, then the latest.** For one message and task, each
  analyst's most recent label is one vote (changing your mind is not voting twice); the
  label with most votes wins and a tie goes to the label given most recently.
* **Held back, never trained on.** A stable hash of the message id puts a fixed share of
  labeled messages into the evaluation set, the same messages in every run. Texts of
  held-back messages are removed from the training data whatever their source, so a
  duplicate under another id cannot leak them.
* **Promotion.** The challenger replaces the champion only if it is not worse on either
  task's macro-F1 by more than the tolerance and strictly better on at least one. On a small
  evaluation set one changed prediction moves macro-F1 by more than a fixed tolerance, so the
  tolerance per task is at least ``noise_z`` times the paired bootstrap standard error of the
  difference (:func:`paired_f1_noise`): a drop counts as worse when it is beyond that noise.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

import numpy as np

from riskpulse.streams.store.labels import TASKS, AnalystLabel


@dataclass(frozen=True)
class ResolvedLabel:
    """The label a message carries for a task once analysts' votes are counted."""

    message_id: str
    task: str
    label: str
    text: str
    votes: int
    voters: int
    labeled_at: datetime

    @property
    def contested(self) -> bool:
        return self.votes < self.voters


def normalize_text(text: str) -> str:
    """The form in which two texts count as the same message."""
    return " ".join(text.split()).casefold()


def resolve(labels: Iterable[AnalystLabel]) -> list[ResolvedLabel]:
    """One label per (message, task): majority of analysts' latest labels, ties to the latest."""
    latest: dict[tuple[str, str], dict[str, AnalystLabel]] = defaultdict(dict)
    for row in labels:
        mine = latest[(row.message_id, row.task)]
        seen = mine.get(row.labeled_by)
        if seen is None or (row.labeled_at, row.label) > (seen.labeled_at, seen.label):
            mine[row.labeled_by] = row
    resolved = []
    for (message_id, task), by_analyst in sorted(latest.items()):
        rows = list(by_analyst.values())
        votes = Counter(r.label for r in rows)
        last_at = {label: max(r.labeled_at for r in rows if r.label == label) for label in votes}
        winner = max(votes, key=lambda label: (votes[label], last_at[label], label))
        text = max((r for r in rows if r.label == winner), key=lambda r: r.labeled_at).text
        resolved.append(
            ResolvedLabel(message_id, task, winner, text, votes[winner], len(rows), last_at[winner])
        )
    return resolved


def is_held_back(message_id: str, share: float) -> bool:
    """Whether a labeled message belongs to the evaluation slice; stable across runs and hosts."""
    digest = hashlib.sha256(message_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def split_held_back(
    resolved: Sequence[ResolvedLabel], share: float
) -> tuple[list[ResolvedLabel], list[ResolvedLabel]]:
    """(train, held_back); a train label whose text is also held back is dropped, not trained."""
    held = [r for r in resolved if is_held_back(r.message_id, share)]
    held_texts = {normalize_text(r.text) for r in held}
    train = [
        r for r in resolved if not is_held_back(r.message_id, share) and normalize_text(r.text) not in held_texts
    ]
    return train, held


class TaskRow(Protocol):
    text: str
    task: str


R = TypeVar("R", bound=TaskRow)


def keep_base(base: Sequence[R], train: Sequence[ResolvedLabel], held_back: Sequence[ResolvedLabel] = ()) -> list[R]:
    """The base rows that stay: not overridden by an analyst label for their task, not a held-back text."""
    labeled = {(r.task, normalize_text(r.text)) for r in train}
    held_texts = {normalize_text(r.text) for r in held_back}
    return [
        row for row in base
        if (row.task, normalize_text(row.text)) not in labeled and normalize_text(row.text) not in held_texts
    ]


def drop_unknown(
    resolved: Sequence[ResolvedLabel], known: Mapping[str, Sequence[str]]
) -> tuple[list[ResolvedLabel], list[ResolvedLabel]]:
    """(usable, unknown): labels for a task or class the model does not have cannot be trained."""
    usable, unknown = [], []
    for r in resolved:
        (usable if r.label in known.get(r.task, ()) else unknown).append(r)
    return usable, unknown


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def macro_f1(gold: np.ndarray, predicted: np.ndarray, n_labels: int) -> float:
    """Macro-F1 over the classes present in `gold` (label indices), 0 for a class never predicted right:
    sklearn's ``f1_score(average="macro", labels=sorted(set(gold)), zero_division=0)``, in three bincounts."""
    gold_n = np.bincount(gold, minlength=n_labels)
    denominator = gold_n + np.bincount(predicted, minlength=n_labels)
    f1 = 2 * np.bincount(gold[gold == predicted], minlength=n_labels) / np.maximum(denominator, 1)
    return float(f1[gold_n > 0].mean())


def paired_f1_noise(gold: Sequence[str], champion: Sequence[str], challenger: Sequence[str],
                    draws: int = 200, seed: int = 0) -> float:
    """Standard deviation of macro-F1(challenger) − macro-F1(champion) over bootstrap resamples of the
    evaluation rows: how much the difference moves with which rows happen to be in the set. Both are
    scored on the same resampled rows, so the rows they agree on cancel out (0 for identical predictions)."""
    if not gold:
        return 0.0
    labels = {label: i for i, label in enumerate(sorted(set(gold) | set(champion) | set(challenger)))}
    g, a, b = (np.array([labels[x] for x in xs]) for xs in (gold, champion, challenger))
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(draws):
        rows = rng.integers(0, len(g), len(g))
        deltas.append(macro_f1(g[rows], b[rows], len(labels)) - macro_f1(g[rows], a[rows], len(labels)))
    return float(np.std(deltas))


def decide(champion: Mapping[str, float], challenger: Mapping[str, float], tolerance: float,
           noise: Mapping[str, float] | None = None, noise_z: float = 1.0) -> Decision:
    """The promotion rule, on each task's macro-F1 over the same evaluation set. With `noise` (each task's
    :func:`paired_f1_noise`) a drop is worse only beyond ``max(tolerance, noise_z * noise)``."""
    missing = [t for t in TASKS if t not in champion or t not in challenger]
    if missing:
        return Decision(False, f"no macro-F1 for {', '.join(missing)}: cannot compare, champion stays")
    deltas = {t: challenger[t] - champion[t] for t in TASKS}
    allowed = {t: max(tolerance, noise_z * (noise or {}).get(t, 0.0)) for t in TASKS}
    shown = ", ".join(f"{t} {champion[t]:.4f}->{challenger[t]:.4f} ({deltas[t]:+.4f}, allowed -{allowed[t]:.4f})"
                      for t in TASKS)
    worse = [t for t in TASKS if deltas[t] < -allowed[t]]
    if worse:
        return Decision(False, f"challenger worse on {', '.join(worse)} by more than the tolerance "
                               f"({tolerance}, or {noise_z:g} x the evaluation set's noise where larger): {shown}")
    if not any(deltas[t] > 0 for t in TASKS):
        return Decision(False, f"challenger better on neither task: {shown}")
    return Decision(True, f"challenger better on {', '.join(t for t in TASKS if deltas[t] > 0)}: {shown}")
