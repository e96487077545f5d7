"""`riskpulse entities FILE|-`: one JSON line per input line, with spans that index the text."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from riskpulse.streams.cli import register


def riskpulse(*args: str, stdin: str | None = None):
    root = typer.Typer()
    register(root)
    return CliRunner().invoke(root, list(args), input=stdin)


ROWS = [{"id": "a", "text": "$AAPL and JPMorgan fall"}, {"id": 7, "text": "我在招商银行的卡被盗刷"}, {"id": "c", "text": "no names"}]


def test_file_in_json_lines_out(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS) + "\n", encoding="utf-8")
    result = riskpulse("entities", str(path))
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", 7, "c"]
    assert out[0]["entities"] == [{"id": "AAPL", "name": "Apple", "start": 0, "end": 5},
                                  {"id": "JPM", "name": "JPMorgan Chase", "start": 10, "end": 18}]
    first = out[1]["entities"][0]
    assert ROWS[1]["text"][first["start"]:first["end"]] == "招商银行" and first["id"] == "3968.HK"
    assert out[2]["entities"] == []


def test_stdin_and_bad_lines_go_to_stderr_with_exit_1():
    result = riskpulse("entities", "-", stdin='{"id": 1, "text": "Goldman Sachs"}\nnot json\n{"id": 2}\n')
    assert result.exit_code == 1
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [1]
    assert "-:2: expected a JSON object" in result.stderr and "-:3:" in result.stderr


def test_missing_file_exits_2(tmp_path):
    result = riskpulse("entities", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2 and "No such file" in result.stderr
