"""A plain (non-editable) install works on its own: one import name, packaged configs, the stack.

The wheel is built from this checkout and installed into a bare folder; everything then runs from
an empty directory that holds its own ``models/`` package, which must not shadow ours.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from riskpulse.core.settings import Settings
from riskpulse.streams.ops.stack import free_ports
from tests.fixtures.stack import settings_env

REPO = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


def test_wheel_installs_one_import_name_and_runs_from_anywhere(tmp_path: Path) -> None:
    wheels, target, cwd = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)], tmp_path, dict(os.environ))
    wheel = next(wheels.glob("riskpulse-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"riskpulse"}
    assert {"riskpulse/deploy/kafka/pom.xml", "riskpulse/deploy/alert-rules.yaml", "riskpulse/sample/messages.jsonl"} <= set(names)
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)], tmp_path, dict(os.environ))

    (cwd / "models").mkdir(parents=True)
    (cwd / "models" / "__init__.py").write_text("raise SystemExit('the user\\'s own models package was imported')\n")
    kafka, controller, native, http = free_ports(4)
    settings = Settings(home=tmp_path / "home", kafka_port=kafka, kafka_controller_port=controller,
                        clickhouse_port=native, clickhouse_http_port=http)
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(target)}
    probe = run([sys.executable, "-c", "import riskpulse.models.serving.inference as m, riskpulse.streams.alerts.rules as r;"
                 "print(m.__file__); print(r.DEFAULT_RULES.is_file())"], cwd, env)
    assert probe.stdout.split() == [str(target / "riskpulse/models/serving/inference.py"), "True"]
    cli = [sys.executable, "-m", "riskpulse.cli"]
    assert "stack" in run([*cli, "--help"], cwd, env).stdout
    try:
        run([*cli, "stack", "up"], cwd, env, timeout=600)
        assert run([*cli, "stack", "status"], cwd, env).stdout.count(" up ") == 2
    finally:
        run([*cli, "stack", "down"], cwd, env)
