"""Knowledge distillation: a big teacher's probabilities, kept as data, teach the MiniLM student.

The teacher (a base-size encoder fine-tuned once, offline) labels every training text and an
unlabelled transfer set with its full probability distribution over both heads. Those soft labels
are written to one small gzip'd JSON-lines file (:class:`SoftLabels`): a header saying how they
were made (teacher version, base model, its validation figures, a checksum of every input file)
and one row per text id (the SHA-256 of the text, not the text, so the file carries no licensed
text). A student run then needs no teacher: it joins its rows to the file by text id and mixes
each head's hard-label cross-entropy with the KL divergence to the teacher's distribution
(:func:`mixed_loss`, Hinton et al., 2015).

Where the transfer pays: every topic tweet and customer message has a topic label but no sentiment
label, so with soft labels the sentiment head learns from ~3x more texts at no extra encoder pass.
Texts of any validation or test split are never labelled (the bundled sample is made of exactly
such rows), so distillation cannot leak evaluation texts into training.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from riskpulse.core.resources import sample_messages
from riskpulse.core.settings import Settings
from riskpulse.models.serving.network import DeviceArrays, to_device
from riskpulse.models.training.data import (
    SENTIMENT_LABELS, TOPIC_LABELS, DataError, Example, TrainingData, fingerprint, read_csv, training_data,
)

log = logging.getLogger("riskpulse.models")
FORMAT = "riskpulse-soft-labels/1"
SAMPLE_SOURCE = "sample"
TRANSFER_TASK = "transfer"  # a row with soft labels only: no hard target for either head
# Files whose texts are only ever evaluated on: no soft label may come from them.
EVALUATION_ONLY_FILES = ("banking77/test.csv", "cfpb-complaints-sample/test.csv",
                         "financial-phrasebank/train.csv", "financial-phrasebank/test.csv")
HEADS = ("topic", "sentiment")
BUNDLED_FILE = "teacher_soft_labels.jsonl.gz"
# The bundled sample cuts long narratives (at 8,000 characters): a text this long that begins an
# evaluation text is that text, cut, and is left out like it.
CUT_MIN_CHARS = 200


def bundled_soft_labels() -> Path:
    """The soft labels that ship with RiskPulse (made by the teacher that SOFT_LABELS.md describes)."""
    return Path(str(files("riskpulse.models.training").joinpath(BUNDLED_FILE)))


def default_soft_labels(settings: Settings, given: Path | None = None) -> Path | None:
    """What `riskpulse train` distils from: the file it was given, else the settings', else the bundled one;
    None when distillation is off (``settings.distil``), whatever was given."""
    if not settings.distil:
        return None
    return given or settings.distil_soft_labels or bundled_soft_labels()


def text_id(text: str) -> str:
    """A text's id in a soft-label file: the first 16 hex digits of the SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def inputs_checksum(files: dict[str, str]) -> str:
    """One SHA-256 over the sorted ``name:sha256`` lines of the input files."""
    return hashlib.sha256("".join(f"{name}:{files[name]}\n" for name in sorted(files)).encode()).hexdigest()


