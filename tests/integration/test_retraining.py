"""Retraining on the real model and real rows: a distribution shift is learned and promoted;
labels that make the model worse are rejected; the run records say why."""

from __future__ import annotations

import time

import pytest

from riskpulse.models.serving.inference import Engine
from riskpulse.models.retraining.retrainer import Retrainer
from riskpulse.streams.store.retrain_runs import DDL, recent_runs
from tests.fixtures.models import shared_data
from tests.integration.retraining_support import private_registry, shift_labels, shuffled_labels, write_labels

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def setup(chdb_store, chdb_settings, quick_registry, tmp_path):
    for statement in DDL:
        chdb_store.execute(statement)
    registry = private_registry(quick_registry, tmp_path / "models")
    settings = chdb_settings.model_copy(
        update={
            "home": tmp_path, "registry_dir": registry.root, "shared_data": shared_data(), "device": "cpu",
            "retrain_replay_rows": 300, "retrain_eval_rows": 200, "retrain_min_labels": 100, "retrain_threads": 2,
        }
    )
    return settings, chdb_store, registry


def test_shift_is_learned_and_promoted_then_shuffled_labels_are_rejected(setup):
    settings, store, registry = setup
    champion = registry.current()
    topic, train, held = shift_labels(Engine.load(settings), 200, 40, settings.retrain_holdout_share)
    assert len(train) == 200 and len(held) >= 40, (topic, len(train), len(held))
    write_labels(store, train + held)

    first = Retrainer(settings, store).run()
    assert first.status == "promoted", first.reason
    assert registry.current() == first.challenger_version != champion
    assert (first.train_labels, first.heldout_labels) == (200, len(held))
    assert first.champion_heldout_acc == 0.0  # every twin was one the champion got wrong
    assert first.challenger_heldout_acc >= 0.3, first.details
    print(f"\nshift on {topic!r}: held-back twin accuracy {first.champion_heldout_acc:.3f} -> "
          f"{first.challenger_heldout_acc:.3f}; {first.reason}")

    write_labels(store, shuffled_labels(250), by="analyst-2", ago_s=0)
    time.sleep(1.5)  # labels of this second must be newer than the first run's cut-off
    second = Retrainer(settings, store).run()
    assert second.status == "rejected", second.reason
    assert second.champion_version == first.challenger_version == registry.current()
    assert second.new_labels == 500 and second.labels_since_s == first.labels_until_s
    print(f"shuffled: {second.reason}")

    runs = {r["run_id"]: r for r in recent_runs(store)}
    assert runs[first.run_id]["status"] == "promoted" and runs[second.run_id]["status"] == "rejected"
    assert "worse on" in runs[second.run_id]["reason"]
