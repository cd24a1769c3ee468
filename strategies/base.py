"""What every strategy takes and returns. Strategies are pure: state comes in and goes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = ["AssertionVotes", "QueryContext", "Selection", "Strategy"]


@dataclass(frozen=True)
class AssertionVotes:
    """Model assertions evaluated on the pool: severity >= 0 per item, 0 = abstain; only the
    order within an assertion matters."""

    names: list[str]
    severity: np.ndarray  # (n, a) float
    model_dependent: list[bool]  # False: never improves with retraining (exploration only)


@dataclass(frozen=True)
class QueryContext:
    """Everything a strategy may look at, for a pool of n items and K classes.

    Array fields are read-only inputs (strategies never mutate them); optional ones are None
    until they exist (no end model before the first round, no LF votes before any LF...).
    :func:`strategies.registry.select` validates them once. ``state`` is what this strategy
    returned as ``Selection.state`` last round (JSON-serialisable); ``params`` are the user's
    strategy parameters.
    """

    n_classes: int
    candidates: np.ndarray  # (n,) bool: items a strategy may pick
    probs: np.ndarray | None = None  # (n, K) end-model probabilities; None before any model
    labeled: np.ndarray | None = None  # (n,) bool: has a human label
    labels: np.ndarray | None = None  # (n,) int human label or -1
    lm_probs: np.ndarray | None = None  # (n, K) label-model posteriors
    votes: np.ndarray | None = None  # (n, m) int8 LF votes, -1 = abstain
    features: Any = None  # (n, d) ndarray or scipy sparse matrix
    assertions: AssertionVotes | None = None  # for the assertion bandit
    mc_probs: np.ndarray | None = None  # (T, n, K) MC-dropout passes, for BALD
    eval_metrics: dict | None = None  # latest metrics on the evaluation slice
    state: dict = field(default_factory=dict)  # this strategy's state from the previous round
    params: dict = field(default_factory=dict)  # user parameters

    @property
    def n(self) -> int:
        """Number of items in the pool."""
        return len(self.candidates)


@dataclass(frozen=True)
class Selection:
    """A strategy's picks: distinct candidate positions, best first, each with a score (higher =
    more worth labeling) and a reason ``{"strategy", "scorer", "value", ...}``, plus the
    strategy's next state. Reasons and state are JSON-serialisable (the store keeps them)."""

    indices: np.ndarray  # (k,) int64 positions, best first
    scores: np.ndarray  # (k,) float64, higher = more worth labeling
    reasons: list[dict]  # one per pick, JSON-serialisable
    state: dict  # the strategy's next state (JSON-serialisable)


class Strategy(Protocol):
    """A query strategy: a pure callable; no state kept on the object between calls.

    ``requires`` names the :class:`QueryContext` fields that must not be None; when one is,
    :func:`strategies.registry.select` falls back to ``random`` instead of calling it.
    """

    name: str
    requires: frozenset[str]

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection: ...