@dataclass
class SoftLabels:
    """A teacher's probability distributions per text id, and how they were made."""

    header: dict[str, Any]
    rows: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # text id -> head -> probabilities

    def save(self, path: Path) -> None:
        """Gzip'd JSON lines: the header, then ``{"id", "topic", "sentiment"}`` per text, probabilities to 4 significant digits."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as fh:
            fh.write(json.dumps(self.header) + "\n")
            for tid in sorted(self.rows):
                row = {head: [float(f"{p:.4g}") for p in probs] for head, probs in self.rows[tid].items()}
                fh.write(json.dumps({"id": tid, **row}, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: Path) -> "SoftLabels":
        """Read and check a file: its format, its label sets against this code's, each row a distribution."""
        if not path.is_file():
            raise DataError(f"soft-label file {path} does not exist; make one with `riskpulse distil teacher`")
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            header = json.loads(fh.readline())
            if header.get("format") != FORMAT:
                raise DataError(f"{path} is not a {FORMAT} file (format {header.get('format')!r})")
            expected = {"topic": list(TOPIC_LABELS), "sentiment": list(SENTIMENT_LABELS)}
            if header.get("labels") != expected:
                raise DataError(f"{path} was made for other label sets than this code's; make it again with this code")
            rows = {}
            for number, line in enumerate(fh, 2):
                row = json.loads(line)
                for head in HEADS:
                    if abs(sum(row[head]) - 1) > 0.01 or len(row[head]) != len(expected[head]):
                        raise DataError(f"{path} line {number}: {head} is not a distribution over {len(expected[head])} labels")
                rows[row["id"]] = {head: row[head] for head in HEADS}
        if len(rows) != header.get("rows"):
            raise DataError(f"{path} has {len(rows)} rows, its header says {header.get('rows')}: the file is cut or edited")
        return cls(header, rows)


def read_sample_texts(path: Path) -> list[str]:
    """The texts of a JSON-lines message file (the bundled sample's format), without the rows marked
    ``meta.planted`` (the demo's story: validation tweets with a company's name swapped, and fiction)."""
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [r.get("text", "") for r in rows if r.get("text", "").strip() and not (r.get("meta") or {}).get("planted")]


def evaluation_texts(data: TrainingData, root: Path) -> set[str]:
    """Every text that some figure is measured on: validation splits, held-out slices and evaluation-only files."""
    texts = {row.text for rows in data.validation.values() for row in rows}
    for name in EVALUATION_ONLY_FILES:
        if (root / name).is_file():
            texts.update(text for text, _ in read_csv(root / name))
    return texts


@dataclass
class LabellingSet:
    """The texts a teacher labels, by source, and what was left out because it is evaluated on."""

    texts: dict[str, list[str]]  # source -> distinct texts
    excluded: dict[str, int]  # source -> texts dropped as evaluation texts
    inputs: dict[str, str]  # input file -> sha256


def labelling_set(root: Path, sample: Path | None, holdout: float = 0.1, seed: int = 13) -> LabellingSet:
    """Every training text of the default mix, plus the sample's texts, minus every evaluation text (whole or cut)."""
    data = training_data(root, holdout, seed)
    evaluated = evaluation_texts(data, root)
    inputs = dict(data.fingerprints) | {name: fingerprint(root / name) for name in EVALUATION_ONLY_FILES if (root / name).is_file()}
    by_source: dict[str, list[str]] = {}
    for row in data.train:
        by_source.setdefault(row.source, []).append(row.text)
    if sample is not None:
        by_source[SAMPLE_SOURCE] = read_sample_texts(sample)
        inputs[SAMPLE_SOURCE] = fingerprint(sample)
    long_evaluated = [text for text in evaluated if len(text) > CUT_MIN_CHARS]
    seen: set[str] = set()
    texts, excluded = {}, {}
    for source, candidates in by_source.items():
        kept = []
        for text in candidates:
            if text in evaluated or (len(text) >= CUT_MIN_CHARS and any(e.startswith(text) for e in long_evaluated)):
                excluded[source] = excluded.get(source, 0) + 1
            elif text not in seen:
                seen.add(text)
                kept.append(text)
        texts[source] = kept
    return LabellingSet(texts, excluded, inputs)


def label_texts(engine, texts: list[str], batch: int = 2048) -> dict[str, dict[str, list[float]]]:
    """The engine's raw (temperature 1) probability distributions over both heads, per text id."""
    from riskpulse.models.training.calibration import softmax

    rows: dict[str, dict[str, list[float]]] = {}
    for start in range(0, len(texts), batch):
        part = texts[start : start + batch]
        topic_logits, sentiment_logits = engine.logits(part)
        for text, topic, sentiment in zip(part, softmax(topic_logits), softmax(sentiment_logits)):
            rows[text_id(text)] = {"topic": topic.tolist(), "sentiment": sentiment.tolist()}
        log.info("teacher %s labelled %d of %d texts", engine.version, min(start + batch, len(texts)), len(texts))
    return rows


