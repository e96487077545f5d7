"""What a challenger trains on and how it is judged, for :mod:`riskpulse.models.retraining.retrainer`.

The training rows are the base data with analyst labels merged in (rules in
:mod:`riskpulse.models.retraining.policy`); the evaluation set is fixed: the validation splits (the same rows
every run) plus the held-back analyst labels. Champion and challenger are scored on exactly the
same texts; macro-F1 averages over the classes present in the gold labels, as in
:mod:`riskpulse.models.training.evaluation`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from riskpulse.core.settings import Settings
from riskpulse.models.retraining.policy import ResolvedLabel, keep_base
from riskpulse.streams.store.labels import TASKS

log = logging.getLogger("riskpulse.retraining")
ANALYST_SOURCE = "analyst-labels"
NAN = float("nan")


@dataclass(frozen=True)
class EvalFigures:
    f1: dict[str, float]
    heldout_acc: float
    heldout_by_task: dict[str, float]
    gold: dict[str, list[str]]  # per task, the evaluation labels in a fixed order (the same for every model)
    predicted: dict[str, list[str]]  # per task, this model's labels for those rows: the paired noise needs them


def evaluate_on(engine, eval_rows: dict[str, list], held: Sequence[ResolvedLabel]) -> EvalFigures:
    """Macro-F1 per task over validation rows plus held-back labels, and accuracy on the held-back labels."""
    from sklearn.metrics import f1_score

    texts = sorted({ex.text for rows in eval_rows.values() for ex in rows} | {r.text for r in held})
    predicted = {}
    for start in range(0, len(texts), 512):
        chunk = texts[start : start + 512]
        predicted.update(zip(chunk, engine.classify(chunk)))
    f1, golds, predictions = {}, {}, {}
    for task in TASKS:
        gold = [(ex.text, ex.label) for ex in eval_rows.get(task, [])] + [(r.text, r.label) for r in held if r.task == task]
        if gold:
            y_true = [g for _, g in gold]
            y_pred = [getattr(predicted[t], task) for t, _ in gold]
            f1[task] = float(f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0))
            golds[task], predictions[task] = y_true, y_pred
    by_task = {}
    for task in TASKS:
        mine = [r for r in held if r.task == task]
        if mine:
            by_task[task] = sum(getattr(predicted[r.text], task) == r.label for r in mine) / len(mine)
    hits = sum(getattr(predicted[r.text], r.task) == r.label for r in held)
    return EvalFigures(f1, hits / len(held) if held else NAN, by_task, golds, predictions)


def evaluation_rows(settings: Settings) -> dict[str, list]:
    """The fixed validation part of the evaluation set, per task (same rows every run)."""
    from riskpulse.models.training.data import subsample, training_data
    from riskpulse.models.training.trainer import TrainArgs

    args = TrainArgs()
    data = training_data(settings.shared_data, args.holdout, args.holdout_seed)
    per_task: dict[str, list] = defaultdict(list)
    for name, rows in sorted(data.validation.items()):
        if settings.retrain_eval_rows:
            rows = subsample(rows, settings.retrain_eval_rows, args.seed)
        if rows:
            per_task[rows[0].task].extend(rows)
    return dict(per_task)


def rows_hook(
    train: Sequence[ResolvedLabel], held: Sequence[ResolvedLabel], repeat: int, replay: int = 0
) -> Callable:
    """The training-rows transform: at most `replay` base rows per dataset (0 = all), analyst
    labels overriding base rows of the same text, held-back texts removed."""
    from riskpulse.models.training.data import Example, subsample

    def prepare(rows: list) -> list:
        if replay:
            rows = subsample(rows, replay, seed=13)
        kept = keep_base(rows, train, held)
        extra = [Example(r.text, r.label, r.task, ANALYST_SOURCE) for r in train for _ in range(repeat)]
        log.info("training rows: %d base kept of %d, %d analyst labels x%d", len(kept), len(rows), len(train), repeat)
        return kept + extra

    return prepare


class RowCounter:
    """Wraps the rows hook to remember how many rows the challenger trained on."""

    def __init__(self, hook: Callable[[list], list]) -> None:
        self.hook, self.rows = hook, 0

    def __call__(self, rows: list) -> list:
        out = self.hook(rows)
        self.rows = len(out)
        return out


def load_engine(settings: Settings, version: str):
    from riskpulse.models.serving.inference import Engine

    return Engine.load(settings, version)


def train_challenger(settings: Settings, champion_dir: Path, prepare_rows: Callable[[list], list]) -> str:
    """Fine-tune from the champion's weights on the merged rows; registered, not promoted."""
    from riskpulse.models.training.trainer import TrainArgs, train

    replay = settings.retrain_replay_rows  # rows are cut in the hook; quick mode only shrinks validation
    args = TrainArgs(  # the heads are trained already: they move at the encoder's rate, not a fresh head's
        init_from=str(champion_dir), epochs=settings.retrain_epochs, lr=settings.retrain_lr,
        quick_lr=settings.retrain_lr, head_lr=settings.retrain_lr, tag="retrain",
        threads=settings.retrain_threads, quick=replay > 0, quick_fraction=1.0, quick_eval_rows=max(50, replay // 4),
    )
    return train(settings, args, promote=False, prepare_rows=prepare_rows)
