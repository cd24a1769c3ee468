"""Uncertainty scorers (modAL's "measure" half of a strategy): (n, K) probabilities -> (n,) scores.

Higher always means more uncertain, so more worth labeling. A one-hot row scores 0 under every
scorer and the uniform row scores the maximum.
"""

from __future__ import annotations

import numpy as np

from labeling.errors import InvalidInput

__all__ = ["SCORERS", "entropy", "least_confidence", "margin", "scorer"]


def _rows(probs: np.ndarray, name: str = "probs") -> np.ndarray:
    """Float rows as given (float32 pools are scored in float32, without a float64 copy)."""
    p = np.asarray(probs)
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise InvalidInput(f"{name} must be a 2-d (n, K) array, got shape {p.shape}")
    return p


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """``1 - max_k p_k``.

    Parameters
    ----------
    probs : (n, K) float, rows summing to 1

    Returns
    -------
    (n,) float64 in [0, 1 - 1/K]
    """
    return np.clip(1.0 - _rows(probs).max(axis=1), 0.0, None).astype(np.float64)


def margin(probs: np.ndarray) -> np.ndarray:
    """``1 - (p_(1) - p_(2))``: a small gap between the two most likely classes scores high.

    Parameters
    ----------
    probs : (n, K) float, rows summing to 1, K >= 2

    Returns
    -------
    (n,) float64 in [0, 1]
    """
    p = _rows(probs)
    if p.shape[1] < 2:
        raise InvalidInput(f"margin needs at least 2 classes, got probs of shape {p.shape}")
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    return np.clip(1.0 - (top2[:, 0] - top2[:, 1]), 0.0, 1.0).astype(np.float64)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy ``-sum_k p_k log p_k`` in nats; ``0 log 0 = 0``.

    Parameters
    ----------
    probs : (n, K) float, rows summing to 1

    Returns
    -------
    (n,) float64 in [0, log K]
    """
    p = _rows(probs)
    log_p = np.log(p, where=p > 0, out=np.zeros_like(p))  # 0 where p <= 0: 0 log 0 = 0
    return np.maximum(-np.einsum("ij,ij->i", p, log_p), 0.0).astype(np.float64)


SCORERS = {"least_confidence": least_confidence, "margin": margin, "entropy": entropy}


def scorer(name: object, param: str = "scorer"):
    """The scorer called ``name``; an unknown name raises InvalidInput naming ``param``."""
    if name not in SCORERS:
        raise InvalidInput(f"{param} must be one of {sorted(SCORERS)}, got {name!r}")
    return SCORERS[name]
