"""Temperature scaling and ECE on synthetic logits whose true temperature is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from riskpulse.models.serving.calibration import CALIBRATION_FILE, Temperatures
from riskpulse.models.training.calibration import (
    calibrate, calibrate_heads, expected_calibration_error, fit_temperature, logits_ece, softmax,
)
from riskpulse.models.training.data import SENTIMENT_LABELS, TOPIC_LABELS, Example


def overconfident(n: int, true_temperature: float, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits / true_temperature): the raw softmax is overconfident when T > 1."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, classes))
    probs = softmax(logits, true_temperature)
    labels = (rng.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1)
    return logits, labels


def test_fit_recovers_the_temperature_labels_were_drawn_with() -> None:
    logits, labels = overconfident(6000, 2.5)
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.08)
    logits, labels = overconfident(6000, 1.0, seed=1)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, rel=0.08)


def test_calibration_lowers_ece_and_nll_and_keeps_every_prediction() -> None:
    logits, labels = overconfident(4000, 2.0)
    result = calibrate(logits, labels)
    assert result["ece_before"] > 0.1
    assert result["ece_after"] < 0.03 and result["ece_after_heldout"] < 0.04
    assert result["nll_after"] < result["nll_before"]
    assert (softmax(logits, result["temperature"]).argmax(1) == logits.argmax(1)).all()


def test_ece_by_hand() -> None:
    assert expected_calibration_error([0.8] * 4, [True, True, False, False]) == pytest.approx(0.3)
    # two bins, half the rows each: |1.0 - 0.95| and |0.0 - 0.55|
    assert expected_calibration_error([0.95, 0.95, 0.55, 0.55], [True, True, False, False]) == pytest.approx(0.3)
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0  # 1.0 falls in the top bin, not past it
    assert expected_calibration_error([], []) == 0.0


def test_temperatures_round_trip_and_default_to_one(tmp_path: Path) -> None:
    assert Temperatures.load(tmp_path) == Temperatures(1.0, 1.0)  # a version from before calibration
    Temperatures(topic=1.3, sentiment=1.7).save(tmp_path, fitted_on={"sentiment": {"n": 5}})
    assert (tmp_path / CALIBRATION_FILE).is_file()
    assert Temperatures.load(tmp_path) == Temperatures(topic=1.3, sentiment=1.7)
    with pytest.raises(ValueError, match="positive"):
        Temperatures(topic=0.0)


def test_heads_fit_on_their_own_sets_and_a_head_without_rows_keeps_one() -> None:
    logits, labels = overconfident(3000, 2.0)
    rows = [Example(f"t{i}", SENTIMENT_LABELS[y], "sentiment", "twitter-financial-news-sentiment") for i, y in enumerate(labels)]
    validation = {"twitter-financial-news-sentiment": rows}
    temperatures, report = calibrate_heads({"twitter-financial-news-sentiment": logits}, validation,
                                           {"sentiment": list(SENTIMENT_LABELS), "topic": list(TOPIC_LABELS)})
    assert temperatures.sentiment == pytest.approx(2.0, rel=0.1) and temperatures.topic == 1.0
    assert report["topic"]["n"] == 0 and report["sentiment"]["n"] == 3000
    per_set = report["sentiment"]["sets"]["twitter-financial-news-sentiment"]
    assert per_set["ece_after"] < per_set["ece_before"]
    assert per_set["ece_before"] == pytest.approx(logits_ece(logits, labels))
