"""Strategies driven by weak supervision itself: LF conflict, low LF coverage, label-model
entropy, and label model vs end model disagreement."""

from __future__ import annotations

import numpy as np

from strategies.base import QueryContext, Selection
from strategies.scores import entropy
from strategies.selectors import top_k

__all__ = ["vote_conflict", "low_coverage_score", "disagreement", "ScoredStrategy", "WEAK_STRATEGIES"]


def vote_conflict(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """Entropy of the class distribution of the non-abstaining votes, times log(1 + #votes):
    items on which many LFs disagree score highest; (n, m) -> (n,)."""
    counts = np.stack([(votes == k).sum(axis=1) for k in range(n_classes)], axis=1).astype(np.float64)
    total = counts.sum(axis=1, keepdims=True)
    dist = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    return entropy(dist) * np.log1p(total[:, 0])


def low_coverage_score(votes: np.ndarray, probs: np.ndarray | None) -> np.ndarray:
    """1 - (#votes / #LFs), plus a small end-model uncertainty term to order equal coverage."""
    m = max(votes.shape[1], 1)
    score = 1.0 - (votes >= 0).sum(axis=1) / m
    if probs is not None:
        score = score + 1e-3 * entropy(probs) / np.log(probs.shape[1])
    return score


def disagreement(lm_probs: np.ndarray, probs: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Total-variation distance between label-model and end-model posteriors on LF-covered items
    (uncovered items score 0: the label model says nothing there)."""
    tv = 0.5 * np.abs(lm_probs.astype(np.float64) - probs.astype(np.float64)).sum(axis=1)
    return np.where(covered, tv, 0.0)


class ScoredStrategy:
    """A scoring measure over the context plus the top-k selector (modAL's shape)."""

    def __init__(self, name: str, requires: set[str], score, scorer: str) -> None:
        self.name, self.requires, self.score, self.scorer = name, frozenset(requires), score, scorer

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        scores = self.score(ctx)
        picks = top_k(scores, ctx.candidates, k, rng)
        reasons = [{"strategy": self.name, "scorer": self.scorer, "value": round(float(scores[i]), 6)}
                   for i in picks]
        return Selection(picks, scores[picks], reasons, {})


def _covered(ctx: QueryContext) -> np.ndarray:
    return (ctx.votes >= 0).any(axis=1) if ctx.votes is not None else np.ones(ctx.n, dtype=bool)


WEAK_STRATEGIES = [
    ScoredStrategy("lf_conflict", {"votes"}, lambda c: vote_conflict(c.votes, c.n_classes),
                   "vote_entropy"),
    ScoredStrategy("low_coverage", {"votes"}, lambda c: low_coverage_score(c.votes, c.probs),
                   "uncovered_share"),
    ScoredStrategy("label_model_entropy", {"lm_probs"}, lambda c: entropy(c.lm_probs),
                   "label_model_entropy"),
    ScoredStrategy("lm_disagreement", {"lm_probs", "probs"},
                   lambda c: disagreement(c.lm_probs, c.probs, _covered(c)), "total_variation"),
]
