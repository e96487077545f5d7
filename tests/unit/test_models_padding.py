"""The one padding step training and serving share."""

from __future__ import annotations

import numpy as np

from riskpulse.models.serving.network import pad_ids


def test_pad_ids_right_pads_each_row_and_masks_only_real_tokens() -> None:
    ids, mask = pad_ids([[101, 7, 102], [101, 102], [101, 5, 6, 7, 102]], pad_id=0)
    assert ids.tolist() == [[101, 7, 102, 0, 0], [101, 102, 0, 0, 0], [101, 5, 6, 7, 102]]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert ids.dtype == mask.dtype == np.int64
