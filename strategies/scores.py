"""Uncertainty scorers: (n, K) probabilities -> (n,) scores, higher = more uncertain."""

from __future__ import annotations

import numpy as np

__all__ = ["least_confidence", "margin", "entropy", "SCORERS"]


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """1 - max_k p_k, in [0, 1 - 1/K]."""
    return 1.0 - np.asarray(probs, dtype=np.float64).max(axis=1)


def margin(probs: np.ndarray) -> np.ndarray:
    """1 - (p_(1) - p_(2)), in [0, 1]: a small gap between the top two classes scores high."""
    p = np.asarray(probs, dtype=np.float64)
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    return 1.0 - (top2[:, 0] - top2[:, 1])


def entropy(probs: np.ndarray) -> np.ndarray:
    """-sum p log p (nats), in [0, log K]."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return np.maximum(-terms.sum(axis=1), 0.0)


SCORERS = {"least_confidence": least_confidence, "margin": margin, "entropy": entropy}
