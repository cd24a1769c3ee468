"""Selectors: per-item scores -> the k picks (modAL's "selector" half of a strategy)."""

from __future__ import annotations

import numpy as np

from labeling.errors import InvalidInput
from strategies.base import Selection

__all__ = ["ranked", "top_k"]


def top_k(scores: np.ndarray, candidates: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """The ``k`` highest-scoring candidates, best first; equal scores come in random order.

    O(n) with ``np.argpartition``; only the k picks are sorted. Items tied with the k-th score
    are drawn at random (not by position), so ties never favour the start of the pool.

    Parameters
    ----------
    scores : (n,) float
        Higher = more worth labeling. Must be finite on the candidates.
    candidates : (n,) bool
        Items that may be picked.
    k : int
        How many to pick; more than the number of candidates returns them all.
    rng : numpy.random.Generator
        Breaks ties.

    Returns
    -------
    (min(k, n_candidates),) int64
        Distinct candidate positions, in pick order.
    """
    scores = np.asarray(scores)
    candidates = np.asarray(candidates)
    if scores.ndim != 1 or candidates.shape != scores.shape:
        raise InvalidInput(f"scores must have shape {candidates.shape} like candidates, "
                           f"got {scores.shape}")
    if k < 0:
        raise InvalidInput(f"k must be >= 0, got {k}")
    idx = np.flatnonzero(candidates)
    k = min(int(k), len(idx))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    s = scores[idx].astype(np.float64, copy=False)
    if not np.isfinite(s).all():
        raise InvalidInput("scores must be finite on the candidates")
    if k < len(idx):
        kth = s[np.argpartition(-s, k - 1)[k - 1]]
        above = np.flatnonzero(s > kth)
        tied = np.flatnonzero(s == kth)
        # the k-th score's ties compete by lot for the places left, in O(n) (no full sort)
        pool = np.concatenate([above, rng.choice(tied, k - len(above), replace=False)])
    else:
        pool = np.arange(len(idx))
    order = np.lexsort((rng.random(len(pool)), -s[pool]))
    return idx[pool[order]].astype(np.int64)


def ranked(name: str, scorer_name: str, scores: np.ndarray, candidates: np.ndarray, k: int,
           rng: np.random.Generator, extra: dict[str, np.ndarray] | None = None) -> Selection:
    """:func:`top_k` wrapped as a :class:`Selection` with one reason per pick.

    Parameters
    ----------
    name, scorer_name : the strategy and the measure, written into every reason
    scores : (n,) float
        Higher = more worth labeling.
    candidates : (n,) bool
    k : int
    rng : numpy.random.Generator
    extra : {reason key: (n,) array}, optional
        More per-item values to report in each pick's reason.

    Returns
    -------
    Selection with an empty state (stateless strategies).
    """
    picks = top_k(scores, candidates, k, rng)
    values = np.asarray(scores, dtype=np.float64)[picks]
    columns = {key: np.asarray(col)[picks].tolist() for key, col in (extra or {}).items()}
    reasons = [{"strategy": name, "scorer": scorer_name, "value": round(float(v), 6),
                **{key: _plain(col[j]) for key, col in columns.items()}}
               for j, v in enumerate(values)]
    return Selection(picks, values, reasons, {})


def _plain(v: object) -> object:
    return round(v, 6) if isinstance(v, float) else v
