"""The one precision rule: CPUs with and without native bf16, and overrides (training and serving agreeing: tests/local)."""

from __future__ import annotations

import pytest
import torch

from riskpulse.models.serving import precision as precision_rule
from riskpulse.models.serving.precision import PrecisionError, choose_precision

CPU = torch.device("cpu")


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_on_cpu_follows_native_bf16(monkeypatch, native: bool, expected: str) -> None:
    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: native)
    chosen = choose_precision(CPU)
    assert chosen.name == expected and chosen.reduced == native
    assert "auto" in chosen.reason and precision_rule.cpu_model() in chosen.describe()


def test_requested_precision_wins_and_says_when_emulated(monkeypatch) -> None:
    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: False)
    assert choose_precision(CPU, "fp32").name == "fp32"
    forced = choose_precision(CPU, "bf16")
    assert forced.name == "bf16" and "emulated" in forced.reason


def test_fp16_on_cpu_is_refused() -> None:
    with pytest.raises(PrecisionError, match="fp16"):
        choose_precision(CPU, "fp16")


def test_fp32_autocast_is_a_no_op() -> None:
    with choose_precision(CPU, "fp32").autocast():
        assert not torch.is_autocast_enabled("cpu")
    with choose_precision(CPU, "bf16").autocast():
        assert torch.is_autocast_enabled("cpu")
