"""The strategy registry and the one entry point, :func:`select`, which validates the context."""

from __future__ import annotations

import dataclasses

import numpy as np

from labeling.errors import InvalidInput
from strategies.auto import Auto
from strategies.bal import BAL
from strategies.bald import BALD
from strategies.base import QueryContext, Selection, Strategy
from strategies.diversity import Hybrid, KCenter
from strategies.random import RandomStrategy
from strategies.uncertainty import UNCERTAINTY_STRATEGIES
from strategies.validation import MISSING_REASON, validate_context
from strategies.weak import WEAK_STRATEGIES

__all__ = ["available", "get_strategy", "register", "select", "with_random_share"]

_REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Add ``strategy`` under ``strategy.name`` (the conformance suite then covers it)."""
    fields = {f.name for f in dataclasses.fields(QueryContext)}
    unknown = set(strategy.requires) - fields
    if unknown:
        raise InvalidInput(f"{strategy.name}.requires names unknown context fields {sorted(unknown)}")
    _REGISTRY[strategy.name] = strategy
    return strategy


def available() -> list[str]:
    """Registered strategy names, sorted."""
    return sorted(_REGISTRY)


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``; an unknown name raises InvalidInput listing the others."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InvalidInput(f"unknown strategy {name!r}; available: {available()}") from None


def select(name: str, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
    """Pick up to ``k`` candidates with the strategy called ``name``.

    Validates ``ctx``, ``k`` and ``rng`` once (see :func:`validate_context`). When a field the
    strategy requires is None (no end model yet, no LF votes...), falls back to ``random`` and
    says so in every reason (``"fallback"``, ``"requested"``, ``"missing"``); the strategy's
    state is then passed through unchanged.

    Parameters
    ----------
    name : a registered strategy, see :func:`available`
    ctx : QueryContext over n items
    k : int >= 0; more than the number of candidates returns them all
    rng : numpy.random.Generator, the only source of randomness

    Returns
    -------
    Selection of min(k, n_candidates) distinct candidate indices, best first.
    """
    strategy = get_strategy(name)
    validate_context(ctx, k, rng)
    missing = sorted(f for f in strategy.requires if getattr(ctx, f) is None)
    if missing:
        sel = _REGISTRY["random"](ctx, k, rng)
        note = "; ".join(MISSING_REASON.get(f, f"no {f} yet") for f in missing)
        reasons = [{**r, "fallback": note, "requested": name, "missing": missing}
                   for r in sel.reasons]
        return Selection(sel.indices, sel.scores, reasons, dict(ctx.state))
    return strategy(ctx, k, rng)


def with_random_share(sel: Selection, sample: np.ndarray, share: float) -> Selection:
    """``sel`` with ``sample`` (positions in a random order drawn beforehand, none in ``sel``)
    spread through it at ``share`` (0 < share < 1; at 0.1 every tenth place), so that a batch
    leased from the front of the queue holds that share of random picks whatever the strategy
    (:func:`labeling.trust.decision_rows`); once one of the two runs out the other goes on."""
    keys = np.concatenate([np.arange(len(sel.indices)) / (1.0 - share),
                           (np.arange(len(sample)) + 1.0) / share - 1.0])
    order = np.argsort(keys, kind="stable")
    random_reason = {"strategy": "random", "scorer": "random_share", "value": 0.0}
    reasons = [*sel.reasons, *([random_reason] * len(sample))]
    return Selection(np.concatenate([sel.indices, sample]).astype(np.int64)[order],
                     np.concatenate([sel.scores, np.zeros(len(sample))])[order],
                     [reasons[o] for o in order], sel.state)


register(RandomStrategy())
for _strategy in (*UNCERTAINTY_STRATEGIES, *WEAK_STRATEGIES, KCenter(), Hybrid(), BAL(), BALD(), Auto(_REGISTRY)):
    register(_strategy)
