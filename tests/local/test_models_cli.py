"""`riskpulse eval` and `riskpulse models …`: results on good CSVs, clear errors on bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from riskpulse.models.cli import register
from riskpulse.core.settings import get_settings
from tests.fixtures.models import write_csv


@pytest.fixture
def cli(quick_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RISKPULSE_REGISTRY_DIR", str(quick_registry))
    monkeypatch.setenv("RISKPULSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RISKPULSE_DEVICE", "cpu")
    get_settings.cache_clear()
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args))
    get_settings.cache_clear()


SENTIMENT_ROWS = [["$TSLA crashes 12% on recall", "negative"], ["Shares rally to record high", "positive"],
                  ["Company to hold annual meeting on May 3", "neutral"], ["Profit warning sinks stock", "negative"]]


def test_eval_json_has_the_agreed_fields_and_writes_reports(cli, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "sent.csv", ["text", "label"], SENTIMENT_ROWS)
    result = cli("eval", "--data", str(data), "--json", "--out", str(tmp_path / "reports"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["task"] == "sentiment" and report["n"] == 4
    assert 0 <= report["accuracy"] <= 1 and 0 <= report["macro_f1"] <= 1
    assert set(report["per_class"]) == {"negative", "neutral", "positive"}
    assert 0 <= report["ece"] <= 1 and report["ece_bins"] == 15
    assert report["negative"] == report["per_class"]["negative"] and report["negative"]["support"] == 2
    assert len(list((tmp_path / "reports").glob("*.json"))) == 1 and len(list((tmp_path / "reports").glob("*.png"))) == 1


def test_eval_maps_source_dataset_labels_automatically_and_by_name(cli, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "tweets.csv", ["text", "label"], [["$X sinks", "bearish"], ["$Y jumps", "bullish"]])
    auto = cli("eval", "--data", str(data), "--json")
    named = cli("eval", "--data", str(data), "--json", "--label-map", "twitter-financial-news-sentiment")
    assert auto.exit_code == 0 and named.exit_code == 0, auto.output + named.output
    assert set(json.loads(auto.output.splitlines()[-1])["per_class"]) == {"negative", "positive"}
    intents = write_csv(tmp_path / "bank.csv", ["text", "label"], [["my card has not arrived", "card_arrival"]])
    result = cli("eval", "--data", str(intents), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1])["task"] == "topic"


def test_eval_table_output(cli, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "sent.csv", ["text", "label"], SENTIMENT_ROWS)
    result = cli("eval", "--data", str(data), "--task", "sentiment")
    assert result.exit_code == 0, result.output
    assert "macro-F1=" in result.output and "precision" in result.output


@pytest.mark.parametrize(
    ("header", "rows", "extra", "message"),
    [
        (["body", "label"], [["x", "neutral"]], [], "needs 'text'"),
        (["text", "label"], [["x", "sideways"]], [], "unknown label(s) 'sideways'"),
        (["text", "label"], [["x", "neutral"]], ["--task", "mood"], "is not a task"),
        (["text", "label"], [["x", "up"]], ["--task", "sentiment", "--label-map", "up=skyward"], "not RiskPulse sentiment labels"),
        (["text", "label"], [["x", "neutral"]], ["--model", "no-such-version"], "'no-such-version'"),
    ],
)
def test_eval_errors_name_the_problem(cli, tmp_path: Path, header, rows, extra, message) -> None:
    data = write_csv(tmp_path / "bad.csv", header, rows)
    result = cli("eval", "--data", str(data), *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_eval_missing_file(cli, tmp_path: Path) -> None:
    result = cli("eval", "--data", str(tmp_path / "absent.csv"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_models_list_show_promote(cli, quick_registry: Path) -> None:
    listed = cli("models", "list")
    assert listed.exit_code == 0 and listed.output.startswith("* ")
    version = listed.output.split()[1]
    shown = json.loads(cli("models", "show", version).output)
    assert shown["current"] is True and "validation" in shown["metrics"]
    assert cli("models", "promote", version).exit_code == 0
    bad = cli("models", "promote", "nope")
    assert bad.exit_code == 2 and "'nope'" in bad.output


def test_promote_is_audited_in_the_store(cli, quick_registry: Path, chdb_store, chdb_settings, monkeypatch) -> None:
    monkeypatch.setenv("RISKPULSE_STORE", "chdb")
    monkeypatch.setenv("RISKPULSE_CHDB_PATH", str(chdb_settings.chdb_dir))
    get_settings.cache_clear()
    version = cli("models", "list").output.split()[1]
    result = cli("models", "promote", version)
    assert result.exit_code == 0 and "warning" not in result.output, result.output
    (row,) = chdb_store.query("SELECT role, action, target, detail FROM audit")
    assert (row["role"], row["action"], row["target"]) == ("cli", "promote", version)
    assert json.loads(row["detail"]) == {"previous": version}


def test_promote_with_the_store_unreachable_still_promotes_and_says_so(cli, quick_registry: Path, monkeypatch) -> None:
    monkeypatch.setenv("RISKPULSE_STORE", "server")
    monkeypatch.setenv("RISKPULSE_CLICKHOUSE_PORT", "1")  # nothing listens there
    get_settings.cache_clear()
    version = cli("models", "list").output.split()[1]
    result = cli("models", "promote", version)
    assert result.exit_code == 0, result.output
    assert f"current = {version}" in result.output and "audit row was not written" in result.output
