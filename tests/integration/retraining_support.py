"""Helpers for the retraining tests: a private copy of the quick registry, analyst labels
written like the dashboard writes them, and real rows the champion gets wrong."""

from __future__ import annotations

import csv
import hashlib
import random
import shutil
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from riskpulse.models.serving.registry import Registry
from riskpulse.models.retraining.policy import is_held_back
from tests.fixtures.models import shared_data


def private_registry(quick_registry: Path, root: Path) -> Registry:
    """A registry holding a copy of the quick model as `current`; tests may promote in it freely."""
    source = Registry(quick_registry)
    version = source.current()
    registry = Registry(root)
    shutil.copytree(source.path(version), registry.versions_dir / version)
    registry.promote(version)
    return registry


def clone_version(registry: Registry, version: str, name: str) -> str:
    """The same weights under another version name (a second servable model, cheaply)."""
    with registry.write(name) as out:
        shutil.copytree(registry.path(version), out, dirs_exist_ok=True)
    return name


def write_labels(store, rows: list[tuple[str, str, str, str]], by: str = "analyst-1", ago_s: int = 30) -> None:
    """(message_id, task, label, text) rows into `labels`, as the dashboard stores them."""
    at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=ago_s)
    store.write_batch(
        "labels",
        [{"message_id": m, "task": t, "label": lab, "text": x, "labeled_by": by, "labeled_at": at} for m, t, lab, x in rows],
    )


def message_id(text: str, salt: str = "") -> str:
    return "msg-" + hashlib.sha256(f"{salt}{text}".encode()).hexdigest()[:16]


def dataset_rows(name: str, column: str, splits: tuple[str, ...] = ("train", "validation")) -> list[tuple[str, str]]:
    """Every real (text, label) row of a shared dataset's splits."""
    rows = []
    for split in splits:
        with (shared_data() / name / f"{split}.csv").open(newline="", encoding="utf-8") as fh:
            rows += [(r["text"], r[column]) for r in csv.DictReader(fh) if r["text"].strip()]
    return rows


def topic_rows() -> list[tuple[str, str]]:
    """Every real (text, topic) row of twitter-financial-news-topic, train and validation."""
    return dataset_rows("twitter-financial-news-topic", "topic")


def shift_labels(engine, n_train: int, n_held_min: int, share: float):
    """Real tweets of one topic the champion mostly gets wrong: `n_train` trainable labels plus
    every held-back twin met on the way (at least `n_held_min`). The topic is the one with the
    most expected errors (error rate on a 100-row sample times its number of rows)."""
    by_topic: dict[str, list[str]] = defaultdict(list)
    for text, topic in topic_rows():
        by_topic[topic].append(text)
    for texts in by_topic.values():
        random.Random(len(texts)).shuffle(texts)

    def errors(topic: str, texts: list[str]) -> list[str]:
        return [t for t, p in zip(texts, engine.classify(texts)) if p.topic != topic]

    rate = {topic: len(errors(topic, texts[:100])) / min(100, len(texts)) for topic, texts in by_topic.items()}
    topic = max(rate, key=lambda name: rate[name] * len(by_topic[name]))
    train, held = [], []
    texts = by_topic[topic]
    for start in range(0, len(texts), 256):
        for text in errors(topic, texts[start : start + 256]):
            mid = message_id(text, "shift")
            (held if is_held_back(mid, share) else train).append((mid, "topic", topic, text))
        if len(train) >= n_train and len(held) >= n_held_min:
            break
    return topic, train[:n_train], held


def shuffled_labels(n_per_task: int, seed: int = 5) -> list[tuple[str, str, str, str]]:
    """Real tweets of both tasks, each labeled with another tweet's label that differs from its own."""
    sentiment = {"bearish": "negative", "bullish": "positive", "neutral": "neutral"}
    pools = {
        "topic": topic_rows(),
        "sentiment": [(t, sentiment[label]) for t, label in dataset_rows("twitter-financial-news-sentiment", "label")],
    }
    out = []
    for task, pool in pools.items():
        rows = random.Random(seed).sample(pool, n_per_task)
        labels = [label for _, label in rows]
        rng = random.Random(seed + 1)
        for text, label in rows:
            choice = rng.choice([other for other in labels if other != label])
            out.append((message_id(text, f"shuffled-{task}"), task, choice, text))
    return out
