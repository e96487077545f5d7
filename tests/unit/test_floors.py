"""The import floors run one way: core <- streams <- models <- dashboards <- CLI (riskpulse.cli, riskpulse.demo).

Every module of the installed package is parsed (not imported) and each of its imports, at module
level or inside a function, is checked against the floors; importing by string is refused too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = {  # as in pyproject.toml's package-dir
    "riskpulse": REPO / "riskpulse", "riskpulse.streams": REPO / "streams", "riskpulse.models": REPO / "models",
    "riskpulse.dashboards": REPO / "dashboards", "riskpulse.deploy": REPO / "deploy", "riskpulse.sample": REPO / "data" / "sample",
}
FLOORS = [  # (prefix, floor); the longest matching prefix wins
    ("riskpulse.core", 0), ("riskpulse.deploy", 0), ("riskpulse.sample", 0),
    ("riskpulse.streams", 1), ("riskpulse.models", 2), ("riskpulse.dashboards", 3), ("riskpulse", 4),
]


def floor(module: str) -> int | None:
    for prefix, level in sorted(FLOORS, key=lambda item: -len(item[0])):
        if module == prefix or module.startswith(prefix + "."):
            return level
    return None


def package_modules() -> dict[str, Path]:
    """Module name -> file, for every module the wheel installs (the folders map as pyproject.toml says)."""
    modules = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            modules[".".join([package, *parts])] = path
    return modules


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}" if floor(f"{base}.{alias.name}") is not None else base)
                      for alias in node.names]
    return found


MODULES = package_modules()


def test_the_walk_sees_every_floor() -> None:
    assert {floor(name) for name in MODULES} == {0, 1, 2, 3, 4}
    assert {"riskpulse.core.settings", "riskpulse.streams.worker.batching", "riskpulse.models.serving.inference",
            "riskpulse.dashboards.queries", "riskpulse.cli"} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up_a_floor(module: str) -> None:
    own = floor(module)
    upward = [f"line {line}: {target} (floor {floor(target)})" for line, target in imports_of(MODULES[module], module)
              if floor(target) is not None and floor(target) > own]
    assert not upward, f"{module} (floor {own}) imports from above: {upward}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_imported_by_string(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    calls = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
        or (isinstance(node.func, ast.Name) and node.func.id in {"__import__", "import_module"}))]
    assert not calls, f"{module} imports by string at lines {calls}"


def test_a_planted_upward_import_is_caught(tmp_path: Path) -> None:
    """The check itself can fail: a core module that imports the dashboards is reported."""
    planted = tmp_path / "bad.py"
    planted.write_text("def f():\n    from riskpulse.dashboards import queries\n")
    targets = imports_of(planted, "riskpulse.core.bad")
    assert [(line, floor(t)) for line, t in targets] == [(2, 3)]
