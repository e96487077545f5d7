"""Soft-label files, the distillation loss and which texts may carry soft labels (no model needed)."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from riskpulse.models.training import distil
from riskpulse.models.training.data import SENTIMENT_LABELS, TOPIC_LABELS, DataError, Example, training_data
from tests.fixtures.models import write_csv


def uniform(n: int) -> list[float]:
    return [1 / n] * n


def soft_file(rows: dict[str, dict[str, list[float]]], **header) -> distil.SoftLabels:
    base = {"format": distil.FORMAT, "labels": {"topic": list(TOPIC_LABELS), "sentiment": list(SENTIMENT_LABELS)},
            "teacher": {"version": "t-1"}, "inputs": {}, "rows": len(rows)}
    return distil.SoftLabels(base | header, rows)


def row(sentiment: list[float]) -> dict[str, list[float]]:
    return {"topic": uniform(len(TOPIC_LABELS)), "sentiment": sentiment}


def test_soft_labels_round_trip(tmp_path: Path) -> None:
    rows = {distil.text_id("a"): row([0.7, 0.2, 0.1]), distil.text_id("b"): row([1e-7, 0.5, 0.5 - 1e-7])}
    soft_file(rows).save(tmp_path / "soft.jsonl.gz")
    loaded = distil.SoftLabels.load(tmp_path / "soft.jsonl.gz")
    assert loaded.header["teacher"] == {"version": "t-1"} and set(loaded.rows) == set(rows)
    assert loaded.rows[distil.text_id("a")]["sentiment"] == [0.7, 0.2, 0.1]
    assert loaded.rows[distil.text_id("b")]["sentiment"][0] == pytest.approx(1e-7, rel=1e-3)  # small ones keep their digits


@pytest.mark.parametrize(("edit", "message"), [
    (lambda h, rows: (h | {"format": "other/1"}, rows), "is not a riskpulse-soft-labels/1 file"),
    (lambda h, rows: (h | {"labels": {"topic": ["x"], "sentiment": list(SENTIMENT_LABELS)}}, rows), "other label sets"),
    (lambda h, rows: (h, rows[:1]), "header says 2"),
    (lambda h, rows: (h, [rows[0], {**rows[1], "sentiment": [0.9, 0.9, 0.9]}]), "line 3: sentiment is not a distribution"),
])
def test_a_damaged_file_is_refused_with_the_reason(tmp_path: Path, edit, message: str) -> None:
    path = tmp_path / "soft.jsonl.gz"
    soft_file({distil.text_id("a"): row([0.7, 0.2, 0.1]), distil.text_id("b"): row([0.1, 0.2, 0.7])}).save(path)
    with gzip.open(path, "rt") as fh:
        header, *rows = [json.loads(line) for line in fh]
    header, rows = edit(header, rows)
    with gzip.open(path, "wt") as fh:
        fh.writelines(json.dumps(x) + "\n" for x in [header, *rows])
    with pytest.raises(DataError, match=message):
        distil.SoftLabels.load(path)


def test_distillation_loss_is_zero_at_the_teacher_and_pulls_towards_it() -> None:
    teacher = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    for temperature in (1.0, 2.0, 4.0):
        assert distil.distillation_loss(teacher + 3.0, teacher, temperature).item() == pytest.approx(0, abs=1e-6)
    student = torch.zeros(2, 3, requires_grad=True)
    loss = distil.distillation_loss(student, teacher, 2.0)
    loss.backward()
    assert loss.item() > 0
    stepped = (student - 0.5 * student.grad).detach()
    assert distil.distillation_loss(stepped, teacher, 2.0) < loss  # one gradient step moves the student towards the teacher


def test_mixed_loss_weights_and_falls_back() -> None:
    hard, soft = torch.tensor(2.0), torch.tensor(4.0)
    assert distil.mixed_loss(hard, soft, 0.25).item() == pytest.approx(0.75 * 2 + 0.25 * 4)
    assert distil.mixed_loss(hard, None, 0.25) is hard and distil.mixed_loss(None, soft, 0.25) is soft
    assert distil.mixed_loss(None, None, 0.5) is None


def test_head_loss_uses_only_rows_with_soft_labels_and_only_distilled_heads() -> None:
    rows = [Example("up", "positive", "sentiment", "s"), Example("no label", "Earnings", "topic", "t"),
            Example("down", "", distil.TRANSFER_TASK, distil.SAMPLE_SOURCE)]
    soft = soft_file({distil.text_id("up"): row([0.1, 0.2, 0.7]), distil.text_id("down"): row([0.8, 0.1, 0.1])})
    targets = distil.soft_targets(soft, rows, ("sentiment",), temperature=2.0, weight=0.5)
    assert np.isnan(targets.sentiment[1]).all() and not np.isnan(targets.sentiment[[0, 2]]).any()
    student, hard = torch.zeros(3, 3), torch.tensor(1.0)
    expected_soft = distil.distillation_loss(student[[0, 2]], torch.from_numpy(targets.sentiment[[0, 2]]), 2.0)
    got = targets.head_loss("sentiment", np.array([0, 1, 2]), student, hard)
    assert got.item() == pytest.approx(0.5 * 1.0 + 0.5 * expected_soft.item(), rel=1e-5)
    assert targets.head_loss("sentiment", np.array([1]), student[:1], hard) is hard  # no soft label in the batch
    assert targets.head_loss("topic", np.array([0, 2]), torch.zeros(2, len(TOPIC_LABELS)), hard) is hard  # not distilled


def test_labelling_set_leaves_out_every_evaluation_text(data_root: Path, tmp_path: Path) -> None:
    write_csv(data_root / "banking77/test.csv", ["text", "label"], [["card never came", "card_arrival"]])
    write_csv(data_root / "financial-phrasebank/test.csv", ["text", "label"], [["Sales fell .", "negative"]])
    complaint = "The collector keeps calling about a debt I never owed. " * 20
    write_csv(data_root / "cfpb-complaints-sample/test.csv", ["text", "label"], [[complaint, "Debt collection"]])
    sample = tmp_path / "sample.jsonl"
    sample.write_text("\n".join(json.dumps({"text": t}) for t in
                                ["$Z slides", "card never came", "Sales fell .", complaint[:500], "an unseen headline",
                                 "$X falls 10%"]))
    chosen = distil.labelling_set(data_root, sample)
    data = training_data(data_root)
    held = {r.text for rows in data.validation.values() for r in rows}
    assert chosen.texts[distil.SAMPLE_SOURCE] == ["an unseen headline"]  # "$X falls 10%" is a training text already
    assert chosen.excluded[distil.SAMPLE_SOURCE] == 4  # the cut complaint too
    labelled = {t for texts in chosen.texts.values() for t in texts}
    assert not labelled & held and {r.text for r in data.train} <= labelled
    assert set(chosen.inputs) >= {"banking77/test.csv", "financial-phrasebank/test.csv", distil.SAMPLE_SOURCE}


def test_transfer_rows_come_from_the_sample_the_teacher_labelled(tmp_path: Path, caplog) -> None:
    sample = tmp_path / "sample.jsonl"
    sample.write_text("\n".join(json.dumps({"text": t}) for t in ["known", "new one", "unlabelled"]))
    soft = soft_file({distil.text_id(t): row(uniform(3)) for t in ("known", "new one")},
                     inputs={distil.SAMPLE_SOURCE: distil.fingerprint(sample)}, sample_path=str(sample))
    rows = distil.transfer_rows(soft, [Example("known", "neutral", "sentiment", "s")])
    assert [(r.text, r.task, r.source) for r in rows] == [("new one", distil.TRANSFER_TASK, distil.SAMPLE_SOURCE)]
    sample.write_text(json.dumps({"text": "changed"}))
    with caplog.at_level(logging.WARNING, logger="riskpulse.models"):
        assert distil.transfer_rows(soft, []) == []
    assert "is not here" in caplog.text


def test_changed_inputs_are_named(caplog) -> None:
    soft = soft_file({}, inputs={"a/train.csv": "1", "b/train.csv": "2"})
    with caplog.at_level(logging.WARNING, logger="riskpulse.models"):
        distil.check_inputs(soft, {"a/train.csv": "1", "b/train.csv": "changed"}, Path("soft.jsonl.gz"))
    assert "b/train.csv" in caplog.text and "a/train.csv" not in caplog.text
    assert distil.inputs_checksum({"a": "1", "b": "2"}) == distil.inputs_checksum({"b": "2", "a": "1"})


def test_training_distils_from_the_bundled_file_unless_told_otherwise(tmp_path: Path) -> None:
    from riskpulse.core.settings import Settings

    bundled = distil.bundled_soft_labels()
    assert distil.default_soft_labels(Settings(home=tmp_path)) == bundled
    assert distil.default_soft_labels(Settings(home=tmp_path, distil_soft_labels=tmp_path / "mine.jsonl.gz")) == tmp_path / "mine.jsonl.gz"
    assert distil.default_soft_labels(Settings(home=tmp_path, distil=False)) is None
    assert distil.default_soft_labels(Settings(home=tmp_path), tmp_path / "given.jsonl.gz") == tmp_path / "given.jsonl.gz"
    assert distil.default_soft_labels(Settings(home=tmp_path, distil=False), tmp_path / "given.jsonl.gz") is None


def test_the_bundled_soft_labels_load_and_say_how_they_were_made() -> None:
    soft = distil.SoftLabels.load(distil.bundled_soft_labels())
    teacher = soft.header["teacher"]
    assert teacher["version"] and teacher["validation_macro_f1"]["twitter-financial-news-sentiment"] > 0.84
    assert soft.header["rows"] == len(soft.rows) > 10_000
    assert distil.inputs_checksum(soft.header["inputs"]) == soft.header["inputs_sha256"]
