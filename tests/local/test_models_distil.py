"""Distillation end to end on a tiny slice of the real data: the bundled MiniLM as its own teacher.

`riskpulse distil teacher` fine-tunes a (quick) teacher and writes soft labels; `riskpulse train
--soft-labels` trains a calibrated student from them; `riskpulse eval` reports per source. This
proves the plumbing, not the quality: a few hundred rows, one thread, one epoch each.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from riskpulse.core.resources import sample_messages
from riskpulse.core.settings import Settings, get_settings
from riskpulse.models.cli import register
from riskpulse.models.serving.inference import Engine
from riskpulse.models.serving.network import bundled_base_model
from riskpulse.models.serving.registry import Registry
from riskpulse.models.training import distil
from riskpulse.models.training.calibration import softmax
from riskpulse.models.training.data import training_data
from tests.fixtures.models import shared_data

# rows kept per file: enough for every step to run on real texts, few enough for seconds of training
TINY = {"twitter-financial-news-sentiment/train.csv": 150, "twitter-financial-news-sentiment/validation.csv": 40,
        "twitter-financial-news-topic/train.csv": 150, "twitter-financial-news-topic/validation.csv": 40,
        "banking77/train.csv": 80, "banking77/test.csv": 30, "cfpb-complaints-sample/train.csv": 40,
        "cfpb-complaints-sample/test.csv": 10, "financial-phrasebank/train.csv": 20, "financial-phrasebank/test.csv": 40}


def tiny_root(root: Path) -> Path:
    """A random slice of each shared data file, same layout and columns."""
    for name, n in TINY.items():
        with (shared_data() / name).open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows, columns = list(reader), reader.fieldnames
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        with (root / name).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, columns)
            writer.writeheader()
            writer.writerows(random.Random(7).sample(rows, n))
    return root


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory):
    """A teacher's soft-label file and a student trained from it, both made through the CLI."""
    tmp = tmp_path_factory.mktemp("distil")
    root = tiny_root(tmp / "data")
    validation_texts = [row["text"] for row in csv.DictReader((root / "twitter-financial-news-sentiment/validation.csv").open())]
    sample = tmp / "sample.jsonl"  # 30 bundled messages and 5 validation tweets, which must get no soft label
    lines = sample_messages().read_text(encoding="utf-8").splitlines()[:30]
    sample.write_text("\n".join(lines + [json.dumps({"text": t}) for t in validation_texts[:5]]) + "\n", encoding="utf-8")
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"REGISTRY_DIR": tmp / "registry", "HOME": tmp / "home", "DEVICE": "cpu", "PRECISION": "fp32",
                            "SHARED_DATA": root, "DISTIL_HEADS": '["sentiment", "topic"]'}.items():
            env.setenv(f"RISKPULSE_{name}", str(value))
        get_settings.cache_clear()
        common = ["--quick", "--epochs", "1", "--threads", "1", "--data", str(root)]
        teacher = runner.invoke(app, ["distil", "teacher", "--base-model", str(bundled_base_model()), "--out",
                                      str(tmp / "soft.jsonl.gz"), "--sample", str(sample), *common])
        assert teacher.exit_code == 0, teacher.output
        student = runner.invoke(app, ["train", "--soft-labels", str(tmp / "soft.jsonl.gz"), "--tag", "student", *common])
        assert student.exit_code == 0, student.output
        evaluated = runner.invoke(app, ["eval", "--json", "--out", str(tmp / "reports")])
        table = runner.invoke(app, ["eval"])
        get_settings.cache_clear()
    yield {"root": root, "sample": sample, "soft": tmp / "soft.jsonl.gz", "registry": tmp / "registry",
           "teacher_output": teacher.output, "student": re.search(r"\d{8}-\d{6}-quickstudent-[0-9a-f]{6}$", student.output.strip()).group(0),
           "validation_texts": validation_texts, "eval": evaluated, "table": table}


