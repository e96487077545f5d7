"""How the engine cuts a call's length-sorted texts into forward passes."""

from __future__ import annotations

import itertools
import random

import pytest

from riskpulse.models.serving.inference import plan_batches


def cost(lengths: list[int], ends: list[int], pass_tokens: float) -> float:
    """One pass at ``pass_tokens`` plus each batch's rows × its longest (last) row."""
    return sum(pass_tokens + (end - start) * lengths[end - 1] for start, end in zip([0, *ends], ends))


def cheapest(lengths: list[int], max_rows: int, pass_tokens: float) -> float:
    """Every way of cutting the sorted rows, tried."""
    n = len(lengths)
    best = float("inf")
    for cuts in itertools.product((False, True), repeat=n - 1):
        ends = [i + 1 for i, cut in enumerate(cuts) if cut] + [n]
        if all(end - start <= max_rows for start, end in zip([0, *ends], ends)):
            best = min(best, cost(lengths, ends, pass_tokens))
    return best


def test_without_a_pass_cost_every_batch_is_max_rows_but_the_last() -> None:
    assert plan_batches([5] * 10, 4, None) == [4, 8, 10]
    assert plan_batches([5] * 8, 4, None) == [4, 8]
    assert plan_batches([], 4, None) == [] == plan_batches([], 4, 40.0)
    assert plan_batches([9], 4, 40.0) == [1]


@pytest.mark.parametrize("seed", range(40))
def test_the_plan_is_the_cheapest_cut_and_covers_every_row_once(seed: int) -> None:
    rng = random.Random(seed)
    lengths = sorted(rng.choice([rng.randint(5, 20), rng.randint(20, 128)]) for _ in range(rng.randint(2, 11)))
    max_rows, pass_tokens = rng.randint(1, 6), rng.choice([0.5, 10.0, 40.0, 300.0])
    ends = plan_batches(lengths, max_rows, pass_tokens)
    assert ends[-1] == len(lengths) and ends == sorted(set(ends)) and ends[0] > 0
    assert all(end - start <= max_rows for start, end in zip([0, *ends], ends))
    assert cost(lengths, ends, pass_tokens) == pytest.approx(cheapest(lengths, max_rows, pass_tokens))


def test_a_short_call_keeps_tweets_apart_from_a_long_complaint() -> None:
    """The case the plan is for: 34 tweets and one complaint, one batch of 35 would pad 34 tweets to 128 tokens."""
    lengths = [20] * 34 + [128]
    ends = plan_batches(lengths, 64, 40.0)
    assert ends == [34, 35]
    assert cost(lengths, ends, 40.0) < cost(lengths, plan_batches(lengths, 64, None), 40.0) / 2


def test_a_costly_pass_fills_batches_and_a_free_one_cuts_at_every_new_width() -> None:
    lengths = [10, 10, 11, 12, 12, 30]
    assert plan_batches(lengths, 64, 1e6) == [6]
    assert plan_batches(lengths, 64, 1e-6) == [2, 3, 5, 6]


def test_a_gpu_keeps_fixed_rows_and_a_cpu_plans_by_default() -> None:
    """A GPU warms up fixed shapes at load and pays little for padding; a CPU pays for every padded token."""
    import torch

    from riskpulse.models.serving.inference import default_pass_tokens

    assert default_pass_tokens(torch.device("cuda")) is None
    assert default_pass_tokens(torch.device("cpu")) == 40.0
