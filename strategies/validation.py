"""Checks run once on a :class:`QueryContext` at :func:`strategies.registry.select`, so the
strategies themselves can trust their inputs. Every message names the field, what is allowed and
what was received. All checks are O(size of the arrays) and vectorised (fine at 1M items).
"""

from __future__ import annotations

import numpy as np

from labeling.errors import InvalidInput
from strategies.base import QueryContext

__all__ = ["MISSING_REASON", "validate_context"]

# why a field can be missing, said in the reasons of a random fallback
MISSING_REASON = {
    "probs": "no end model yet",
    "lm_probs": "no label model yet",
    "votes": "no LF votes yet",
    "features": "no features yet",
    "assertions": "no model assertions evaluated yet",
    "mc_probs": "no MC-dropout passes yet",
    "labeled": "no labeled mask given",
    "labels": "no labels given",
}


def _array(ctx: QueryContext, name: str) -> np.ndarray | None:
    a = getattr(ctx, name)
    if a is not None and not isinstance(a, np.ndarray):
        raise InvalidInput(f"{name} must be a numpy array or None, got {type(a).__name__}")
    return a


def _check_probs(name: str, p: np.ndarray, shape: tuple[int, ...]) -> None:
    if p.shape != shape:
        raise InvalidInput(f"{name} must have shape {shape}, got {p.shape}")
    if not np.issubdtype(p.dtype, np.floating):
        raise InvalidInput(f"{name} must be a float array, got dtype {p.dtype}")
    if p.size == 0:
        return
    sums = p.sum(axis=-1, dtype=np.float64)  # NaN or inf anywhere in a row shows in its sum
    if not np.isfinite(sums).all():
        raise InvalidInput(f"{name} must be finite, got NaN or inf in {int((~np.isfinite(p)).sum())}"
                           " entries")
    if p.min() < -1e-6:
        raise InvalidInput(f"{name} must be >= 0, got a minimum of {float(p.min())}")
    bad = np.abs(sums - 1.0) > 1e-3
    if bad.any():
        raise InvalidInput(f"{name} rows must sum to 1 (within 1e-3); {int(bad.sum())} rows do not, "
                           f"e.g. one sums to {float(sums[bad].flat[0]):.6g}")


def _check_classes(name: str, a: np.ndarray, n_classes: int) -> None:
    if not np.issubdtype(a.dtype, np.integer):
        raise InvalidInput(f"{name} must be an integer array, got dtype {a.dtype}")
    if a.size and (a.min() < -1 or a.max() >= n_classes):
        raise InvalidInput(f"{name} must hold -1 or a class in 0..{n_classes - 1}, got values in "
                           f"{int(a.min())}..{int(a.max())}")


def validate_context(ctx: QueryContext, k: object, rng: object) -> None:
    """Raise :class:`InvalidInput` unless ``ctx``, ``k`` and ``rng`` are consistent.

    Checks: ``k`` an integer >= 0; ``rng`` a ``numpy.random.Generator``; ``n_classes`` >= 2;
    ``candidates`` a (n,) bool array; ``probs``/``lm_probs`` (n, K) finite rows summing to 1;
    ``mc_probs`` (T, n, K) likewise; ``labeled`` (n,) bool; ``labels`` (n,) int in -1..K-1;
    ``votes`` (n, m) int in -1..K-1; ``features`` (n, d); ``assertions`` (n, a) severities >= 0
    with one flag per name; ``state``/``params`` dicts, ``eval_metrics`` a dict or None.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise InvalidInput(f"k must be an integer >= 0, got {k!r}")
    if not isinstance(rng, np.random.Generator):
        raise InvalidInput(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    K = ctx.n_classes
    if isinstance(K, bool) or not isinstance(K, int | np.integer) or K < 2:
        raise InvalidInput(f"n_classes must be an integer >= 2, got {K!r}")
    cand = _array(ctx, "candidates")
    if cand is None or cand.ndim != 1 or cand.dtype != bool:
        got = "None" if cand is None else f"{cand.dtype} array of shape {cand.shape}"
        raise InvalidInput(f"candidates must be a 1-d bool array, got {got}")
    n = len(cand)
    for name in ("probs", "lm_probs"):
        p = _array(ctx, name)
        if p is not None:
            _check_probs(name, p, (n, K))
    mc = _array(ctx, "mc_probs")
    if mc is not None:
        if mc.ndim != 3:
            raise InvalidInput(f"mc_probs must have shape (T, {n}, {K}), got {mc.shape}")
        _check_probs("mc_probs", mc, (mc.shape[0], n, K))
    labeled = _array(ctx, "labeled")
    if labeled is not None and (labeled.shape != (n,) or labeled.dtype != bool):
        raise InvalidInput(f"labeled must be a ({n},) bool array, got {labeled.dtype} {labeled.shape}")
    labels = _array(ctx, "labels")
    if labels is not None:
        if labels.shape != (n,):
            raise InvalidInput(f"labels must have shape ({n},), got {labels.shape}")
        _check_classes("labels", labels, K)
    votes = _array(ctx, "votes")
    if votes is not None:
        if votes.ndim != 2 or len(votes) != n:
            raise InvalidInput(f"votes must have shape ({n}, m), got {votes.shape}")
        _check_classes("votes", votes, K)
    shape = getattr(ctx.features, "shape", None)
    if ctx.features is not None and (shape is None or len(shape) != 2 or shape[0] != n):
        raise InvalidInput(f"features must be an ({n}, d) array or scipy sparse matrix, got "
                           f"{type(ctx.features).__name__} of shape {shape}")
    a = ctx.assertions
    if a is not None:
        sev = getattr(a, "severity", None)
        if (not isinstance(sev, np.ndarray) or sev.shape != (n, len(a.names))
                or len(a.model_dependent) != len(a.names)
                or not np.isfinite(sev).all() or (sev.size and sev.min() < 0)):
            raise InvalidInput(f"assertions must have ({n}, {len(a.names)}) severities >= 0 and "
                               "one model_dependent flag per assertion name")
    for name in ("state", "params"):
        if not isinstance(getattr(ctx, name), dict):
            raise InvalidInput(f"{name} must be a dict, got {type(getattr(ctx, name)).__name__}")
    if ctx.eval_metrics is not None and not isinstance(ctx.eval_metrics, dict):
        raise InvalidInput(f"eval_metrics must be a dict or None, got {type(ctx.eval_metrics).__name__}")
