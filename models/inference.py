"""Batched inference: the one call the stream workers make to score messages.

Texts are tokenized once, sorted by length and padded per batch (short tweets do not pay for
long complaints), run under ``torch.inference_mode`` and in fp16 on CUDA. Texts longer than
``settings.max_length`` tokens are truncated; the engine counts them and logs the count with the
model version, so a drift towards long messages is visible.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from models.network import MultiTaskClassifier, load_model, preprocess
from models.registry import Registry
from streams import RiskPulseError
from streams.settings import Settings

log = logging.getLogger("riskpulse.models")


class EmptyTextError(RiskPulseError, ValueError):
    """A text to classify is empty or whitespace only; there is nothing to score."""


@dataclass(frozen=True)
class Scores:
    topic: str
    topic_prob: float
    sentiment: str
    sentiment_prob: float
    model_version: str


def pick_device(requested: str | None) -> torch.device:
    """`requested` (RISKPULSE_DEVICE) if given, else CUDA when present, else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_bf16_enabled(device: torch.device, requested: bool | None) -> bool:
    """bf16 autocast for CPU inference: as `requested` (RISKPULSE_CPU_BF16), else only where the CPU
    computes bfloat16 natively; elsewhere autocast would emulate it, likely no faster than fp32."""
    if device.type != "cpu":
        return False
    if requested is not None:
        return requested
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class Engine:
    def __init__(
        self, model: MultiTaskClassifier, tokenizer, labels: dict[str, list[str]], version: str,
        device: torch.device, max_length: int = 128, batch_size: int = 64, half: bool | None = None,
        cpu_bf16: bool | None = False,
    ) -> None:
        self.version = version
        self.device = device
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer = tokenizer
        self.topics = labels["topic"]
        self.sentiments = labels["sentiment"]
        self.model = model.to(device).eval()
        if device.type == "cuda" if half is None else half:
            self.model.half()
        self.cpu_bf16 = cpu_bf16_enabled(device, cpu_bf16)
        self.texts_seen = 0
        self.texts_truncated = 0

    @classmethod
    def load(cls, settings: Settings, version: str | None = None) -> "Engine":
        """The registry's `version` (None = current) on the configured device."""
        registry = Registry(settings.registry_root)
        version = registry.resolve(version)
        path = registry.path(version)
        model, tokenizer, labels = load_model(path)
        device = pick_device(settings.device)
        engine = cls(model, tokenizer, labels, version, device, settings.max_length, settings.inference_batch_size,
                     cpu_bf16=settings.cpu_bf16)
        log.info("loaded model version %s from %s on %s (max_length=%s, cpu bf16 %s)",
                 version, path, device, settings.max_length, engine.cpu_bf16)
        return engine

    def _encode(self, texts: Sequence[str]) -> tuple[list[list[int]], int]:
        """Token ids per text, cut to max_length (keeping the closing special token); count of cut texts."""
        encoded = self.tokenizer([preprocess(t) for t in texts], truncation=True, max_length=self.max_length + 1)["input_ids"]
        truncated = 0
        for i, ids in enumerate(encoded):
            if len(ids) > self.max_length:
                encoded[i] = ids[: self.max_length - 1] + ids[-1:]
                truncated += 1
        return encoded, truncated

    def classify(self, texts: Sequence[str]) -> list[Scores]:
        """Topic and sentiment with probabilities for each text, in input order."""
        empty = [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
        if empty:
            raise EmptyTextError(
                f"{len(empty)} of {len(texts)} texts are empty or whitespace only (positions {empty[:10]}); "
                "drop or dead-letter them before classifying"
            )
        if not texts:
            return []
        encoded, truncated = self._encode(texts)
        self.texts_seen += len(texts)
        self.texts_truncated += truncated
        if truncated:
            log.info("model %s: truncated %d of %d texts to %d tokens", self.version, truncated, len(texts), self.max_length)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        results: list[Scores | None] = [None] * len(texts)
        pad = self.tokenizer.pad_token_id or 0
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16):
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                width = max(len(encoded[i]) for i in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                    mask[row, : len(encoded[i])] = 1
                topic_logits, sentiment_logits = self.model(ids.to(self.device), mask.to(self.device))
                t_prob, t_idx = topic_logits.float().softmax(-1).max(-1)
                s_prob, s_idx = sentiment_logits.float().softmax(-1).max(-1)
                for row, i in enumerate(batch):
                    results[i] = Scores(
                        self.topics[int(t_idx[row])], float(t_prob[row]),
                        self.sentiments[int(s_idx[row])], float(s_prob[row]), self.version,
                    )
        return results  # type: ignore[return-value]
