"""Fitting the serving temperatures and measuring calibration.

Temperature scaling (Guo et al., 2017): one scalar per head, chosen to minimise the negative
log-likelihood of the validation labels under ``softmax(logits / T)``. One parameter cannot
over-fit a validation set of thousands of rows, and it never changes a prediction. Expected
calibration error (ECE) is the gap between confidence and accuracy, averaged over 15 equal-width
confidence bins weighted by how many predictions fall in each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from riskpulse.models.serving.calibration import Temperatures
from riskpulse.models.training.data import Example

ECE_BINS = 15
_LOG_T_BOUNDS = (-3.0, 3.0)  # T between 0.05 and 20: far outside what a fine-tuned head needs


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1))


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of `targets` (class indices) under softmax(logits / temperature)."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-logp[np.arange(len(targets)), targets].mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising validation NLL (searched on log T, so it stays positive)."""
    if len(targets) == 0:
        return 1.0
    result = minimize_scalar(lambda log_t: nll(logits, targets, float(np.exp(log_t))), bounds=_LOG_T_BOUNDS,
                             method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS) -> float:
    """Σ_bins (share of predictions in the bin) × |accuracy − mean confidence| over equal-width bins of (0, 1]."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    if len(confidence) == 0:
        return 0.0
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)  # bin b holds (b/bins, (b+1)/bins]
    gap = 0.0
    for b in np.unique(which):
        members = which == b
        gap += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(gap)


def logits_ece(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """ECE of the top-class probability of softmax(logits / temperature) against `targets`."""
    probs = softmax(logits, temperature)
    return expected_calibration_error(probs.max(axis=1), probs.argmax(axis=1) == targets)


def calibrate(logits: np.ndarray, targets: np.ndarray, seed: int = 13) -> dict[str, Any]:
    """Fit one head's temperature and report what it does.

    ``ece_after`` is measured on the rows the temperature was fitted on; ``ece_after_heldout``
    is honest about that: the rows are split in two halves, each half is scored with the
    temperature fitted on the other, and the two ECEs are averaged by size.
    """
    targets = np.asarray(targets)
    temperature = fit_temperature(logits, targets)
    halves = np.random.default_rng(seed).permutation(len(targets)) % 2 == 0
    heldout = 0.0
    for fit_on in (halves, ~halves):
        score_on = ~fit_on
        if score_on.any():
            t = fit_temperature(logits[fit_on], targets[fit_on])
            heldout += score_on.mean() * logits_ece(logits[score_on], targets[score_on], t)
    return {
        "temperature": temperature, "n": int(len(targets)), "bins": ECE_BINS,
        "ece_before": logits_ece(logits, targets), "ece_after": logits_ece(logits, targets, temperature),
        "ece_after_heldout": float(heldout),
        "nll_before": nll(logits, targets, 1.0) if len(targets) else 0.0,
        "nll_after": nll(logits, targets, temperature) if len(targets) else 0.0,
    }


def calibrate_heads(
    logits: dict[str, np.ndarray], validation: dict[str, list[Example]], labels: dict[str, list[str]]
) -> tuple[Temperatures, dict[str, Any]]:
    """One temperature per head, fitted on all of that head's validation sets together, and the
    report of each (ECE before/after overall and per set). A head without validation rows keeps 1."""
    temperatures, reports = {}, {}
    for head in ("sentiment", "topic"):
        index = {label: i for i, label in enumerate(labels[head])}
        sets = [name for name, rows in validation.items() if rows and rows[0].task == head and name in logits]
        if not sets:
            temperatures[head], reports[head] = 1.0, {"temperature": 1.0, "n": 0, "sets": []}
            continue
        targets = {name: np.array([index[row.label] for row in validation[name]]) for name in sets}
        result = calibrate(np.concatenate([logits[n] for n in sets]), np.concatenate([targets[n] for n in sets]))
        result["sets"] = {name: {"n": len(targets[name]), "ece_before": logits_ece(logits[name], targets[name]),
                                 "ece_after": logits_ece(logits[name], targets[name], result["temperature"])}
                          for name in sets}
        temperatures[head], reports[head] = result["temperature"], result
    return Temperatures(**temperatures), reports


def calibrate_version(settings, version: str | None = None, data_root=None) -> dict[str, Any]:
    """Fit temperatures for a registered version after the fact (one trained before calibration existed) on
    its own validation sets (the customer hold-outs drawn with its seed) and write its ``calibration.json``.
    Workers pick the new probabilities up when they next load the version."""
    from riskpulse.models.serving.inference import Engine
    from riskpulse.models.serving.registry import Registry
    from riskpulse.models.training.data import training_data

    registry = Registry(settings.registry_root)
    version = registry.resolve(version)
    training = registry.info(version).get("training", {})
    engine = Engine.load(settings, version)
    engine.temperatures = Temperatures()  # fit on the raw logits whatever the version holds now
    data = training_data(data_root or settings.shared_data, training.get("holdout", 0.1),
                         training.get("holdout_seed", training.get("seed", 13)))
    logits = {}
    for name, rows in data.validation.items():
        topic, sentiment = engine.logits([row.text for row in rows])
        logits[name] = sentiment if rows[0].task == "sentiment" else topic
    temperatures, report = calibrate_heads(logits, data.validation, {"topic": engine.topics, "sentiment": engine.sentiments})
    temperatures.save(registry.path(version), fitted_on={head: {k: c.get(k) for k in ("n", "ece_before", "ece_after", "ece_after_heldout")}
                                                         for head, c in report.items()})
    return {"version": version, **report}
