"""Loaders and label mapping on small CSVs written by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskpulse.models.training.data import (
    CUSTOMER_TOPICS, LABEL_MAPS, NEWS_TOPICS, TOPIC_LABELS, DataError, load_dataset, map_labels, read_csv,
    split_holdout, subsample, training_data,
)
from tests.fixtures.models import write_csv


def test_sentiment_loader_maps_bearish_bullish_and_drops_empty_text(data_root: Path) -> None:
    rows = load_dataset(data_root, "twitter-financial-news-sentiment", "train")
    assert [(r.text, r.label, r.task) for r in rows] == [
        ("$X falls 10%", "negative", "sentiment"), ("$Y soars", "positive", "sentiment"), ("Fed meets today", "neutral", "sentiment"),
    ]


def test_topic_loader_reads_topic_column(data_root: Path) -> None:
    rows = load_dataset(data_root, "twitter-financial-news-topic", "train")
    assert [r.label for r in rows] == ["Earnings", "Fed | Central Banks"]
    assert all(r.task == "topic" for r in rows)


def test_customer_loaders_map_onto_customer_taxonomy(data_root: Path) -> None:
    banking = load_dataset(data_root, "banking77", "train")
    cfpb = load_dataset(data_root, "cfpb-complaints-sample", "train")
    assert {r.label for r in banking} == {"Customer | Cards", "Customer | Fraud & Disputes"}
    assert {r.label for r in cfpb} == {"Customer | Debt Collection", "Customer | Credit Reporting"}


def test_taxonomy_covers_every_source_label() -> None:
    assert len(NEWS_TOPICS) == 20 and len(set(TOPIC_LABELS)) == len(NEWS_TOPICS) + len(CUSTOMER_TOPICS)
    assert len(LABEL_MAPS["banking77"]) == 77
    assert set(LABEL_MAPS["banking77"].values()) | set(LABEL_MAPS["cfpb-complaints-sample"].values()) == set(CUSTOMER_TOPICS)
    assert set(LABEL_MAPS["twitter-financial-news-sentiment"].values()) == {"negative", "neutral", "positive"}


def test_unknown_label_is_an_error_naming_it(tmp_path: Path) -> None:
    write_csv(tmp_path / "twitter-financial-news-sentiment/train.csv", ["text", "label"], [["a", "bearish"], ["b", "moon"]])
    with pytest.raises(DataError, match="'moon'"):
        load_dataset(tmp_path, "twitter-financial-news-sentiment", "train")


def test_missing_column_is_an_error_naming_the_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["body", "label"], [["a", "neutral"]])
    with pytest.raises(DataError, match=r"needs 'text'"):
        read_csv(path)


def test_missing_file_and_unknown_dataset_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset(tmp_path, "imdb", "train")


def test_map_labels_keeps_order() -> None:
    assert map_labels([("a", "x"), ("b", "y")], {"x": "1", "y": "2"}, "here") == [("a", "1"), ("b", "2")]


def test_training_data_uses_validation_files_and_holds_out_otherwise(data_root: Path) -> None:
    data = training_data(data_root, holdout=0.3, seed=1)
    assert [r.text for r in data.validation["twitter-financial-news-sentiment"]] == ["$Z slides"]
    assert [r.text for r in data.validation["twitter-financial-news-topic"]] == ["Oil up"]
    train_texts = {r.text for r in data.train}
    for name in ("banking77", "cfpb-complaints-sample"):
        held = {r.text for r in data.validation[name]}
        assert held and not held & train_texts
    assert "$Z slides" not in train_texts and "Oil up" not in train_texts
    assert set(data.fingerprints) >= {"banking77/train.csv", "twitter-financial-news-topic/validation.csv"}
    assert all(len(h) == 64 for h in data.fingerprints.values())


def test_holdout_and_subsample_are_deterministic(data_root: Path) -> None:
    rows = load_dataset(data_root, "banking77", "train")
    assert split_holdout(rows, 0.3, 5) == split_holdout(rows, 0.3, 5)
    keep, held = split_holdout(rows, 0.3, 5)
    assert len(keep) + len(held) == len(rows)
    assert subsample(rows, 5, 3) == subsample(rows, 5, 3) and len(subsample(rows, 5, 3)) == 5


def test_subsample_fraction_keeps_each_dataset(data_root: Path) -> None:
    rows = load_dataset(data_root, "banking77", "train") + load_dataset(data_root, "cfpb-complaints-sample", "train")
    picked = subsample(rows, None, 1, fraction=0.1)
    assert sorted(r.source for r in picked) == ["banking77"] * 3 + ["cfpb-complaints-sample"] * 2
