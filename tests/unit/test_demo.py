"""The demo's plain parts: its rules file and the sample's planted story, without a stack."""

import json
from collections import Counter
from datetime import datetime

from riskpulse.core.resources import sample_messages
from riskpulse.core.settings import Settings
from riskpulse.demo import ENTITY_RULE, WINDOW_S, _demo_rules, _retimed_sample
from riskpulse.streams.alerts.rules import load_rules


def test_demo_rules_are_the_shipped_ones_renamed_with_the_entity_rule_notifying_the_receiver(tmp_path):
    path = _demo_rules(Settings(home=tmp_path), "http://127.0.0.1:5000/riskpulse", "demo-1127-0800")
    rules = load_rules(path)
    shipped = load_rules(None)
    assert [r.name for r in rules.rules] == [f"{r.name}-demo-1127-0800" for r in shipped.rules]
    entity = rules.by_name(f"{ENTITY_RULE}-demo-1127-0800")
    assert [t.url for t in entity.webhooks] == ["http://127.0.0.1:5000/riskpulse"]
    assert entity.window_s == WINDOW_S and entity.watchlist_only
    assert all(not r.webhooks for r in rules.rules if r is not entity)


def test_sample_plants_one_burst_inside_one_window_even_after_retiming():
    rows = [json.loads(line) for line in sample_messages().read_text(encoding="utf-8").splitlines()]
    kinds = Counter(r["meta"].get("planted") for r in rows)
    assert kinds == {None: 3000, "steady": 384, "burst": 40}
    burst_windows = {datetime.fromisoformat(r["ts"]).timestamp() // WINDOW_S for r in rows if r["meta"].get("planted") == "burst"}
    assert len(burst_windows) == 1
    retimed = _retimed_sample(sample_messages())
    planted = {m.id for m in retimed if m.meta.get("planted") == "burst"}
    assert len({m.ts.timestamp() // WINDOW_S for m in retimed if m.id in planted}) == 1


def test_distillation_labels_the_real_sample_rows_only():
    from riskpulse.models.training.distil import read_sample_texts

    texts = read_sample_texts(sample_messages())
    rows = [json.loads(line) for line in sample_messages().read_text(encoding="utf-8").splitlines()]
    assert texts == [r["text"] for r in rows if not r["meta"].get("planted")] and len(texts) == 3000
