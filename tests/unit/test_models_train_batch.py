"""The training batch size per device, the learning-rate rule that goes with it, and the arrays a step reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from riskpulse.models.serving.network import DeviceArrays
from riskpulse.models.training.trainer import REFERENCE_BATCH, default_train_batch_size, scaled_lr


def test_a_gpu_trains_on_bigger_batches_than_a_cpu() -> None:
    assert default_train_batch_size(torch.device("cpu")) == REFERENCE_BATCH == 32
    assert default_train_batch_size(torch.device("cuda")) == 128


@pytest.mark.parametrize(("batch", "factor"), [(32, 1.0), (128, 2.0), (8, 0.5), (64, 2**0.5)])
def test_learning_rates_scale_by_the_square_root_of_the_batch(batch: int, factor: float) -> None:
    assert scaled_lr(1e-4, batch) == pytest.approx(1e-4 * factor)


def test_a_step_reads_its_rows_cut_to_the_batch_width() -> None:
    ids = np.arange(24, dtype=np.int64).reshape(4, 6)
    targets = np.array([3, -100, 1, 0])
    arrays = DeviceArrays(torch.device("cpu"), ids=ids, topic=targets)
    rows = np.array([2, 0])
    assert arrays.take("ids", torch.from_numpy(rows), 3).tolist() == ids[rows, :3].tolist()
    assert arrays.take("topic", torch.from_numpy(rows)).tolist() == [1, 3]
