"""Uncertainty sampling on the end model: least confidence, margin and entropy.

Each strategy is one scorer from :mod:`strategies.scores` plus the :func:`top_k` selector.
"""

from __future__ import annotations

import numpy as np

from strategies.base import QueryContext, Selection
from strategies.scores import scorer
from strategies.selectors import ranked

__all__ = ["UNCERTAINTY_STRATEGIES", "UncertaintyStrategy"]


class UncertaintyStrategy:
    """The candidates the end model is least sure of, by the scorer called ``name``.

    Requires ``ctx.probs`` (n, K); stateless. Reasons carry the scorer's value and the end
    model's predicted class.
    """

    requires = frozenset({"probs"})

    def __init__(self, name: str) -> None:
        self.name = name
        self.scorer = scorer(name, "name")

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        """Top ``k`` candidates by ``self.scorer(ctx.probs)``, best first."""
        scores = self.scorer(ctx.probs)
        sel = ranked(self.name, self.name, scores, ctx.candidates, k, rng)
        # the predicted class only for the picks, not the whole pool
        for reason, cls in zip(sel.reasons, np.asarray(ctx.probs)[sel.indices].argmax(axis=1),
                               strict=True):
            reason["predicted"] = int(cls)
        return sel


UNCERTAINTY_STRATEGIES = [UncertaintyStrategy(n) for n in ("least_confidence", "margin", "entropy")]