def run_teacher(settings: Settings, args, out: Path, data_root: Path | None = None,
                sample: Path | None = None) -> SoftLabels:
    """Fine-tune `args.base_model` as the teacher (registered, not promoted), label the labelling set, write `out`.

    `sample` is the transfer file of messages (JSON lines); None = the bundled sample.
    """
    from riskpulse.models.serving.inference import Engine
    from riskpulse.models.serving.registry import Registry
    from riskpulse.models.training.trainer import train

    if args.soft_labels:
        raise DataError("a teacher trains on hard labels only; drop --soft-labels")
    root = data_root or settings.shared_data
    sample = sample or sample_messages()
    version = train(settings, replace(args, tag="teacher" + (f"-{args.tag}" if args.tag else "")), promote=False, data_root=root)
    info = Registry(settings.registry_root).info(version)
    metrics = info.get("metrics", {})
    chosen = labelling_set(root, sample, args.holdout, args.holdout_seed)
    engine = Engine.load(settings, version)
    rows = label_texts(engine, [text for texts in chosen.texts.values() for text in texts])
    header = {
        "format": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "how": "teacher fine-tuned by `riskpulse distil teacher` on the training rows below, then run at temperature 1 "
               "(raw softmax) over every training text and the transfer sample; validation/test texts excluded",
        "teacher": {
            "version": version, "base_model": info["training"]["base_model_resolved"],
            "training": {k: info["training"].get(k) for k in ("epochs", "lr", "batch_size", "max_length", "seed", "quick",
                                                               "forked_layers", "precision", "device", "cpu", "seconds")},
            "validation_macro_f1": {name: r["macro_f1"] for name, r in metrics.get("validation", {}).items()},
            "score": metrics.get("score"),
            "calibration": {head: {k: c.get(k) for k in ("temperature", "ece_before", "ece_after_heldout")}
                            for head, c in metrics.get("calibration", {}).items()},
        },
        "labels": {"topic": list(TOPIC_LABELS), "sentiment": list(SENTIMENT_LABELS)},
        "inputs": chosen.inputs,
        "inputs_sha256": inputs_checksum(chosen.inputs),
        "texts_by_source": {source: len(texts) for source, texts in chosen.texts.items()},
        "excluded_evaluation_texts_by_source": chosen.excluded,
        "sample_path": str(sample),
        "rows": len(rows),
    }
    soft = SoftLabels(header, rows)
    soft.save(out)
    log.info("wrote %d soft labels from teacher %s to %s (excluded as evaluation texts: %s)", len(rows), version, out, chosen.excluded)
    return soft


@dataclass
class SoftTargets:
    """Teacher log-probabilities aligned with the student's rows (NaN rows: no soft label for that row)."""

    topic: np.ndarray  # (rows, topics) float32
    sentiment: np.ndarray  # (rows, sentiments) float32
    heads: tuple[str, ...]  # heads that learn from them
    temperature: float
    weight: float  # share of the soft-label loss in each distilled head's loss
    arrays: DeviceArrays = field(init=False)  # where the loss reads them: the CPU until upload()

    def __post_init__(self) -> None:
        self.upload(torch.device("cpu"))

    def upload(self, device: torch.device) -> None:
        """Read the distilled heads' arrays on `device` (a GPU: uploaded once, steps send row indices only)."""
        self.arrays = DeviceArrays(device, **{head: getattr(self, head) for head in self.heads})

    def head_loss(self, head: str, batch: np.ndarray, student_logits: torch.Tensor, hard: torch.Tensor | None) -> torch.Tensor | None:
        """This head's loss on a batch: the hard loss alone if the head is not distilled, else the mix."""
        if head not in self.heads:
            return hard
        has = ~np.isnan(getattr(self, head)[batch, 0])
        soft = None
        if has.any():  # decided on the host: no device sync
            soft = distillation_loss(student_logits.index_select(0, to_device(np.flatnonzero(has), student_logits.device)),
                                     self.arrays.take(head, to_device(batch[has], self.arrays.device)), self.temperature)
        return mixed_loss(hard, soft, self.weight)


