"""Class predictions from probabilities, with Snorkel's deterministic tie-break.

Ties (classes within ``tol`` of the row maximum) are broken by the SHA-1 of the row index, the rule
of Snorkel's ``probs_to_preds(tie_break_policy="random")``, which WRENCH's reference numbers use
(majority vote on WRENCH YouTube: 84.00 test accuracy with this rule, 77.60 with "lowest index").
This is the same rule, vectorised for the rows without ties.
"""

from __future__ import annotations

import hashlib

import numpy as np

from labeling.errors import InvalidInput

__all__ = ["predict"]


def predict(probs: np.ndarray, *, tol: float = 1e-5, start: int = 0) -> np.ndarray:
    """Class indices by argmax, ties by Snorkel's row-hash rule.

    Parameters
    ----------
    probs : (n, K) probabilities
    tol : classes within ``tol`` of the row maximum tie
    start : index of the first row (a shard starting at ``start`` predicts what the whole does)

    Returns
    -------
    (n,) int64 class indices.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise InvalidInput(f"probs must be a 2-d (items, classes) array, got shape {p.shape}")
    pred = p.argmax(axis=1).astype(np.int64)
    near = np.abs(p - p.max(axis=1, keepdims=True)) < tol
    for i in np.flatnonzero(near.sum(axis=1) > 1):
        winners = np.flatnonzero(near[i])
        pred[i] = winners[int(hashlib.sha1(str(start + i).encode()).hexdigest(), 16) % len(winners)]
    return pred
