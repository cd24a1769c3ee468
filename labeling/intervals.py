"""Evaluation figures with the number of items they rest on and a 95% interval.

Accuracy gets the Wilson score interval (sound at small n and at 0 or 1, where the normal
approximation collapses to a point); macro-F1, which has no closed form, a percentile bootstrap
over the evaluated items. ``accuracy 1.0`` on 2 items reads ``n_items 2, accuracy_ci [0.34, 1.0]``.
"""

from __future__ import annotations

import numpy as np

from labeling.errors import InvalidInput
from labeling.metrics import evaluate
from labeling.ties import predict

__all__ = ["Z95", "bootstrap_macro_f1", "evaluate_with_interval", "wilson"]

Z95 = 1.959963984540054
N_BOOT = 500


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion ``successes / n``; None when n = 0."""
    if n < 0 or not 0 <= successes <= n:
        raise InvalidInput(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def _macro_f1(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Macro-F1 of each row of ``y``/``pred`` (b, n), over the classes present in either."""
    b = len(y)
    offset = (np.arange(b) * k)[:, None]
    size = b * k
    tp = np.bincount((offset + y)[y == pred], minlength=size).reshape(b, k)
    true = np.bincount((offset + y).ravel(), minlength=size).reshape(b, k)
    guess = np.bincount((offset + pred).ravel(), minlength=size).reshape(b, k)
    present = (true + guess) > 0
    f1 = np.where(present, 2 * tp / np.maximum(true + guess, 1), 0.0)
    return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def bootstrap_macro_f1(y: np.ndarray, pred: np.ndarray, *, n_boot: int = N_BOOT,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of macro-F1 (resampling items with replacement)."""
    y, pred = np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    if y.shape != pred.shape or y.ndim != 1:
        raise InvalidInput(f"y and pred must be (n,), got {y.shape} and {pred.shape}")
    if len(y) == 0:
        return None
    k = int(max(y.max(), pred.max())) + 1
    rng = np.random.default_rng(seed)
    scores = []
    step = max(1, 2_000_000 // len(y))  # bound the resample block's memory
    for start in range(0, n_boot, step):
        pick = rng.integers(0, len(y), (min(step, n_boot - start), len(y)))
        scores.append(_macro_f1(y[pick], pred[pick], k))
    lo, hi = np.quantile(np.concatenate(scores), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def evaluate_with_interval(y_true: np.ndarray, probs: np.ndarray, *, seed: int = 0) -> dict:
    """:func:`labeling.metrics.evaluate` plus ``n_items``, ``accuracy_ci`` (Wilson) and
    ``macro_f1_ci`` (bootstrap), each ``[low, high]`` or None without items."""
    out = dict(evaluate(y_true, probs))
    n = int(out["n"])
    out["n_items"] = n
    if n == 0:
        out["accuracy_ci"] = out["macro_f1_ci"] = None
        return out
    pred = predict(np.asarray(probs))
    y = np.asarray(y_true)
    ci = wilson(int((pred == y).sum()), n)
    f1 = bootstrap_macro_f1(y, pred, seed=seed)
    out["accuracy_ci"] = [round(ci[0], 4), round(ci[1], 4)]
    out["macro_f1_ci"] = [round(f1[0], 4), round(f1[1], 4)]
    return out
