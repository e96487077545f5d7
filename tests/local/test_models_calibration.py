"""The engine serves calibrated probabilities: softmax(logits / T) per head, labels unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from riskpulse.core.settings import Settings
from riskpulse.models.serving.calibration import CALIBRATION_FILE, Temperatures
from riskpulse.models.serving.inference import Engine
from riskpulse.models.serving.registry import Registry
from riskpulse.models.training.calibration import softmax

TEXTS = ["$TSLA crashes 12% on recall", "Shares rally to record high", "Fed holds rates steady",
         "my card was charged twice", "Company to hold annual meeting on May 3"]


def test_probabilities_are_the_tempered_softmax_and_labels_do_not_move(engine: Engine) -> None:
    labels = {"topic": engine.topics, "sentiment": engine.sentiments}
    tempered = Engine(engine.model, engine.tokenizer, labels, engine.version, engine.device, engine.max_length,
                      precision=engine.precision, temperatures=Temperatures(topic=0.5, sentiment=3.0))
    raw = Engine(engine.model, engine.tokenizer, labels, engine.version, engine.device, engine.max_length,
                 precision=engine.precision, temperatures=Temperatures())
    topic_logits, sentiment_logits = raw.logits(TEXTS)
    for i, (a, b) in enumerate(zip(tempered.classify(TEXTS), raw.classify(TEXTS))):
        assert (a.topic, a.sentiment) == (b.topic, b.sentiment)
        assert b.sentiment_prob == pytest.approx(softmax(sentiment_logits[i:i + 1]).max(), abs=1e-5)
        assert a.sentiment_prob == pytest.approx(softmax(sentiment_logits[i:i + 1], 3.0).max(), abs=1e-5)
        assert a.topic_prob == pytest.approx(softmax(topic_logits[i:i + 1], 0.5).max(), abs=1e-5)
        assert a.sentiment_prob < b.sentiment_prob and a.topic_prob > b.topic_prob


def test_logits_come_back_in_input_order_whatever_the_batching(engine: Engine) -> None:
    labels = {"topic": engine.topics, "sentiment": engine.sentiments}
    small = Engine(engine.model, engine.tokenizer, labels, engine.version, engine.device, engine.max_length,
                   batch_size=2, precision=engine.precision)
    one_by_one = [np.concatenate(engine.logits([t]), axis=1)[0] for t in TEXTS]
    assert np.allclose(np.concatenate(small.logits(TEXTS), axis=1), np.stack(one_by_one), atol=1e-4)
    topic, sentiment = engine.logits([])
    assert topic.shape == (0, len(engine.topics)) and sentiment.shape == (0, len(engine.sentiments))


def test_a_version_without_calibration_serves_the_raw_softmax(quick_registry: Path, tmp_path: Path) -> None:
    """Versions trained before calibration existed load with temperature 1; a saved file is applied."""
    source = Registry(quick_registry)
    registry = Registry(tmp_path)
    version = source.current()
    shutil.copytree(source.path(version), tmp_path / "versions" / version)
    (tmp_path / "versions" / version / CALIBRATION_FILE).unlink(missing_ok=True)
    registry.promote(version)
    settings = Settings(registry_dir=tmp_path, device="cpu", precision="fp32")
    assert Engine.load(settings).temperatures == Temperatures(1.0, 1.0)
    Temperatures(topic=1.2, sentiment=1.9).save(registry.path(version))
    assert Engine.load(settings).temperatures == Temperatures(topic=1.2, sentiment=1.9)


def test_models_calibrate_fits_an_old_version_in_place(quick_registry: Path, data_root: Path, tmp_path: Path, monkeypatch) -> None:
    import json

    import typer
    from typer.testing import CliRunner

    from riskpulse.core.settings import get_settings
    from riskpulse.models.cli import register

    source = Registry(quick_registry)
    version = source.current()
    shutil.copytree(source.path(version), tmp_path / "versions" / version)
    (tmp_path / "versions" / version / CALIBRATION_FILE).unlink(missing_ok=True)
    Registry(tmp_path).promote(version)
    monkeypatch.setenv("RISKPULSE_REGISTRY_DIR", str(tmp_path))
    monkeypatch.setenv("RISKPULSE_DEVICE", "cpu")
    get_settings.cache_clear()
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    result = CliRunner().invoke(app, ["models", "calibrate", "--data", str(data_root)])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "sentiment: T=" in result.output and "topic: T=" in result.output
    saved = json.loads((tmp_path / "versions" / version / CALIBRATION_FILE).read_text())
    assert saved["fitted_on"]["sentiment"]["n"] == 1  # data_root's one validation tweet
    served = Engine.load(Settings(registry_dir=tmp_path, device="cpu")).temperatures
    assert served == Temperatures(topic=saved["topic"], sentiment=saved["sentiment"])
