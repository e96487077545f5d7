"""Batched inference: the one call the stream workers make to score messages.

Texts are tokenized in one call, sorted by token length and padded per batch with numpy (short
tweets do not pay for long complaints), then run under ``torch.inference_mode`` at the precision
:mod:`riskpulse.models.serving.precision` chooses. Each batch's results come back to the host in
one transfer. On CUDA the batches are pipelined: the next batch is padded and copied (pinned, non
blocking) while the GPU computes the current one, and the engine waits only for a batch's results,
never for the work queued after it; a long call is tokenized in chunks, the next chunk on a helper
thread (the Rust tokenizer releases the GIL) while the GPU runs this one; widths are padded to
multiples of 8 and each is run once at load (:meth:`Engine.warm_up`). A CPU computes with all
its cores, so there the engine tokenizes everything in one call first. Probabilities are calibrated: each head's logits are divided by
the version's fitted temperature (:mod:`riskpulse.models.serving.calibration`) before the softmax.
Texts longer than ``settings.max_length``
tokens are truncated; the engine counts them and logs the count with the model version, so a
drift towards long messages is visible.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from riskpulse.models.serving.calibration import Temperatures
from riskpulse.models.serving.network import MultiTaskClassifier, load_model, pad_ids, to_device, token_ids
from riskpulse.models.serving.precision import Precision, choose_precision
from riskpulse.models.serving.registry import Registry
from riskpulse.core import RiskPulseError
from riskpulse.core.settings import Settings

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


def default_batch_size(device: torch.device) -> int:
    """Texts per forward pass when RISKPULSE_INFERENCE_BATCH_SIZE is unset: a GPU is only busy with
    hundreds of rows at a time; a CPU is saturated by a few dozen, and bigger batches only pad more."""
    return 512 if device.type == "cuda" else 64


def pad_multiple(device: torch.device) -> int:
    """Batch widths are rounded up to this many tokens. A GPU pays a first-use cost for every new input
    shape (kernel loading, the allocator's pool growing): with exact widths a stream brings up to
    max_length of them, with multiples of 8 (aligned for tensor cores too) max_length / 8, which
    :meth:`Engine.warm_up` can run through at load. A CPU has no such cost, and pads nothing extra."""
    return 8 if device.type == "cuda" else 1


def default_pass_tokens(device: torch.device) -> float | None:
    """What one forward pass costs beyond its rows, in padded tokens, when RISKPULSE_INFERENCE_PASS_TOKENS is unset;
    None cuts fixed-size batches. On a CPU a pass costs a fixed ~10 ms plus ~0.23 ms per padded token (MiniLM, fp32,
    2 Zen 3 cores: 1 row × 8 tokens 13.5 ms, 64 × 128 2.3 s), so ~40 tokens; a simulation of that cost on real texts
    planned as well with 20 to 80 (``bench/batch_plan.py --pass-tokens`` measures a value on a machine). A GPU's pass costs about the same whatever its padding until it is full, and each new
    row count is a new shape to warm up, so there the batches stay ``batch_size`` rows."""
    return None if device.type == "cuda" else 40.0


def plan_batches(lengths: Sequence[int], max_rows: int, pass_tokens: float | None) -> list[int]:
    """Where to cut rows sorted by token length into batches: the end of each batch, ascending.

    A batch is padded to its longest (last) row, so a fixed ``max_rows`` cut of a short call pads every tweet to
    the longest complaint beside it: a CPU scored a 35-message call at half its 4,096-message rate. With
    ``pass_tokens`` the cuts minimise the call's cost, one pass at ``pass_tokens`` plus each batch's rows × width,
    by dynamic programming over the sorted rows (at most ``max_rows`` a batch); without, every ``max_rows`` rows.
    """
    count = len(lengths)
    if pass_tokens is None or count <= 1:
        return (list(range(max_rows, count, max_rows)) + [count]) if count else []
    width = np.asarray(lengths, dtype=np.float64)
    cost = np.zeros(count + 1)  # cost[j]: the cheapest plan for the first j rows
    start = np.zeros(count + 1, dtype=np.int64)  # where the last batch of that plan starts
    for end in range(1, count + 1):
        starts = np.arange(max(0, end - max_rows), end)
        options = cost[starts] + pass_tokens + (end - starts) * width[end - 1]
        best = int(options.argmin())
        cost[end], start[end] = options[best], starts[best]
    ends = [count]
    while (first := int(start[ends[-1]])) > 0:
        ends.append(first)
    return ends[::-1]


class _Pending:
    """One batch whose forward pass is queued: its rows, and its results on their way to the host."""

    def __init__(self, rows: list[int], packed: torch.Tensor) -> None:
        self.rows = rows
        if packed.device.type == "cuda":
            self.host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)
            self.host.copy_(packed, non_blocking=True)
            self.ready = torch.cuda.Event()
            self.ready.record()
        else:
            self.host, self.ready = packed, None

    def result(self) -> list[list[float]]:
        """The packed result row of each text in the batch; waits only for this batch."""
        if self.ready is not None:
            self.ready.synchronize()
        return self.host.tolist()


class Engine:
    def __init__(
        self, model: MultiTaskClassifier, tokenizer, labels: dict[str, list[str]], version: str,
        device: torch.device, max_length: int = 128, batch_size: int | None = None,
        precision: Precision | None = None, cast_weights: bool = True, temperatures: Temperatures | None = None,
        tokenize_chunk: int | None = None, pass_tokens: float | None = None,
    ) -> None:
        """`precision` defaults to the device's rule. With `cast_weights` (serving) a reduced-precision
        GPU model is cast to that dtype outright; without it (validating a model in training, whose
        weights must stay fp32) the forward pass runs under autocast. `temperatures` (default 1, the raw
        softmax) calibrate the probabilities; they never change a label. `tokenize_chunk` texts are
        tokenized (and length-sorted) at a time, the next chunk while the device runs this one; default
        8 batches on a GPU, everything at once on a CPU. `pass_tokens` (default per device, :func:`default_pass_tokens`)
        cuts the sorted texts into batches by cost (:func:`plan_batches`); 0 keeps fixed `batch_size`-row batches."""
        self.version = version
        self.device = device
        self.max_length = max_length
        self.batch_size = batch_size or default_batch_size(device)
        self.pad_multiple = pad_multiple(device)
        self.pass_tokens = default_pass_tokens(device) if pass_tokens is None else (pass_tokens or None)
        self.tokenize_chunk = tokenize_chunk or (8 * self.batch_size if device.type == "cuda" else None)
        self.tokenizer = tokenizer
        self.topics = labels["topic"]
        self.sentiments = labels["sentiment"]
        self.precision = precision or choose_precision(device)
        self.temperatures = temperatures or Temperatures()
        self.model = model.to(device).eval()
        self.pad_id = tokenizer.pad_token_id or 0
        self._weights_cast = cast_weights and self.precision.casts_weights
        if self._weights_cast:
            self.model.to(self.precision.dtype)
        self.texts_seen = 0
        self.texts_truncated = 0

    @classmethod
    def load(cls, settings: Settings, version: str | None = None) -> "Engine":
        """The registry's `version` (None = current) on the configured device and precision."""
        registry = Registry(settings.registry_root)
        version = registry.resolve(version)
        path = registry.path(version)
        model, tokenizer, labels = load_model(path)
        device = pick_device(settings.device)
        engine = cls(model, tokenizer, labels, version, device, settings.max_length, settings.inference_batch_size,
                     choose_precision(device, settings.precision), temperatures=Temperatures.load(path),
                     pass_tokens=settings.inference_pass_tokens)
        warmed = engine.warm_up() if device.type == "cuda" else None
        log.info("loaded model version %s from %s on %s (max_length=%s, batch %d, temperatures topic %.3f sentiment %.3f%s)",
                 version, path, engine.precision.describe(), settings.max_length, engine.batch_size,
                 engine.temperatures.topic, engine.temperatures.sentiment,
                 f", warmed up in {warmed:.1f} s" if warmed is not None else "")
        return engine

    def warm_up(self, rows: Sequence[int] | None = None) -> float:
        """One forward pass at every padded width a stream can bring, before the first real batch: on a GPU each
        new shape's first pass loads kernels and grows the memory pool (an H200 scored its first 5,463 messages at
        a quarter of the warmed rate). ``rows`` per pass default to a full batch, then one row (a call's last
        batch is short). Returns the seconds it took; the engine's counters are left as they were."""
        started = time.perf_counter()
        widths = range(self.pad_multiple, self.max_length + self.pad_multiple, self.pad_multiple)
        autocast = self.precision.autocast() if not self._weights_cast else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            for count in rows or (self.batch_size, 1):
                for width in widths:
                    width = min(width, self.max_length)
                    ids = np.full((count, width), self.pad_id, dtype=np.int64)
                    mask = np.ones((count, width), dtype=np.int64)
                    _Pending(list(range(count)), self._launch(ids, mask, self._pack_scores)).result()
        return time.perf_counter() - started

    def _encode(self, texts: Sequence[str]) -> tuple[list[list[int]], int]:
        """Token ids per text in one (fast, Rust) tokenizer call, cut to max_length (keeping the closing
        special token), and how many texts were cut."""
        encoded = token_ids(self.tokenizer, texts, self.max_length + 1)
        truncated = 0
        for i, ids in enumerate(encoded):
            if len(ids) > self.max_length:
                encoded[i] = ids[: self.max_length - 1] + ids[-1:]
                truncated += 1
        return encoded, truncated

    def _launch(self, ids: np.ndarray, mask: np.ndarray, pack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Queue one forward pass; `pack` turns its (topic, sentiment) logits into one result tensor (still on the device)."""
        topic_logits, sentiment_logits = self.model(to_device(ids, self.device), to_device(mask, self.device))
        return pack(topic_logits.float(), sentiment_logits.float())

    def _pack_scores(self, topic_logits: torch.Tensor, sentiment_logits: torch.Tensor) -> torch.Tensor:
        """[topic index, topic prob, sentiment index, sentiment prob] per row, probabilities calibrated."""
        t_prob, t_idx = (topic_logits / self.temperatures.topic).softmax(-1).max(-1)
        s_prob, s_idx = (sentiment_logits / self.temperatures.sentiment).softmax(-1).max(-1)
        return torch.stack([t_idx.float(), t_prob, s_idx.float(), s_prob], dim=1)

    def classify(self, texts: Sequence[str]) -> list[Scores]:
        """Topic and sentiment with (calibrated) probabilities for each text, in input order."""
        return [Scores(self.topics[int(t_idx)], t_prob, self.sentiments[int(s_idx)], s_prob, self.version)
                for t_idx, t_prob, s_idx, s_prob in self._run(texts, self._pack_scores)]

    def logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw (uncalibrated) topic and sentiment logits, float32, one row per text in input order: what
        calibration is fitted on and what a teacher's soft labels are made of."""
        rows = np.asarray(self._run(texts, lambda t, s: torch.cat([t, s], dim=1)), dtype=np.float32)
        rows = rows.reshape(len(texts), len(self.topics) + len(self.sentiments))
        return rows[:, : len(self.topics)], rows[:, len(self.topics) :]

    def _run(self, texts: Sequence[str], pack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> list[list[float]]:
        """Every text through the model in length-sorted batches; `pack`'s row per text, in input order."""
        empty = [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
        if empty:
            raise EmptyTextError(
                f"{len(empty)} of {len(texts)} texts are empty or whitespace only (positions {empty[:10]}); "
                "drop or dead-letter them before classifying"
            )
        if not texts:
            return []
        results: list[list[float] | None] = [None] * len(texts)
        pending: _Pending | None = None
        truncated = 0
        autocast = self.precision.autocast() if not self._weights_cast else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            for offset, (encoded, cut) in self._chunks(texts):
                truncated += cut
                # Exact token lengths for sorting: sorting by characters (or words) padded 35% more tokens
                # on real traffic, and costs far more compute than the one tokenizer call it would save.
                lengths = [len(ids) for ids in encoded]
                order = sorted(range(len(encoded)), key=lengths.__getitem__)
                ends = plan_batches([lengths[i] for i in order], self.batch_size, self.pass_tokens)
                for start, end in zip([0, *ends], ends):
                    rows = order[start:end]
                    ids, mask = pad_ids([encoded[i] for i in rows], self.pad_id, self.pad_multiple, self.max_length)  # overlaps the GPU's previous batch
                    queued = _Pending([offset + i for i in rows], self._launch(ids, mask, pack))
                    if pending is not None:
                        self._collect(pending, results)
                    pending = queued
            if pending is not None:
                self._collect(pending, results)
        self.texts_seen += len(texts)
        self.texts_truncated += truncated
        if truncated:
            log.info("model %s: truncated %d of %d texts to %d tokens", self.version, truncated, len(texts), self.max_length)
        return results  # type: ignore[return-value]

    def _chunks(self, texts: Sequence[str]) -> Iterator[tuple[int, tuple[list[list[int]], int]]]:
        """(offset, encoded chunk) over `texts`; while the caller runs one chunk, the next is tokenized."""
        size = self.tokenize_chunk or len(texts)
        if len(texts) <= size:
            yield 0, self._encode(texts)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize") as tokenizer:
            upcoming = tokenizer.submit(self._encode, texts[:size])
            for offset in range(0, len(texts), size):
                encoded = upcoming.result()
                if offset + size < len(texts):
                    upcoming = tokenizer.submit(self._encode, texts[offset + size : offset + 2 * size])
                yield offset, encoded

    @staticmethod
    def _collect(pending: _Pending, results: list[list[float] | None]) -> None:
        for i, row in zip(pending.rows, pending.result()):
            results[i] = row
