"""Consensus over redundant human labels (pure core)."""

from __future__ import annotations

import numpy as np

from labeling.consensus import consensus


def test_majority_tie_latest_and_unlabeled():
    events = [
        (0, "a", 1), (0, "b", 1), (0, "c", 0),  # 2 of 3 agree
        (1, "a", 0), (1, "b", 1),  # one each: no agreed label
        (2, "a", 0), (2, "a", 1),  # a corrected their own label: only the latest counts
        (3, "a", 2), (3, "b", 2),  # unanimous
    ]
    labels, agreement, n_ann = consensus(events, 5, 3)
    assert labels.tolist() == [1, -1, 1, 2, -1]
    assert np.allclose(agreement, [2 / 3, 0.5, 1.0, 1.0, 0.0])
    assert n_ann.tolist() == [3, 2, 1, 2, 0]
    assert labels.dtype == np.int64 and agreement.dtype == np.float32
