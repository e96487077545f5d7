"""`riskpulse train`, `riskpulse eval` and `riskpulse models list|show|promote`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, get_args

import typer

from riskpulse.models.training.data import DATASET_TASK, LABEL_MAPS, TASK_LABELS, DataError, read_csv
from riskpulse.core import RiskPulseError
from riskpulse.core.settings import PrecisionName, get_settings

log = logging.getLogger("riskpulse.models")
models_app = typer.Typer(no_args_is_help=True, help="List, inspect and promote trained model versions.")


def _fail(error: Exception) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(2)


def train(
    quick: bool = typer.Option(False, "--quick", help="Subsample and one epoch (demos, tests; minutes on CPU)."),
    epochs: int = typer.Option(3, help="Most epochs; early stopping on validation macro-F1 may end sooner."),
    batch_size: int = typer.Option(32, help="Training batch size."),
    max_length: int = typer.Option(64, help="Tokens per training text."),
    lr: float = typer.Option(1e-4, help="Encoder learning rate."),
    seed: int = typer.Option(13, help="Random seed (data order, init, dropout)."),
    base_model: Optional[str] = typer.Option(None, help="Local pretrained encoder directory; default: bundled MiniLM."),
    forked_layers: int = typer.Option(1, help="Top encoder layers kept per task (0 = all shared)."),
    frozen_layers: int = typer.Option(
        0, help="Bottom encoder layers kept pretrained: faster steps on slow CPUs, lower macro-F1 (see README)."),
    data: Optional[Path] = typer.Option(None, help="Labeled data root; default RISKPULSE_SHARED_DATA."),
    precision: Optional[str] = typer.Option(
        None, help="auto, fp32, bf16 or fp16; default RISKPULSE_PRECISION (auto: bf16 only where the CPU or GPU computes it natively)."),
    threads: Optional[int] = typer.Option(None, help="Torch CPU threads; default: torch's choice (all cores)."),
    tag: str = typer.Option("", help="Suffix for the version name."),
    promote: bool = typer.Option(True, "--promote/--no-promote", help="Make the new version current."),
) -> None:
    """Fine-tune the topic + sentiment model and register it as a new version."""
    from riskpulse.models.training.trainer import TrainArgs
    from riskpulse.models.training.trainer import train as run_training

    args = TrainArgs(base_model=base_model, forked_layers=forked_layers, frozen_layers=frozen_layers, epochs=epochs,
                     batch_size=batch_size, max_length=max_length, lr=lr, seed=seed, quick=quick, threads=threads, tag=tag)
    settings = get_settings()
    if precision:
        if precision not in get_args(PrecisionName):
            raise _fail(ValueError(f"--precision {precision!r}: one of {', '.join(get_args(PrecisionName))}"))
        settings = settings.model_copy(update={"precision": precision})
    try:
        version = run_training(settings, args, promote=promote, data_root=data)
    except RiskPulseError as error:
        raise _fail(error) from None
    typer.echo(version)


def resolve_label_map(spec: str | None, labels: set[str], task: str | None, hint: str) -> tuple[dict[str, str], str | None]:
    """A source→RiskPulse map and the task it implies: from --label-map, or guessed from the labels."""
    if spec:
        if spec in LABEL_MAPS:
            return LABEL_MAPS[spec], DATASET_TASK[spec]
        if Path(spec).is_file():
            return json.loads(Path(spec).read_text(encoding="utf-8")), task
        try:
            return dict(pair.split("=", 1) for pair in spec.split(",")), task
        except ValueError:
            raise DataError(
                f"--label-map {spec!r} is neither a known dataset ({sorted(LABEL_MAPS)}), a JSON file, nor 'src=dst,…'"
            ) from None
    tasks = [task] if task else ["sentiment", "topic"]
    for name in tasks:
        if labels <= set(TASK_LABELS[name]):
            return {label: label for label in labels}, name
    known = sorted(LABEL_MAPS, key=lambda name: name not in hint)
    for name in known:
        if labels <= set(LABEL_MAPS[name]) and (task is None or DATASET_TASK[name] == task):
            return LABEL_MAPS[name], DATASET_TASK[name]
    return {label: label for label in labels if any(label in TASK_LABELS[t] for t in tasks)}, task


def evaluate_cmd(
    data: Path = typer.Option(..., "--data", help="CSV with columns text,label (or text,topic / text,sentiment)."),
    task: Optional[str] = typer.Option(None, help="sentiment or topic; default: inferred from the labels."),
    model: Optional[str] = typer.Option(None, help="Model version; default: the registry's current."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    label_map: Optional[str] = typer.Option(None, help="Dataset name, JSON file or 'src=dst,…' mapping source labels."),
    out: Optional[Path] = typer.Option(None, help="Report directory; default <home>/reports."),
) -> None:
    """Score a model on a labeled CSV: accuracy, macro-F1, per-class table, JSON report and confusion PNG."""
    from riskpulse.models.training.data import map_labels
    from riskpulse.models.training.evaluation import evaluate, format_table, write_report
    from riskpulse.models.serving.inference import Engine

    settings = get_settings()
    try:
        if task is not None and task not in TASK_LABELS:
            raise DataError(f"--task {task!r} is not a task; use 'sentiment' or 'topic'")
        pairs = read_csv(data)
        if not pairs:
            raise DataError(f"{data} has no rows to evaluate")
        kept = [(text, label) for text, label in pairs if text.strip()]
        if len(kept) < len(pairs):
            log.warning("skipping %d rows of %s with empty text", len(pairs) - len(kept), data)
        mapping, task = resolve_label_map(label_map, {label for _, label in kept}, task, str(data))
        mapped = map_labels(kept, mapping, str(data))
        task = task or next((t for t in TASK_LABELS if {l for _, l in mapped} <= set(TASK_LABELS[t])), None)
        if task is None:
            raise DataError(f"{data}: labels fit neither task; pass --task and --label-map")
        outside = sorted({label for _, label in mapped} - set(TASK_LABELS[task]))
        if outside:
            raise DataError(f"{data}: label(s) {outside[:8]} are not RiskPulse {task} labels; pass --label-map")
        engine = Engine.load(settings, model)
        result = evaluate(engine, [t for t, _ in mapped], [l for _, l in mapped], task)
    except RiskPulseError as error:
        raise _fail(error) from None
    result["data"] = str(data)
    result["truncated"] = engine.texts_truncated
    name = f"eval-{engine.version}-{data.parent.name}-{data.stem}-{task}"
    report_dir = out or settings.home / "reports"
    write_report(result, report_dir / f"{name}.json", report_dir / f"{name}.png", f"{engine.version}\n{data.parent.name}/{data.name} · {task}")
    if as_json:
        typer.echo(json.dumps({k: v for k, v in result.items() if k != "confusion"}))
    else:
        typer.echo(f"model {engine.version} · task {task} · {data} ({engine.texts_truncated} texts truncated)")
        typer.echo(format_table(result))
        typer.echo(f"report: {report_dir / name}.json, confusion matrix: {report_dir / name}.png")


@models_app.command("list")
def list_versions() -> None:
    """Versions in the registry, oldest first; * marks the current one."""
    from riskpulse.models.serving.registry import Registry

    registry = Registry(get_settings().registry_root)
    current = registry.current()
    for version in registry.versions():
        score = registry.info(version).get("metrics", {}).get("score")
        typer.echo(f"{'*' if version == current else ' '} {version}  score={score if score is None else round(score, 4)}")


@models_app.command("show")
def show(version: Optional[str] = typer.Argument(None, help="Version; default: current.")) -> None:
    """A version's training arguments, validation metrics and data fingerprints as JSON."""
    from riskpulse.models.serving.registry import Registry

    registry = Registry(get_settings().registry_root)
    try:
        typer.echo(json.dumps(registry.info(registry.resolve(version)), indent=2))
    except RiskPulseError as error:
        raise _fail(error) from None


@models_app.command("promote")
def promote(version: str = typer.Argument(..., help="Version to serve.")) -> None:
    """Point `current` at a version (atomic)."""
    from riskpulse.models.serving.registry import Registry

    try:
        Registry(get_settings().registry_root).promote(version)
    except RiskPulseError as error:
        raise _fail(error) from None
    typer.echo(f"current = {version}")


def register(app: typer.Typer) -> None:
    """Add the model commands to the `riskpulse` root."""
    app.command("train")(train)
    app.command("eval")(evaluate_cmd)
    app.add_typer(models_app, name="models")
