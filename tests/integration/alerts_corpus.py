"""Real finance texts as scored records, for alert replays and false-alert backtests.

No shared dataset carries both labels, so each text keeps the label its dataset gives it
and gets the other from a small TF-IDF + complement naive Bayes model trained on the other
dataset's training split: sentiment tweets keep their human sentiment (bearish →
negative), topic tweets keep their human topic. Cheap (seconds on CPU) and independent
of the product's classifier, so alert tests do not wait for model training.
"""

from __future__ import annotations

import csv
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from riskpulse.core.clock import from_epoch
from riskpulse.core.schema import ScoredMessage

log = logging.getLogger("riskpulse.alerts")
SENTIMENT = {"bearish": "negative", "bullish": "positive", "neutral": "neutral"}
MODEL_VERSION = "corpus-tfidf-cnb-1"


@dataclass(frozen=True)
class Labeled:
    id: str
    text: str
    topic: str
    sentiment: str


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if r["text"].strip()]


def _model(texts: list[str], labels: list[str]):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import ComplementNB
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(min_df=2, sublinear_tf=True), ComplementNB())
    return model.fit(texts, labels)


def load_corpus(shared_data: Path) -> list[Labeled]:
    """Sentiment tweets (human sentiment) + topic tweets (human topic), ~32k texts."""
    sent_dir, topic_dir = shared_data / "twitter-financial-news-sentiment", shared_data / "twitter-financial-news-topic"
    sent_train = _rows(sent_dir / "train.csv")
    topic_train = _rows(topic_dir / "train.csv")
    topic_model = _model([r["text"] for r in topic_train], [r["topic"] for r in topic_train])
    sent_model = _model([r["text"] for r in sent_train], [SENTIMENT[r["label"]] for r in sent_train])
    sent_rows = sent_train + _rows(sent_dir / "validation.csv")
    topic_rows = topic_train + _rows(topic_dir / "validation.csv")
    topics = topic_model.predict([r["text"] for r in sent_rows])
    sentiments = sent_model.predict([r["text"] for r in topic_rows])
    corpus = [Labeled(f"s-{i}", r["text"], str(t), SENTIMENT[r["label"]]) for i, (r, t) in enumerate(zip(sent_rows, topics))]
    corpus += [Labeled(f"t-{i}", r["text"], r["topic"], str(s)) for i, (r, s) in enumerate(zip(topic_rows, sentiments))]
    log.info("alert corpus: %d texts, %.1f%% negative", len(corpus), 100 * sum(c.sentiment == "negative" for c in corpus) / len(corpus))
    return corpus


def scored(item: Labeled, ts: float, channel: str = "replay", source: str = "news", suffix: str = "") -> ScoredMessage:
    return ScoredMessage(
        id=f"{item.id}{suffix}", source=source, channel=channel, ts=from_epoch(ts),
        text=item.text, topic=item.topic, topic_prob=0.9, sentiment=item.sentiment, sentiment_prob=0.9,
        model_version=MODEL_VERSION,
    )


def shuffled(corpus: list[Labeled], rounds: int, seed: int = 0) -> list[tuple[Labeled, str]]:
    """The corpus ``rounds`` times, each round in a fresh random order (ids made unique per round)."""
    rng = random.Random(seed)
    out = []
    for r in range(rounds):
        order = corpus[:]
        rng.shuffle(order)
        out += [(item, f"-r{r}") for item in order]
    return out
