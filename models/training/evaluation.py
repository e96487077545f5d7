"""Scoring a model against labeled rows: accuracy, macro-F1, per-class table, confusion matrix.

Macro-F1 averages over the classes present in the gold labels, so evaluating the news-topic set
is not dragged down by customer topics that cannot occur in it (predictions of those still count
as errors). Each result also carries the expected calibration error of the served (calibrated)
probability, and sentiment results the negative class on its own: negative recall is what a risk
team pays for. :func:`evaluate_sources` scores every labelled source in the shared data folder.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from riskpulse.models.serving.inference import Engine
from riskpulse.models.training.calibration import ECE_BINS, expected_calibration_error
from riskpulse.models.training.data import DataError, load_dataset

# What `riskpulse eval` reports without --data: (name, task, dataset files) per source. Every file is
# held out from training: official validation splits, test splits, and PhraseBank (evaluation-only).
EVAL_SOURCES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("news tweets", "sentiment", (("twitter-financial-news-sentiment", "validation"),)),
    ("phrasebank", "sentiment", (("financial-phrasebank", "test"),)),
    ("news tweets", "topic", (("twitter-financial-news-topic", "validation"),)),
    ("banking77", "topic", (("banking77", "test"),)),
    ("cfpb", "topic", (("cfpb-complaints-sample", "test"),)),
    ("customer sets", "topic", (("banking77", "test"), ("cfpb-complaints-sample", "test"))),
)


def report(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, n, per-class precision/recall/F1/support and the confusion matrix."""
    gold = sorted(set(y_true))
    shown = gold + sorted(set(y_pred) - set(gold))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=gold, zero_division=0)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=gold, average="macro", zero_division=0)),
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(gold, precision, recall, f1, support)
        },
        "confusion": {"labels": shown, "matrix": confusion_matrix(y_true, y_pred, labels=shown).tolist()},
    }


def majority_baseline(train_labels: Sequence[str], y_true: Sequence[str]) -> dict[str, Any]:
    """The report of always answering the most common training label."""
    majority = Counter(train_labels).most_common(1)[0][0]
    return report(y_true, [majority] * len(y_true))


def evaluate(engine: Engine, texts: Sequence[str], labels: Sequence[str], task: str) -> dict[str, Any]:
    """The report of `task` on labelled texts, with the ECE of the served probability and, for sentiment, the negative class."""
    return _scored_report(engine.classify(texts), labels, task, engine.version)


def _scored_report(scores: Sequence[Any], labels: Sequence[str], task: str, version: str) -> dict[str, Any]:
    sentiment = task == "sentiment"
    predicted = [s.sentiment if sentiment else s.topic for s in scores]
    confidence = [s.sentiment_prob if sentiment else s.topic_prob for s in scores]
    result = report(labels, predicted)
    result.update(task=task, model_version=version, ece=expected_calibration_error(
        confidence, [p == g for p, g in zip(predicted, labels)]), ece_bins=ECE_BINS)
    if sentiment:
        result["negative"] = result["per_class"].get("negative", {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0})
    return result


def evaluate_sources(engine: Engine, root: Path) -> dict[str, Any]:
    """Every labelled held-out source in `root`, each on its own: ``{"<source> · <task>": report}``."""
    results: dict[str, Any] = {}
    missing: set[str] = set()
    scored: dict[str, tuple[list[str], list[Any]]] = {}  # file -> gold labels, scores: each file is scored once
    for name, task, files in EVAL_SOURCES:
        labels, scores, used = [], [], []
        for dataset, split in files:
            file = f"{dataset}/{split}.csv"
            if not (root / file).is_file():
                missing.add(file)
                continue
            if file not in scored:
                rows = load_dataset(root, dataset, split)
                scored[file] = [r.label for r in rows], engine.classify([r.text for r in rows])
            labels, scores, used = labels + scored[file][0], scores + scored[file][1], used + [file]
        if labels:
            results[f"{name} · {task}"] = _scored_report(scores, labels, task, engine.version) | {"files": used}
    if not results:
        raise DataError(f"{root} holds none of the evaluation files {sorted({f'{d}/{s}.csv' for _, _, fs in EVAL_SOURCES for d, s in fs})}")
    return {"model_version": engine.version, "data": str(root), "missing": sorted(missing), "sources": results}


def format_table(result: dict[str, Any]) -> str:
    """The human-readable summary `riskpulse eval` prints."""
    width = max([len(k) for k in result["per_class"]] + [10])
    ece = f"  ECE={result['ece']:.4f}" if "ece" in result else ""
    lines = [
        f"n={result['n']}  accuracy={result['accuracy']:.4f}  macro-F1={result['macro_f1']:.4f}{ece}",
        f"{'class':<{width}}  precision  recall     f1  support",
    ]
    for label, m in result["per_class"].items():
        lines.append(f"{label:<{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:5.3f}  {m['support']:7d}")
    return "\n".join(lines)


def format_sources(results: dict[str, Any]) -> str:
    """One line per source: the figures `riskpulse eval` prints without --data."""
    width = max(len(name) for name in results["sources"]) + 2
    lines = [f"{'source':<{width}}{'n':>6}  accuracy  macro-F1     ECE  negative P / R / F1"]
    for name, r in results["sources"].items():
        negative = r.get("negative")
        shown = f"{negative['precision']:.3f} / {negative['recall']:.3f} / {negative['f1']:.3f}" if negative else "-"
        lines.append(f"{name:<{width}}{r['n']:>6}  {r['accuracy']:8.4f}  {r['macro_f1']:8.4f}  {r['ece']:6.4f}  {shown}")
    if results["missing"]:
        lines.append(f"(not found, skipped: {', '.join(results['missing'])})")
    return "\n".join(lines)


def write_report(result: dict[str, Any], json_path: Path, png_path: Path | None = None, title: str = "") -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    if png_path is not None:
        confusion_png(result["confusion"], png_path, title)


def confusion_png(confusion: dict[str, Any], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix as a PNG (rows = gold labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels, matrix = confusion["labels"], np.asarray(confusion["matrix"], dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
