"""A retraining run's bookkeeping on real chDB, with a fake trainer, fake engines (no torch) and, where time matters, a fake clock."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from riskpulse.models.training.data import Example
from riskpulse.models.serving.registry import Registry
from riskpulse.models.retraining.policy import is_held_back
from riskpulse.models.retraining.retrainer import RetrainBusy, Retrainer, run_lock
from riskpulse.streams.store.retrain_runs import DDL, RunRecord, recent_runs, write_run
from tests.fakes import FakeClock, FakeEngine


def fake_engine(version: str, learned: dict[str, str] | None = None, default: str = "Macro") -> FakeEngine:
    """Answers `default` for every text except those it has `learned`; every sentiment neutral."""
    return FakeEngine(version, learned, topic=default, sentiment="neutral", negative_word=None)


EVAL = {
    "topic": [Example(f"macro news {i}", "Macro", "topic", "v") for i in range(20)]
    + [Example(f"ipo news {i}", "IPO", "topic", "v") for i in range(5)],
    "sentiment": [Example(f"tone {i}", "neutral", "sentiment", "v") for i in range(10)],
}


@pytest.fixture
def setup(chdb_store, chdb_settings, tmp_path):
    for statement in DDL:
        chdb_store.execute(statement)
    settings = chdb_settings.model_copy(
        update={"registry_dir": tmp_path / "models", "home": tmp_path, "retrain_min_labels": 10}
    )
    registry = Registry(settings.registry_root)
    _make_version(registry, "v1-champion")
    registry.promote("v1-champion")
    return settings, chdb_store, registry


def _make_version(registry: Registry, version: str) -> str:
    with registry.write(version) as out:
        (out / "labels.json").write_text("{}")
    return version


def _label(store, n: int, label: str = "IPO", prefix: str = "ipo", ago_s: int = 60, by: str = "ana",
           now: datetime | None = None) -> None:
    at = (now or datetime.now(timezone.utc)).replace(microsecond=0) - timedelta(seconds=ago_s)
    store.write_batch(
        "labels",
        [{"message_id": f"{prefix}-{i}", "task": "topic", "label": label, "text": f"{prefix} text {i}",
          "labeled_by": by, "labeled_at": at} for i in range(n)],
    )


class Harness:
    """A Retrainer whose challenger learns exactly the analyst rows it is given."""

    def __init__(self, settings, store, registry, fail_training=False, corrupt_champion=False, learns=True, clock=time.time):
        self.registry, self.seen_rows = registry, []
        self.engines = {"v1-champion": fake_engine("v1-champion")}
        self.fail_training, self.corrupt_champion, self.learns = fail_training, corrupt_champion, learns
        self.retrainer = Retrainer(settings, store, self.train, self.load, lambda s: EVAL, clock=clock)

    def train(self, settings, champion_dir, prepare_rows):
        if self.fail_training:
            raise RuntimeError("CUDA out of memory (simulated)")
        base = [Example("ipo text 0", "Macro", "topic", "base"), Example("fed text", "Macro", "topic", "base")]
        rows = prepare_rows(base)
        self.seen_rows = rows
        version = _make_version(self.registry, f"v{len(self.registry.versions()) + 1}-challenger")
        learned = {r.text: r.label for r in rows if r.source == "analyst-labels"} if self.learns else {}
        if learned:  # it generalises to the held-back twins of what it learned
            learned.update({f"ipo text {i}": "IPO" for i in range(1000)} | {f"ipo news {i}": "IPO" for i in range(5)})
        self.engines[version] = fake_engine(version, learned, default="Macro" if self.learns else "Dividend")
        return version

    def load(self, settings, version):
        if self.corrupt_champion and version == "v1-champion":
            raise OSError("model.safetensors: header too small")
        return self.engines[version]


def test_too_few_labels_is_recorded_and_keeps_champion(setup):
    settings, store, registry = setup
    _label(store, 3)
    record = Harness(settings, store, registry).retrainer.run()
    assert record.status == "skipped" and "need 10" in record.reason
    assert registry.current() == "v1-champion"
    (row,) = recent_runs(store)
    assert (row["status"], row["new_labels"]) == ("skipped", 3)


def test_better_challenger_is_promoted_with_both_figures(setup):
    settings, store, registry = setup
    _label(store, 60)
    h = Harness(settings, store, registry)
    record = h.retrainer.run()
    assert record.status == "promoted", record.reason
    assert registry.current() == record.challenger_version != "v1-champion"
    held = [i for i in range(60) if is_held_back(f"ipo-{i}", settings.retrain_holdout_share)]
    assert record.heldout_labels == len(held) > 0 and record.train_labels == 60 - len(held)
    assert record.challenger_topic_f1 > record.champion_topic_f1
    assert record.champion_heldout_acc == 0.0 and record.challenger_heldout_acc == 1.0
    (row,) = recent_runs(store)
    assert row["status"] == "promoted" and row["challenger_version"] == record.challenger_version
    assert row["challenger_topic_f1"] == pytest.approx(record.challenger_topic_f1, abs=1e-6)
    (event,) = store.query("SELECT user, role, action, target, detail FROM audit")
    assert (event["user"], event["role"], event["action"], event["target"]) == (
        "retrainer", "system", "promote", record.challenger_version)
    assert json.loads(event["detail"])["previous"] == "v1-champion"


def test_training_rows_exclude_held_back_and_let_labels_override(setup):
    settings, store, registry = setup
    _label(store, 60)
    h = Harness(settings, store, registry)
    h.retrainer.run()
    texts = [r.text for r in h.seen_rows]
    assert ("ipo text 0", "Macro") not in [(r.text, r.label) for r in h.seen_rows]
    for i in range(60):
        trained = f"ipo text {i}" in texts
        assert trained != is_held_back(f"ipo-{i}", settings.retrain_holdout_share)
    assert texts.count("ipo text 1") in (0, settings.retrain_label_repeat)


def test_worse_challenger_is_rejected(setup):
    settings, store, registry = setup
    _label(store, 60)
    record = Harness(settings, store, registry, learns=False).retrainer.run()
    assert record.status == "rejected" and "worse on topic" in record.reason
    assert registry.current() == "v1-champion"
    assert record.challenger_version in registry.versions()


def test_training_failure_and_corrupt_champion_leave_champion_in_place(setup):
    settings, store, registry = setup
    _label(store, 60)
    failed = Harness(settings, store, registry, fail_training=True).retrainer.run()
    assert failed.status == "failed" and "out of memory" in failed.reason
    corrupt = Harness(settings, store, registry, corrupt_champion=True).retrainer.run()
    assert corrupt.status == "failed" and "could not be loaded" in corrupt.reason
    assert registry.current() == "v1-champion"
    assert {r["status"] for r in recent_runs(store)} == {"failed"}


def test_next_run_only_sees_labels_newer_than_what_the_champion_learned(setup):
    settings, store, registry = setup
    clock = FakeClock(datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc).timestamp())
    _label(store, 60, ago_s=120, now=datetime.fromtimestamp(clock(), timezone.utc))
    first = Harness(settings, store, registry, clock=clock).retrainer.run()
    assert first.status == "promoted"
    assert first.labels_until_s == clock() - 1 and first.started_s == first.finished_s == clock()
    clock.advance(30)  # the second run looks at a window of its own: 30 s after the first cut-off
    second = Harness(settings, store, registry, clock=clock).retrainer.run()
    assert second.status == "skipped" and second.new_labels == 0
    assert second.labels_since_s == first.labels_until_s
    assert second.labels_until_s == first.labels_until_s + 30


def test_conflicting_labels_resolve_by_majority(setup):
    settings, store, registry = setup
    _label(store, 60, label="IPO", by="ana", ago_s=90)
    _label(store, 60, label="IPO", by="bob", ago_s=80)
    _label(store, 60, label="Dividend", by="cy", ago_s=70)
    h = Harness(settings, store, registry)
    record = h.retrainer.run()
    assert record.new_labels == 60 and record.contested_labels == 60
    assert {r.label for r in h.seen_rows if r.source == "analyst-labels"} == {"IPO"}


def test_unknown_classes_are_counted_not_trained(setup):
    settings, store, registry = setup
    _label(store, 5, label="Crypto", prefix="crypto")
    record = Harness(settings, store, registry).retrainer.run()
    assert record.unknown_labels == 5 and record.status == "skipped"
    assert record.details["unknown_examples"] == ["topic:Crypto"]


def test_a_run_left_running_by_a_dead_process_is_marked_failed(setup):
    settings, store, registry = setup
    dead = RunRecord(runner="host:4242", champion_version="v1-champion", challenger_version="v9")
    write_run(store, dead)
    Harness(settings, store, registry).retrainer.run()
    runs = {r["run_id"]: r for r in recent_runs(store)}
    assert runs[dead.run_id]["status"] == "failed"
    assert "interrupted" in runs[dead.run_id]["reason"] and "host:4242" in runs[dead.run_id]["reason"]
    assert registry.current() == "v1-champion"


def test_second_run_while_one_holds_the_lock_is_refused(setup):
    settings, store, registry = setup
    with run_lock(settings):
        with pytest.raises(RetrainBusy, match="another retraining run"):
            Harness(settings, store, registry).retrainer.run()
    assert recent_runs(store) == []


def test_a_run_that_died_right_after_promoting_is_closed_as_promoted(setup):
    settings, store, registry = setup
    _make_version(registry, "v2-challenger")
    registry.promote("v2-challenger")
    write_run(store, RunRecord(runner="host:4243", champion_version="v1-champion", challenger_version="v2-challenger"))
    Harness(settings, store, registry).retrainer.run()
    (closed,) = [r for r in recent_runs(store) if r["runner"] == "host:4243"]
    assert closed["status"] == "promoted" and "right after promoting" in closed["reason"]
