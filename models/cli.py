"""`riskpulse train`, `riskpulse eval`, `riskpulse distil teacher` and `riskpulse models list|show|promote`."""

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
distil_app = typer.Typer(no_args_is_help=True, help="Knowledge distillation: a teacher's soft labels for the student.")


def _fail(error: Exception) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(2)


def train(
    quick: bool = typer.Option(False, "--quick", help="Subsample and one epoch (demos, tests; minutes on CPU)."),
    epochs: Optional[int] = typer.Option(
        None, min=1, help="Most epochs; default 2 on a CPU, 3 on a GPU; early stopping on validation macro-F1 may end sooner."),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Rows per training step; default 32 on a CPU, 128 on a GPU (the learning rates scale by the square root)."),
    max_length: int = typer.Option(64, help="Tokens per training text."),
    lr: float = typer.Option(1e-4, help="Encoder learning rate at batch 32."),
    seed: int = typer.Option(13, help="Random seed (data order, init, dropout)."),
    base_model: Optional[str] = typer.Option(None, help="Local pretrained encoder directory; default: bundled MiniLM."),
    forked_layers: int = typer.Option(1, help="Top encoder layers kept per task (0 = all shared)."),
    frozen_layers: int = typer.Option(
        0, help="Bottom encoder layers kept pretrained: faster steps on slow CPUs, lower macro-F1 (see README)."),
    dropout: Optional[float] = typer.Option(None, min=0.0, max=0.9, help="Training-time dropout rate everywhere (default 0: faster CPU steps, same macro-F1; the encoder's own is 0.1)."),
    data: Optional[Path] = typer.Option(None, help="Labeled data root; default RISKPULSE_SHARED_DATA."),
    precision: Optional[str] = typer.Option(
        None, help="auto, fp32, bf16 or fp16; default RISKPULSE_PRECISION (auto: bf16 only where the CPU or GPU computes it natively)."),
    threads: Optional[int] = typer.Option(None, help="Torch CPU threads; default: torch's choice (all cores)."),
    tag: str = typer.Option("", help="Suffix for the version name."),
    promote: bool = typer.Option(True, "--promote/--no-promote", help="Make the new version current."),
    soft_labels: Optional[Path] = typer.Option(
        None, help="Soft-label file from `riskpulse distil teacher` to distil from; default RISKPULSE_DISTIL_SOFT_LABELS, "
        "else the bundled teacher's. Temperature, weight, heads: RISKPULSE_DISTIL_*."),
    distil: Optional[bool] = typer.Option(
        None, "--distil/--no-distil", help="Learn from the soft labels too (default RISKPULSE_DISTIL, on) or from hard labels only."),
) -> None:
    """Fine-tune the topic + sentiment model and register it as a new version."""
    from riskpulse.models.training.distil import default_soft_labels
    from riskpulse.models.training.trainer import TrainArgs
    from riskpulse.models.training.trainer import train as run_training

    settings = _with_precision(get_settings(), precision)
    if distil is not None:
        settings = settings.model_copy(update={"distil": distil})
    soft_labels = default_soft_labels(settings, soft_labels)
    args = TrainArgs(base_model=base_model, forked_layers=forked_layers, frozen_layers=frozen_layers, epochs=epochs,
                     batch_size=batch_size, max_length=max_length, lr=lr, seed=seed, quick=quick, threads=threads, tag=tag,
                     soft_labels=str(soft_labels) if soft_labels else None,
                     **({} if dropout is None else {"dropout": dropout}))  # unset: the trainer's default
    try:
        version = run_training(settings, args, promote=promote, data_root=data)
    except RiskPulseError as error:
        raise _fail(error) from None
    typer.echo(version)


def _with_precision(settings, precision: str | None):
    """The settings with --precision applied (checked against the names the precision rule knows)."""
    if not precision:
        return settings
    if precision not in get_args(PrecisionName):
        raise _fail(ValueError(f"--precision {precision!r}: one of {', '.join(get_args(PrecisionName))}"))
    return settings.model_copy(update={"precision": precision})