def distillation_loss(student_logits: torch.Tensor, teacher_logp: torch.Tensor, temperature: float) -> torch.Tensor:
    """τ² · KL(teacher at τ ‖ student at τ), mean over rows; τ² keeps its gradients on the hard loss's scale."""
    teacher = F.log_softmax(teacher_logp / temperature, dim=-1)
    student = F.log_softmax(student_logits / temperature, dim=-1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * temperature**2


def mixed_loss(hard: torch.Tensor | None, soft: torch.Tensor | None, weight: float) -> torch.Tensor | None:
    """(1 − weight) · hard + weight · soft; either alone where the batch has only that kind of target."""
    if hard is None or soft is None:
        return hard if soft is None else soft
    return (1 - weight) * hard + weight * soft


def soft_targets(soft: SoftLabels, rows: list[Example], heads: tuple[str, ...], temperature: float, weight: float) -> SoftTargets:
    """Each row's teacher log-probabilities (floored at 1e-6 before the log: the file keeps 4 digits)."""
    arrays = {}
    for head, labels in (("topic", TOPIC_LABELS), ("sentiment", SENTIMENT_LABELS)):
        array = np.full((len(rows), len(labels)), np.nan, dtype=np.float32)
        for i, row in enumerate(rows):
            probs = soft.rows.get(text_id(row.text))
            if probs is not None:
                array[i] = np.log(np.maximum(np.asarray(probs[head], dtype=np.float32), 1e-6))
        arrays[head] = array
    return SoftTargets(arrays["topic"], arrays["sentiment"], heads, temperature, weight)


def labelled_sample(soft: SoftLabels) -> Path | None:
    """The transfer sample the teacher labelled: the file it names, else the bundled one, whichever has its checksum."""
    wanted = soft.header["inputs"].get(SAMPLE_SOURCE)
    for candidate in (soft.header.get("sample_path"), sample_messages()):
        if wanted and candidate and Path(candidate).is_file() and fingerprint(Path(candidate)) == wanted:
            return Path(candidate)
    if wanted:
        log.warning("the transfer sample the teacher labelled (sha256 %s…) is not here; training without its rows", wanted[:12])
    return None


def transfer_rows(soft: SoftLabels, rows: list[Example]) -> list[Example]:
    """Sample texts the teacher labelled that are not already training rows: soft targets only."""
    sample = labelled_sample(soft)
    if sample is None:
        return []
    known = {row.text for row in rows}
    texts = dict.fromkeys(t for t in read_sample_texts(sample) if t not in known and text_id(t) in soft.rows)
    return [Example(text, "", TRANSFER_TASK, SAMPLE_SOURCE) for text in texts]


def check_inputs(soft: SoftLabels, fingerprints: dict[str, str], path: Path) -> None:
    """Warn (naming the files) when the data changed since the teacher labelled it: rows still join by text id."""
    changed = sorted(name for name, digest in fingerprints.items() if soft.header["inputs"].get(name) not in (None, digest))
    if changed:
        log.warning("soft labels %s were made from other versions of %s; texts that changed have no soft label", path, changed)


def coverage(targets: SoftTargets, rows: list[Example]) -> dict[str, Any]:
    """How many of the student's rows have a soft label, by source: what a reader of metrics.json needs to trust the run."""
    has = ~np.isnan(targets.sentiment[:, 0])
    by_source = Counter(row.source for row, h in zip(rows, has) if h)
    return {"rows_with_soft_labels": int(has.sum()), "rows": len(rows), "by_source": dict(by_source),
            "heads": list(targets.heads), "temperature": targets.temperature, "weight": targets.weight,
            "rows_by_task": dict(Counter(row.task for row in rows))}