def test_teacher_writes_a_self_describing_soft_label_file(distilled) -> None:
    soft = distil.SoftLabels.load(distilled["soft"])
    header = soft.header
    registry = Registry(distilled["registry"])
    teacher = header["teacher"]["version"]
    assert teacher in registry.versions() and "teacher" in teacher and registry.current() != teacher  # registered, not promoted
    assert set(header["teacher"]["validation_macro_f1"]) == {"twitter-financial-news-sentiment", "twitter-financial-news-topic",
                                                            "banking77", "cfpb-complaints-sample"}
    assert header["inputs"][distil.SAMPLE_SOURCE] == distil.fingerprint(distilled["sample"])
    assert header["inputs"]["twitter-financial-news-sentiment/train.csv"] == distil.fingerprint(
        distilled["root"] / "twitter-financial-news-sentiment/train.csv")
    assert header["inputs_sha256"] == distil.inputs_checksum(header["inputs"])
    data = training_data(distilled["root"])
    assert {distil.text_id(r.text) for r in data.train} <= set(soft.rows)  # every training text, both heads
    assert header["excluded_evaluation_texts_by_source"][distil.SAMPLE_SOURCE] >= 5
    held = {r.text for rows in data.validation.values() for r in rows}
    assert not {distil.text_id(t) for t in held} & set(soft.rows)
    assert header["texts_by_source"][distil.SAMPLE_SOURCE] > 0 and header["rows"] == len(soft.rows)
    assert "soft labels in" in distilled["teacher_output"]


def test_the_teachers_distributions_are_its_raw_softmax(distilled) -> None:
    soft = distil.SoftLabels.load(distilled["soft"])
    settings = Settings(registry_dir=distilled["registry"], device="cpu", precision="fp32")
    engine = Engine.load(settings, soft.header["teacher"]["version"])
    texts = [r.text for r in training_data(distilled["root"]).train[:20]]
    topic_logits, sentiment_logits = engine.logits(texts)
    for text, topic, sentiment in zip(texts, softmax(topic_logits), softmax(sentiment_logits)):
        stored = soft.rows[distil.text_id(text)]
        assert np.allclose(stored["sentiment"], sentiment, rtol=1e-3, atol=1e-5)
        assert np.allclose(stored["topic"], topic, rtol=1e-3, atol=1e-5)


def test_student_learns_from_soft_labels_and_is_calibrated(distilled) -> None:
    registry = Registry(distilled["registry"])
    student = distilled["student"]
    info = registry.info(student)
    assert registry.current() == student and info["training"]["soft_labels"] == str(distilled["soft"])
    coverage = info["metrics"]["distillation"]
    assert coverage["heads"] == ["sentiment", "topic"] and coverage["temperature"] == 2.0 and coverage["weight"] == 0.5
    assert coverage["rows_with_soft_labels"] == coverage["rows"]  # the same data: every row has its teacher label
    assert coverage["rows_by_task"][distil.TRANSFER_TASK] == coverage["by_source"][distil.SAMPLE_SOURCE] > 0
    calibration = info["metrics"]["calibration"]
    assert calibration["sentiment"]["n"] == 40 and 0 <= calibration["sentiment"]["ece_after"] <= 1
    assert calibration["topic"]["n"] > 40  # news topic and both customer hold-outs
    engine = Engine.load(Settings(registry_dir=distilled["registry"], device="cpu", precision="fp32"))
    saved = json.loads((registry.path(student) / "calibration.json").read_text())
    assert (engine.temperatures.sentiment, engine.temperatures.topic) == (saved["sentiment"], saved["topic"])
    assert engine.temperatures.sentiment == calibration["sentiment"]["temperature"]


def test_eval_reports_each_source_and_the_negative_class(distilled) -> None:
    assert distilled["eval"].exit_code == 0, distilled["eval"].output
    report = json.loads(distilled["eval"].output.strip().splitlines()[-1])
    assert report["model_version"] == distilled["student"]
    sources = report["sources"]
    assert set(sources) == {"news tweets · sentiment", "phrasebank · sentiment", "news tweets · topic", "banking77 · topic",
                            "cfpb · topic", "customer sets · topic"}
    assert sources["phrasebank · sentiment"]["n"] == 40 and sources["customer sets · topic"]["n"] == 40
    negative = sources["news tweets · sentiment"]["negative"]
    assert set(negative) == {"precision", "recall", "f1", "support"} and negative["support"] > 0
    assert "negative" not in sources["banking77 · topic"]
    assert all(0 <= r["ece"] <= 1 for r in sources.values())
    table = distilled["table"].output
    assert distilled["table"].exit_code == 0 and "phrasebank · sentiment" in table and "negative P / R / F1" in table
