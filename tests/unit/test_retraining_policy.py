from datetime import datetime, timedelta, timezone

import pytest

from riskpulse.models.training.data import Example
from riskpulse.models.retraining.policy import (
    decide,
    drop_unknown,
    is_held_back,
    keep_base,
    resolve,
    split_held_back,
)
from riskpulse.streams.store.labels import AnalystLabel

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


def _label(mid, label, by="ana", minutes=0, task="topic", text=None):
    return AnalystLabel(mid, task, label, text or f"text of {mid}", by, T0 + timedelta(minutes=minutes))


def test_majority_of_analysts_wins_over_a_later_single_label():
    (r,) = resolve([_label("m1", "Earnings", "ana"), _label("m1", "Earnings", "bob", 1), _label("m1", "IPO", "cy", 9)])
    assert (r.label, r.votes, r.voters, r.contested) == ("Earnings", 2, 3, True)


def test_tie_goes_to_the_latest_label():
    (r,) = resolve([_label("m1", "Earnings", "ana", 5), _label("m1", "IPO", "bob", 7)])
    assert r.label == "IPO"


def test_an_analyst_changing_their_mind_counts_once():
    rows = [_label("m1", "IPO", "ana", 0), _label("m1", "IPO", "ana", 1), _label("m1", "Earnings", "ana", 2)]
    (r,) = resolve(rows)
    assert (r.label, r.voters, r.contested) == ("Earnings", 1, False)


def test_tasks_resolve_independently():
    rows = [_label("m1", "IPO"), _label("m1", "negative", task="sentiment")]
    assert {(r.task, r.label) for r in resolve(rows)} == {("topic", "IPO"), ("sentiment", "negative")}


def test_held_back_slice_is_stable_and_close_to_its_share():
    ids = [f"msg-{i}" for i in range(5000)]
    first = {i for i in ids if is_held_back(i, 0.2)}
    assert first == {i for i in ids if is_held_back(i, 0.2)}
    assert 0.17 < len(first) / len(ids) < 0.23
    assert {i for i in ids if is_held_back(i, 0.1)} <= first


def test_held_back_text_is_never_trained_even_under_another_id():
    held_id = next(f"m{i}" for i in range(100) if is_held_back(f"m{i}", 0.5))
    free_id = next(f"m{i}" for i in range(100) if not is_held_back(f"m{i}", 0.5))
    rows = resolve([_label(held_id, "IPO", text="Same  words"), _label(free_id, "IPO", text="same words")])
    train, held = split_held_back(rows, 0.5)
    assert [r.message_id for r in held] == [held_id]
    assert train == []


def test_analyst_label_overrides_base_row_of_its_task_and_held_back_text_leaves_training():
    base = [
        Example("Fed hikes", "Macro", "topic", "news"),
        Example("ACME beats", "Markets", "topic", "news"),
        Example("ACME beats", "positive", "sentiment", "news"),
        Example("Gold up", "Gold", "topic", "news"),
    ]
    train = resolve([_label("a", "Earnings", text="ACME  beats")])
    held = resolve([_label("b", "Gold", text="gold up", task="sentiment")])
    kept = keep_base(base, train, held)
    assert [(r.text, r.label) for r in kept] == [("Fed hikes", "Macro"), ("ACME beats", "positive")]


def test_unknown_classes_are_set_aside():
    rows = resolve([_label("a", "IPO"), _label("b", "Crypto"), _label("c", "joy", task="sentiment")])
    usable, unknown = drop_unknown(rows, {"topic": ["IPO"], "sentiment": ["negative"]})
    assert [r.message_id for r in usable] == ["a"]
    assert sorted(r.message_id for r in unknown) == ["b", "c"]


@pytest.mark.parametrize(
    ("champ", "chall", "promote", "why"),
    [
        ((0.50, 0.60), (0.55, 0.60), True, "better on topic"),
        ((0.50, 0.60), (0.55, 0.597), True, "better on topic"),
        ((0.50, 0.60), (0.60, 0.59), False, "worse on sentiment"),
        ((0.50, 0.60), (0.50, 0.60), False, "better on neither"),
        ((0.50, 0.60), (0.40, 0.70), False, "worse on topic"),
    ],
)
def test_promotion_rule(champ, chall, promote, why):
    d = decide(dict(zip(("topic", "sentiment"), champ)), dict(zip(("topic", "sentiment"), chall)), 0.005)
    assert d.promote is promote
    assert why in d.reason


def test_missing_figure_never_promotes():
    assert not decide({"topic": 0.5}, {"topic": 0.9, "sentiment": 0.9}, 0.005).promote
