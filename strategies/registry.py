"""The strategy registry and the one entry point, :func:`select`, which validates the context."""

from __future__ import annotations

import numpy as np

from labeling.errors import InvalidInput
from strategies.base import QueryContext, Selection, Strategy
from strategies.auto import Auto
from strategies.bal import BAL
from strategies.diversity import Hybrid, KCenter
from strategies.uncertainty import RandomStrategy, UncertaintyStrategy
from strategies.weak import WEAK_STRATEGIES

__all__ = ["register", "get_strategy", "available", "select"]

_REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    _REGISTRY[strategy.name] = strategy
    return strategy


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_strategy(name: str) -> Strategy:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InvalidInput(f"unknown strategy {name!r}; available: {available()}") from None


def _validate(ctx: QueryContext, k: int) -> None:
    if not isinstance(k, int | np.integer) or k < 0:
        raise InvalidInput(f"k must be an integer >= 0, got {k!r}")
    cand = np.asarray(ctx.candidates)
    if cand.ndim != 1 or cand.dtype != bool:
        raise InvalidInput(f"candidates must be a 1-d bool array, got {cand.dtype} {cand.shape}")
    n = len(cand)
    for name in ("probs", "lm_probs"):
        p = getattr(ctx, name)
        if p is None:
            continue
        if p.shape != (n, ctx.n_classes):
            raise InvalidInput(f"{name} must have shape ({n}, {ctx.n_classes}), got {p.shape}")
        if n and (not np.isfinite(p).all() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3)):
            raise InvalidInput(f"{name} rows must be finite and sum to 1")
    for name in ("labeled", "labels"):
        a = getattr(ctx, name)
        if a is not None and len(a) != n:
            raise InvalidInput(f"{name} must have length {n}, got {len(a)}")
    if ctx.votes is not None and (ctx.votes.ndim != 2 or len(ctx.votes) != n):
        raise InvalidInput(f"votes must have shape ({n}, m), got {ctx.votes.shape}")
    if ctx.features is not None and ctx.features.shape[0] != n:
        raise InvalidInput(f"features must have {n} rows, got {ctx.features.shape[0]}")
    a = ctx.assertions
    if a is not None and (a.severity.shape != (n, len(a.names)) or len(a.model_dependent) != len(a.names)
                          or (a.severity < 0).any()):
        raise InvalidInput(f"assertions must have (n={n}, {len(a.names)}) severities >= 0 and one"
                           " model_dependent flag per assertion")


def select(name: str, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
    """Pick up to ``k`` candidates with strategy ``name``; falls back to random (and says so in
    every reason) when a field the strategy needs is missing, e.g. before any model exists."""
    strategy = get_strategy(name)
    _validate(ctx, k)
    missing = sorted(f for f in strategy.requires if getattr(ctx, f) is None)
    if missing:
        sel = _REGISTRY["random"](ctx, k, rng)
        note = f"{name} needs {', '.join(missing)}, not available yet"
        reasons = [{**r, "fallback": note, "requested": name} for r in sel.reasons]
        return Selection(sel.indices, sel.scores, reasons, dict(ctx.state))
    return strategy(ctx, k, rng)


register(RandomStrategy())
for _name in ("least_confidence", "margin", "entropy"):
    register(UncertaintyStrategy(_name))
for _strategy in (*WEAK_STRATEGIES, KCenter(), Hybrid(), BAL(), Auto(_REGISTRY)):
    register(_strategy)
