"""The one padding step training and serving share."""

from __future__ import annotations

import numpy as np

from riskpulse.models.serving.network import pad_ids


def test_pad_ids_right_pads_each_row_and_masks_only_real_tokens() -> None:
    ids, mask = pad_ids([[101, 7, 102], [101, 102], [101, 5, 6, 7, 102]], pad_id=0)
    assert ids.tolist() == [[101, 7, 102, 0, 0], [101, 102, 0, 0, 0], [101, 5, 6, 7, 102]]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert ids.dtype == mask.dtype == np.int64


def test_pad_ids_rounds_the_width_up_to_a_multiple_within_the_limit() -> None:
    encoded = [[101, 7, 102], [101, 5, 6, 7, 8, 9, 10, 102]]
    ids, mask = pad_ids(encoded, pad_id=0, multiple=8)
    assert ids.shape == mask.shape == (2, 8)
    ids, mask = pad_ids(encoded[:1], pad_id=0, multiple=8)
    assert ids.shape == (1, 8) and mask.tolist() == [[1, 1, 1, 0, 0, 0, 0, 0]]
    ids, _ = pad_ids([[1] * 9], pad_id=0, multiple=8, limit=12)
    assert ids.shape == (1, 12)  # 16 would pass max_length
    ids, _ = pad_ids([[1] * 13], pad_id=0, multiple=8, limit=12)
    assert ids.shape == (1, 13)  # never narrower than the longest row
