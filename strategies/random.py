"""Random sampling: the baseline every strategy is compared with, and the fallback of
:func:`strategies.registry.select` when a strategy's inputs do not exist yet."""

from __future__ import annotations

import numpy as np

from strategies.base import QueryContext, Selection

__all__ = ["RandomStrategy"]


class RandomStrategy:
    """Uniform sample of the candidates without replacement; every score is 0.

    Needs nothing but ``ctx.candidates``; stateless.
    """

    name = "random"
    requires: frozenset[str] = frozenset()

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        """Pick ``min(k, n_candidates)`` candidates uniformly at random.

        Returns
        -------
        Selection with (k,) int64 indices, (k,) zero scores and reasons
        ``{"strategy": "random", "scorer": "uniform", "value": 0.0}``.
        """
        idx = np.flatnonzero(ctx.candidates)
        picks = rng.permutation(idx)[: min(k, len(idx))].astype(np.int64)
        reasons = [{"strategy": self.name, "scorer": "uniform", "value": 0.0} for _ in picks]
        return Selection(picks, np.zeros(len(picks), dtype=np.float64), reasons, {})
