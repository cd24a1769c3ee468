"""BALD: mutual information between the prediction and the model, from MC-dropout passes."""

from __future__ import annotations

import numpy as np

from strategies.base import QueryContext, Selection
from strategies.scores import entropy
from strategies.selectors import top_k

__all__ = ["BALD", "bald_score"]


def bald_score(mc_probs: np.ndarray) -> np.ndarray:
    """(T, n, K) -> (n,): H(mean_t p_t) - mean_t H(p_t), >= 0."""
    mean = mc_probs.mean(axis=0)
    expected = np.mean([entropy(p) for p in mc_probs], axis=0)
    return np.maximum(entropy(mean) - expected, 0.0)


class BALD:
    name = "bald"
    requires = frozenset({"mc_probs"})

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        scores = bald_score(ctx.mc_probs)
        picks = top_k(scores, ctx.candidates, k, rng)
        reasons = [{"strategy": self.name, "scorer": "mutual_information",
                    "value": round(float(scores[i]), 6), "passes": int(ctx.mc_probs.shape[0])}
                   for i in picks]
        return Selection(picks, scores[picks], reasons, {})
