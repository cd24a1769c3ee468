"""Class predictions from probabilities, with Snorkel's deterministic tie-break.

Ties (classes within ``tol`` of the row maximum) are broken by the SHA-1 of the row index, the rule
of Snorkel's ``probs_to_preds(tie_break_policy="random")`` that WRENCH's reference numbers use;
this is the same rule, vectorised for the rows without ties.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["predict"]


def predict(probs: np.ndarray, *, tol: float = 1e-5) -> np.ndarray:
    """(n, K) probabilities -> (n,) int64 class indices; ties by Snorkel's row-hash rule."""
    p = np.asarray(probs, dtype=np.float64)
    pred = p.argmax(axis=1).astype(np.int64)
    near = np.abs(p - p.max(axis=1, keepdims=True)) < tol
    for i in np.flatnonzero(near.sum(axis=1) > 1):
        winners = np.flatnonzero(near[i])
        pred[i] = winners[int(hashlib.sha1(str(i).encode()).hexdigest(), 16) % len(winners)]
    return pred
