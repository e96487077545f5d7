"""The one rule for the numeric precision of training and inference, per device.

CPUs differ from run to run (one CI box computes bfloat16 natively with AVX512-BF16/AMX, the next
is an AVX2-only EPYC that emulates it several times slower than fp32), so nothing here assumes a
CPU: ``auto`` asks the CPU (through oneDNN) and the GPU what they compute natively.

- CPU: bf16 autocast where bf16 is native, fp32 elsewhere; fp16 is refused (no fast CPU kernels).
- CUDA: bf16 where the GPU supports it (Ampere and later), fp16 elsewhere.

``RISKPULSE_PRECISION`` (auto, fp32, bf16, fp16) overrides the choice for training and serving alike.
"""

from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch

from riskpulse.core import RiskPulseError
from riskpulse.core.settings import PrecisionName

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionError(RiskPulseError, ValueError):
    """A precision the device cannot run."""


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux), for logs and benchmark reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True where oneDNN computes bfloat16 natively (AVX512-BF16 or AMX), not by emulation."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@dataclass(frozen=True)
class Precision:
    """The precision chosen for one device, and why (logged at start by trainers and servers)."""

    device: torch.device
    name: Literal["fp32", "bf16", "fp16"]
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.name]

    @property
    def reduced(self) -> bool:
        return self.name != "fp32"

    @property
    def casts_weights(self) -> bool:
        """Serving on a GPU casts the weights to the reduced dtype outright (no per-op casts); a CPU
        keeps fp32 weights under autocast, where bf16 only pays in the matmuls."""
        return self.device.type == "cuda" and self.reduced

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to this precision (a no-op for fp32): weights stay fp32, matmuls run reduced."""
        if not self.reduced:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @property
    def hardware(self) -> str:
        return torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else cpu_model()

    def describe(self) -> str:
        return f"{self.device} ({self.hardware}): {self.name}, {self.reason}"


def choose_precision(device: torch.device, requested: PrecisionName = "auto") -> Precision:
    """The precision to train and serve with on `device`: `requested` unless ``auto``."""
    if device.type == "cpu":
        native = cpu_has_native_bf16()
        if requested == "auto":
            return Precision(device, "bf16" if native else "fp32",
                             "auto: CPU computes bf16 natively" if native else "auto: CPU has no native bf16")
        if requested == "fp16":
            raise PrecisionError("fp16 is not supported on CPU (no fast kernels); use fp32, or bf16 where native")
        note = "" if requested == "fp32" or native else " (emulated on this CPU: expect it to be slower than fp32)"
        return Precision(device, requested, f"requested{note}")
    if device.type == "cuda":
        if requested == "auto":
            bf16 = torch.cuda.is_bf16_supported()
            return Precision(device, "bf16" if bf16 else "fp16",
                             "auto: GPU supports bf16" if bf16 else "auto: GPU has no bf16, fp16 instead")
        return Precision(device, requested, "requested")
    if requested in ("auto", "fp32"):
        return Precision(device, "fp32", f"{requested}: no reduced-precision rule for {device.type}")
    return Precision(device, requested, "requested")
