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
    n_classes: int
    candidates: np.ndarray  # (n,) bool: items a strategy may pick
    probs: np.ndarray | None = None  # (n, K) end-model probabilities; None before any model
    labeled: np.ndarray | None = None  # (n,) bool: has a human label
    labels: np.ndarray | None = None  # (n,) int human label or -1
    lm_probs: np.ndarray | None = None  # (n, K) label-model posteriors
    votes: np.ndarray | None = None  # (n, m) int8 LF votes, -1 = abstain
    features: Any = None  # (n, d) ndarray or scipy sparse matrix
    assertions: AssertionVotes | None = None  # for the assertion bandit
    eval_metrics: dict | None = None  # latest metrics on the evaluation slice
    state: dict = field(default_factory=dict)  # this strategy's state from the previous round
    params: dict = field(default_factory=dict)  # user parameters

    @property
    def n(self) -> int:
        return len(self.candidates)


@dataclass(frozen=True)
class Selection:
    indices: np.ndarray  # (k,) int64 positions, best first
    scores: np.ndarray  # (k,) float64, higher = more worth labeling
    reasons: list[dict]  # one per pick, JSON-serialisable
    state: dict  # the strategy's next state (JSON-serialisable)


class Strategy(Protocol):
    name: str
    requires: frozenset[str]

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection: ...
