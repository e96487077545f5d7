"""A --quick training run must measurably beat the majority-class baseline on held-out rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from riskpulse.models.training.data import LABEL_MAPS
from riskpulse.models.training.evaluation import evaluate, majority_baseline
from riskpulse.models.serving.inference import Engine
from riskpulse.models.serving.registry import Registry
from tests.fixtures.models import shared_data


def held_out(name: str, column: str, n: int) -> tuple[list[str], list[str]]:
    """The last `n` rows of an official validation split, which no training run ever sees."""
    with (shared_data() / name / "validation.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[-n:]
    return [r["text"] for r in rows], [LABEL_MAPS[name][r[column]] for r in rows]


def train_labels(name: str, column: str) -> list[str]:
    with (shared_data() / name / "train.csv").open(newline="", encoding="utf-8") as fh:
        return [LABEL_MAPS[name][r[column]] for r in csv.DictReader(fh)]


def test_quick_model_beats_majority_baseline(engine: Engine) -> None:
    for name, column, task in [
        ("twitter-financial-news-sentiment", "label", "sentiment"),
        ("twitter-financial-news-topic", "topic", "topic"),
    ]:
        texts, gold = held_out(name, column, 400)
        model = evaluate(engine, texts, gold, task)
        baseline = majority_baseline(train_labels(name, column), gold)
        assert model["macro_f1"] > baseline["macro_f1"] + 0.1, (name, model["macro_f1"], baseline["macro_f1"])
        assert model["accuracy"] > baseline["accuracy"], (name, model["accuracy"], baseline["accuracy"])


def test_quick_version_is_self_describing(quick_registry: Path) -> None:
    registry = Registry(quick_registry)
    path = registry.path(registry.current())
    for name in ("model.safetensors", "labels.json", "config.json", "training.json", "fingerprints.json", "metrics.json"):
        assert (path / name).is_file(), name
    assert list((path / "confusion").glob("*.png"))
    training = json.loads((path / "training.json").read_text())
    metrics = json.loads((path / "metrics.json").read_text())
    assert training["quick"] is True and training["seed"] == 13
    for name, baseline in metrics["majority_baseline_macro_f1"].items():
        assert metrics["validation"][name]["macro_f1"] > baseline, name


def test_single_task_run_reports_its_task_only_and_is_never_promoted(data_root: Path, tmp_path: Path) -> None:
    """Single-task models exist for the shared-vs-separate comparison; their other head is untrained."""
    from riskpulse.models.training.trainer import TrainArgs, train
    from riskpulse.core.settings import Settings

    settings = Settings(home=tmp_path / "home", device="cpu")
    version = train(settings, TrainArgs(epochs=1, threads=1, tasks=("sentiment",)), promote=True, data_root=data_root)
    registry = Registry(settings.registry_root)
    training = json.loads((registry.path(version) / "training.json").read_text())
    metrics = json.loads((registry.path(version) / "metrics.json").read_text())
    assert registry.current() is None
    assert training["train_rows_by_dataset"] == {"twitter-financial-news-sentiment": 3}
    assert set(metrics["validation"]) == {"twitter-financial-news-sentiment"}


def test_unknown_task_is_an_error(data_root: Path, tmp_path: Path) -> None:
    from riskpulse.models.training.data import DataError
    from riskpulse.models.training.trainer import TrainArgs, train
    from riskpulse.core.settings import Settings

    with pytest.raises(DataError, match="sentimnet"):
        train(Settings(home=tmp_path / "home"), TrainArgs(tasks=("sentimnet",)), data_root=data_root)