@distil_app.command("teacher")
def distil_teacher(
    base_model: str = typer.Option(..., help="Local pretrained encoder directory of the teacher (e.g. a base-size model)."),
    out: Path = typer.Option(..., help="Soft-label file to write (.jsonl.gz)."),
    epochs: int = typer.Option(3, help="Most epochs; early stopping on validation macro-F1 may end sooner."),
    batch_size: int = typer.Option(32, help="Training batch size."),
    max_length: int = typer.Option(64, help="Tokens per training text."),
    lr: float = typer.Option(1e-4, help="Encoder learning rate; train's default, with which all-mpnet-base-v2 reached 0.852 in one epoch."),
    seed: int = typer.Option(13, help="Random seed (data order, init, dropout, customer hold-out)."),
    forked_layers: int = typer.Option(1, help="Top encoder layers kept per task (0 = all shared)."),
    quick: bool = typer.Option(False, "--quick", help="Subsample and one epoch: tests of the plumbing, not a teacher."),
    data: Optional[Path] = typer.Option(None, help="Labeled data root; default RISKPULSE_SHARED_DATA."),
    sample: Optional[Path] = typer.Option(None, help="Unlabelled transfer messages (JSON lines); default: the bundled sample."),
    precision: Optional[str] = typer.Option(None, help="auto, fp32, bf16 or fp16; default RISKPULSE_PRECISION."),
    threads: Optional[int] = typer.Option(None, help="Torch CPU threads; default: torch's choice (all cores)."),
) -> None:
    """Fine-tune a teacher (registered, not promoted) and write its soft labels for every training text and the transfer set."""
    from riskpulse.models.training.distil import run_teacher
    from riskpulse.models.training.trainer import TrainArgs

    settings = _with_precision(get_settings(), precision)
    args = TrainArgs(base_model=base_model, forked_layers=forked_layers, epochs=epochs, batch_size=batch_size,
                     max_length=max_length, lr=lr, seed=seed, quick=quick, threads=threads)
    try:
        soft = run_teacher(settings, args, out, data_root=data, sample=sample)
    except RiskPulseError as error:
        raise _fail(error) from None
    teacher = soft.header["teacher"]
    typer.echo(f"teacher {teacher['version']}: validation macro-F1 {json.dumps(teacher['validation_macro_f1'])}")
    typer.echo(f"{soft.header['rows']} soft labels in {out} (by source {soft.header['texts_by_source']}; "
               f"evaluation texts left out {soft.header['excluded_evaluation_texts_by_source']})")


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
    data: Optional[Path] = typer.Option(
        None, "--data", help="CSV with columns text,label (or text,topic / text,sentiment); default: every held-out "
        "source in the shared data folder, reported per source (news tweets, PhraseBank, customer sets)."),
    task: Optional[str] = typer.Option(None, help="sentiment or topic; default: inferred from the labels."),
    model: Optional[str] = typer.Option(None, help="Model version; default: the registry's current."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    label_map: Optional[str] = typer.Option(None, help="Dataset name, JSON file or 'src=dst,…' mapping source labels."),
    out: Optional[Path] = typer.Option(None, help="Report directory; default <home>/reports."),
) -> None:
    """Score a model: accuracy, macro-F1, ECE, the negative class; per source, or on one labeled CSV with its
    per-class table, JSON report and confusion PNG."""
    from riskpulse.models.training.data import map_labels
    from riskpulse.models.training.evaluation import evaluate, format_table, write_report
    from riskpulse.models.serving.inference import Engine

    settings = get_settings()
    if data is None:
        _evaluate_sources(settings, model, as_json, out)
        return
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


def _evaluate_sources(settings, model: str | None, as_json: bool, out: Path | None) -> None:
    """`riskpulse eval` without --data: each held-out source of the shared data folder on its own."""
    from riskpulse.models.serving.inference import Engine
    from riskpulse.models.training.calibration import ECE_BINS
    from riskpulse.models.training.evaluation import evaluate_sources, format_sources

    try:
        engine = Engine.load(settings, model)
        results = evaluate_sources(engine, settings.shared_data)
    except RiskPulseError as error:
        raise _fail(error) from None
    path = (out or settings.home / "reports") / f"eval-{engine.version}-sources.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps({**results, "sources": {name: {k: v for k, v in r.items() if k != "confusion"}
                                                       for name, r in results["sources"].items()}}))
    else:
        typer.echo(f"model {engine.version} · {settings.shared_data} · ECE: {ECE_BINS} bins, the served (calibrated) probability")
        typer.echo(format_sources(results))
        typer.echo(f"report: {path}")


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


@models_app.command("calibrate")
def calibrate(
    version: Optional[str] = typer.Argument(None, help="Version; default: current."),
    data: Optional[Path] = typer.Option(None, help="Labeled data root; default RISKPULSE_SHARED_DATA."),
) -> None:
    """Fit a version's temperatures on its validation sets (for versions trained before calibration); ECE before/after."""
    from riskpulse.models.training.calibration import calibrate_version

    try:
        result = calibrate_version(get_settings(), version, data)
    except RiskPulseError as error:
        raise _fail(error) from None
    for head in ("sentiment", "topic"):
        c = result[head]
        if c["n"]:
            typer.echo(f"{head}: T={c['temperature']:.3f} on {c['n']} rows; ECE {c['ece_before']:.4f} -> {c['ece_after']:.4f} "
                       f"(held-out halves {c['ece_after_heldout']:.4f})")
    typer.echo(f"wrote calibration.json for {result['version']}; running workers use it when they next load the version")


@models_app.command("promote")
def promote(version: str = typer.Argument(..., help="Version to serve.")) -> None:
    """Point `current` at a version (atomic), and write who did it to the audit table."""
    import getpass
    import socket

    from riskpulse.models.serving.registry import Registry
    from riskpulse.streams.store import audit
    from riskpulse.streams.store.backends import open_store
    from riskpulse.streams.store.migrate import migrate

    settings = get_settings()
    registry = Registry(settings.registry_root)
    previous = registry.current()
    try:
        registry.promote(version)
    except RiskPulseError as error:
        raise _fail(error) from None
    typer.echo(f"current = {version}")
    try:  # a rollback must work with the store down: the promotion stands, the missing row is said
        store = open_store(settings)
        try:
            migrate(store, [audit])
            audit.record(store, user=getpass.getuser(), role="cli", action="promote", target=version,
                         detail={"previous": previous}, address=socket.gethostname())
        finally:
            store.close()
    except Exception as error:  # noqa: BLE001 - whatever stops the row (store down, chDB held), the promotion stands
        typer.echo(f"warning: promoted, but the audit row was not written: {str(error).splitlines()[0]}", err=True)


def register(app: typer.Typer) -> None:
    """Add the model commands to the `riskpulse` root."""
    app.command("train")(train)
    app.command("eval")(evaluate_cmd)
    app.add_typer(models_app, name="models")
    app.add_typer(distil_app, name="distil")
