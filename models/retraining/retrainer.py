"""One retraining run: learn from analysts' labels, serve the result only if it is better.

A run gathers the labels the current model (the *champion*) has not learned from, merges them
into the base training data (rules in :mod:`riskpulse.models.retraining.policy`), fine-tunes a *challenger*
from the champion's weights, scores both on one fixed evaluation set — the validation splits
plus the held-back slice of analyst labels — and moves the registry's ``current`` pointer only
when the promotion rule says so. Every run is a row in ``retrain_runs``: written as ``running``
when it starts and replaced by its outcome (``promoted``, ``rejected``, ``skipped``, ``failed``)
when it ends. A run that dies in between is found by the next one (or the scheduler's start)
and marked ``failed``; since registry writes are atomic, nothing of it is half-applied.

"Not learned from" means: labels newer than the cut-off of the run that produced the champion,
or every label when the champion never saw analyst labels (base training, or a rollback to it).
Runs are serialised by a file lock under ``settings.home``; one host runs retraining.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from filelock import FileLock, Timeout

from riskpulse.core import RiskPulseError
from riskpulse.core.clock import from_epoch
from riskpulse.core.settings import Settings
from riskpulse.models.retraining.challenger import NAN, RowCounter, evaluate_on, evaluation_rows, load_engine, rows_hook, train_challenger
from riskpulse.models.retraining.policy import decide, drop_unknown, paired_f1_noise, resolve, split_held_back
from riskpulse.models.serving.registry import Registry
from riskpulse.streams.store import audit
from riskpulse.streams.store.backends import StoreError
from riskpulse.streams.store.labels import fetch_labels
from riskpulse.streams.store.retrain_runs import RunRecord, label_cutoff, running_runs, write_run

log = logging.getLogger("riskpulse.retraining")


class RetrainError(RiskPulseError):
    """A retraining run could not finish; the champion stays."""


class RetrainBusy(RetrainError):
    """Another retraining run holds the lock."""


class NotEnoughLabels(RetrainError):
    """Too few new trainable labels to justify a run."""


def recover_interrupted(store, current: str | None, clock: Callable[[], float] = time.time) -> list[str]:
    """Close runs a dead process left ``running``. Call only while holding the run lock.

    The registry says how far such a run got: if `current` is its challenger, the promotion
    happened (it is the last step) and only the final record was lost; otherwise it failed.
    ``clock`` (epoch seconds) stamps when they were closed.
    """
    stale = running_runs(store)
    for record in stale:
        if record.challenger_version and record.challenger_version == current:
            record.status = "promoted"
            record.reason = f"runner {record.runner} stopped right after promoting {current}; its figures were not recorded"
        else:
            record.status = "failed"
            record.reason = (
                f"interrupted: runner {record.runner} stopped before finishing; champion "
                f"{record.champion_version or '(none)'} stayed current, challenger "
                f"{record.challenger_version or '(none)'} was not promoted"
            )
        record.finished_s = int(clock())
        write_run(store, record)
        log.warning("retrain run %s closed as %s: %s", record.run_id, record.status, record.reason)
    return [record.run_id for record in stale]


def run_lock(settings: Settings) -> FileLock:
    path = settings.home / "locks" / "retrain.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path))


@dataclass
class Retrainer:
    """A run's steps; the trainer, engine loader and clock are parameters so tests can fake them.

    ``clock`` (epoch seconds, ``time.time`` by default) dates the run: its start and end, and the
    cut-off up to which it learns from labels (one second before it looks, so a label stored in
    that second waits for the next run).
    """

    settings: Settings
    store: Any
    train_fn: Callable[..., str] | None = None
    load_engine: Callable[[Settings, str], Any] | None = None
    eval_rows_fn: Callable[[Settings], dict[str, list]] = evaluation_rows
    clock: Callable[[], float] = time.time

    def run(self, trigger: str = "manual") -> RunRecord:
        """One run under the lock; returns its record (also stored). Raises RetrainBusy if one is running."""
        lock = run_lock(self.settings)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise RetrainBusy(
                f"another retraining run holds {lock.lock_file}; wait for it (see `riskpulse retrain --history`)"
            ) from None
        try:
            recover_interrupted(self.store, Registry(self.settings.registry_root).current(), self.clock)
            record = RunRecord(trigger=trigger, started_s=int(self.clock()))
            self._steps(record)
            return record
        finally:
            lock.release()

    def _steps(self, record: RunRecord) -> None:
        registry = Registry(self.settings.registry_root)
        record.champion_version = registry.current() or ""
        write_run(self.store, record)
        log.info("retrain run %s started (%s) with champion %s", record.run_id, record.trigger, record.champion_version)
        try:
            self._learn_and_compare(record, registry)
        except NotEnoughLabels as error:
            record.status, record.reason = "skipped", str(error)
        except Exception as error:  # noqa: BLE001 - any failure must leave the champion and be recorded
            log.exception("retrain run %s failed", record.run_id)
            record.status, record.reason = "failed", f"{type(error).__name__}: {error}"
        record.finished_s = int(self.clock())
        write_run(self.store, record)
        log.info("retrain run %s %s: %s", record.run_id, record.status, record.reason)

    def _learn_and_compare(self, record: RunRecord, registry) -> None:
        from riskpulse.models.training.data import TASK_LABELS

        s = self.settings
        champion = record.champion_version
        if not champion:
            raise RetrainError(f"registry {registry.root} has no current model; run `riskpulse train` first")
        record.labels_since_s = label_cutoff(self.store, champion)
        record.labels_until_s = int(self.clock()) - 1
        resolved = resolve(fetch_labels(self.store, record.labels_since_s, record.labels_until_s))
        usable, unknown = drop_unknown(resolved, TASK_LABELS)
        train, held = split_held_back(usable, s.retrain_holdout_share)
        record.new_labels, record.unknown_labels = len(resolved), len(unknown)
        record.train_labels, record.heldout_labels = len(train), len(held)
        record.contested_labels = sum(r.contested for r in resolved)
        if unknown:
            record.details["unknown_examples"] = sorted({f"{r.task}:{r.label}" for r in unknown})[:20]
        if len(train) < s.retrain_min_labels:
            raise NotEnoughLabels(
                f"{len(train)} new trainable labels since {from_epoch(record.labels_since_s).isoformat()} "
                f"(of {len(resolved)} new, {len(held)} held back, {len(unknown)} unknown); need {s.retrain_min_labels}"
            )
        load = self.load_engine or load_engine
        try:
            champion_engine = load(s, champion)
        except Exception as error:
            raise RetrainError(
                f"champion {champion} could not be loaded ({error}); it stays current — "
                "check its directory or `riskpulse models promote` a good version"
            ) from error
        eval_rows = self.eval_rows_fn(s)
        record.eval_rows = sum(len(v) for v in eval_rows.values()) + len(held)
        champ = evaluate_on(champion_engine, eval_rows, held)
        del champion_engine
        hook = rows_hook(train, held, s.retrain_label_repeat, s.retrain_replay_rows)
        counted = RowCounter(hook)
        record.challenger_version = (self.train_fn or train_challenger)(s, registry.path(champion), counted)
        record.train_rows = counted.rows
        write_run(self.store, record)
        try:
            chall = evaluate_on(load(s, record.challenger_version), eval_rows, held)
        except Exception as error:
            raise RetrainError(f"challenger {record.challenger_version} could not be loaded ({error})") from error
        record.champion_topic_f1 = champ.f1.get("topic", NAN)
        record.champion_sentiment_f1 = champ.f1.get("sentiment", NAN)
        record.challenger_topic_f1 = chall.f1.get("topic", NAN)
        record.challenger_sentiment_f1 = chall.f1.get("sentiment", NAN)
        record.champion_heldout_acc, record.challenger_heldout_acc = champ.heldout_acc, chall.heldout_acc
        record.details["heldout_acc_by_task"] = {"champion": champ.heldout_by_task, "challenger": chall.heldout_by_task}
        noise = {t: paired_f1_noise(champ.gold[t], champ.predicted[t], chall.predicted[t]) for t in champ.gold if t in chall.predicted}
        record.details["f1_noise"] = {t: round(v, 4) for t, v in noise.items()}
        decision = decide(champ.f1, chall.f1, s.promote_tolerance, noise, s.promote_noise_z)
        record.reason = decision.reason
        if decision.promote:
            if registry.current() != champion:
                record.status = "rejected"
                record.reason = f"current moved to {registry.current()} during the run; not overriding it. {decision.reason}"
                return
            registry.promote(record.challenger_version)
            record.status = "promoted"
            try:
                audit.record(self.store, user="retrainer", role="system", action="promote",
                             target=record.challenger_version,
                             detail={"previous": champion, "run_id": record.run_id, "trigger": record.trigger,
                                     "reason": decision.reason})
            except StoreError as error:  # the promotion stands; the run record says the audit row is missing
                log.error("promoted %s but could not write its audit row: %s", record.challenger_version, error)
                record.details["audit_error"] = str(error).splitlines()[0]
        else:
            record.status = "rejected"


def run_once(settings: Settings, trigger: str = "manual") -> RunRecord:
    """Open the store, run once, close it."""
    from riskpulse.streams.store.backends import open_store

    store = open_store(settings)
    try:
        return Retrainer(settings, store).run(trigger)
    finally:
        store.close()
