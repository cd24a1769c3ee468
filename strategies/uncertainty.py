"""Random and uncertainty sampling (least confidence, margin, entropy)."""

from __future__ import annotations

import numpy as np

from strategies.base import QueryContext, Selection
from strategies.scores import SCORERS
from strategies.selectors import top_k

__all__ = ["RandomStrategy", "UncertaintyStrategy"]


class RandomStrategy:
    name = "random"
    requires: frozenset[str] = frozenset()

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        idx = np.flatnonzero(ctx.candidates)
        picks = rng.permutation(idx)[: min(k, len(idx))].astype(np.int64)
        scores = np.zeros(len(picks))
        reasons = [{"strategy": self.name, "scorer": "uniform", "value": 0.0} for _ in picks]
        return Selection(picks, scores, reasons, {})


class UncertaintyStrategy:
    requires = frozenset({"probs"})

    def __init__(self, name: str) -> None:
        self.name = name
        self.scorer = SCORERS[name]

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        scores = self.scorer(ctx.probs)
        picks = top_k(scores, ctx.candidates, k, rng)
        reasons = [{"strategy": self.name, "scorer": self.name, "value": round(float(scores[i]), 6)}
                   for i in picks]
        return Selection(picks, scores[picks], reasons, {})
