"""Selectors: scores -> the k picks."""

from __future__ import annotations

import numpy as np

__all__ = ["top_k"]


def top_k(scores: np.ndarray, candidates: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the k highest-scoring candidates, best first; equal scores in random order.

    O(n) with ``argpartition``, then a sort of the k picks only.
    """
    idx = np.flatnonzero(candidates)
    k = min(k, len(idx))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)[idx]
    tiebreak = rng.random(len(idx))
    if k < len(idx):
        part = np.argpartition(-s, k - 1)[:k]
        kth = s[part].min()
        # items tied with the k-th score compete by the random tie-break, not by position
        pool = np.flatnonzero(s >= kth)
    else:
        pool = np.arange(len(idx))
    order = np.lexsort((tiebreak[pool], -s[pool]))[:k]
    return idx[pool[order]].astype(np.int64)
