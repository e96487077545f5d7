"""Calibrated probabilities: one softmax temperature per head, stored with the model.

A fine-tuned classifier's top probability is usually too high (it says 0.95 where it is right
85% of the time). Alerts, the least-confident-first label queue and the dashboard read
``sentiment_prob`` and ``topic_prob`` as chances, so the engine divides each head's logits by a
temperature fitted on validation after training (:mod:`riskpulse.models.training.calibration`).
Dividing by a positive number never changes the arg-max, so labels and macro-F1 stay as they are.
A version directory without ``calibration.json`` (trained before calibration existed) serves
with temperature 1: the raw softmax, as before.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class Temperatures:
    """Softmax temperature per head; 1.0 = uncalibrated."""

    topic: float = 1.0
    sentiment: float = 1.0

    def __post_init__(self) -> None:
        if not (self.topic > 0 and self.sentiment > 0):
            raise ValueError(f"temperatures must be positive, got topic={self.topic}, sentiment={self.sentiment}")

    def save(self, directory: Path, fitted_on: dict | None = None) -> None:
        """Write ``calibration.json``; `fitted_on` records what the temperatures were fitted on and the ECE they gave."""
        record = {"method": "temperature", **asdict(self), "fitted_on": fitted_on or {}}
        staging = directory / f".{CALIBRATION_FILE}.tmp"
        staging.write_text(json.dumps(record, indent=2), encoding="utf-8")
        os.replace(staging, directory / CALIBRATION_FILE)  # a served version never shows a half-written file

    @classmethod
    def load(cls, directory: Path) -> "Temperatures":
        """A version's temperatures; 1.0 for both heads when it has none."""
        path = directory / CALIBRATION_FILE
        if not path.is_file():
            return cls()
        record = json.loads(path.read_text(encoding="utf-8"))
        return cls(topic=float(record["topic"]), sentiment=float(record["sentiment"]))
