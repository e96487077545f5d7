"""The one precision rule, end to end: a tiny training run and the engine serving its model pick the same precision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskpulse.models.serving import precision as precision_rule


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_training_and_serving_follow_the_same_rule(monkeypatch, data_root: Path, tmp_path: Path,
                                                   native: bool, expected: str) -> None:
    """On a CPU with (or without) native bf16, a training run and the engine serving its model both pick it."""
    from riskpulse.models.serving.inference import Engine
    from riskpulse.models.serving.registry import Registry
    from riskpulse.models.training.trainer import TrainArgs, train
    from riskpulse.core.settings import Settings

    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: native)
    settings = Settings(home=tmp_path / "home", device="cpu")
    version = train(settings, TrainArgs(epochs=1, threads=1), promote=True, data_root=data_root)
    training = json.loads((Registry(settings.registry_root).path(version) / "training.json").read_text())
    assert training["precision"] == expected and training["cpu"] == precision_rule.cpu_model()
    assert Engine.load(settings).precision.name == expected
