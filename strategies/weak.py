"""Strategies driven by weak supervision itself: LF conflict, low LF coverage, label-model
entropy, and label model vs end model disagreement.

Each is a scoring measure over the context plus the :func:`top_k` selector; all are stateless.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from strategies.base import QueryContext, Selection
from strategies.scores import entropy
from strategies.selectors import ranked

__all__ = ["WEAK_STRATEGIES", "ScoredStrategy", "disagreement", "low_coverage_score",
           "vote_conflict", "vote_counts"]


def vote_counts(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """Votes per class. (n, m) int, -1 = abstain -> (n, K) float64."""
    counts = np.zeros((len(votes), n_classes), dtype=np.float64)
    for c in range(n_classes):
        counts[:, c] = (votes == c).sum(axis=1)
    return counts


def vote_conflict(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """How much the LFs that vote on an item disagree.

    Entropy of the class distribution of the non-abstaining votes, weighted by
    ``log(1 + n_votes)`` so that a 5-5 split outranks a 1-1 split; unanimous or unvoted items
    score 0.

    Parameters
    ----------
    votes : (n, m) int, -1 = abstain
    n_classes : K

    Returns
    -------
    (n,) float64 >= 0
    """
    counts = vote_counts(votes, n_classes)
    total = counts.sum(axis=1, keepdims=True)
    dist = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    return entropy(dist) * np.log1p(total[:, 0])


def low_coverage_score(votes: np.ndarray, probs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Share of LFs abstaining, with end-model entropy ordering items of equal coverage.

    Parameters
    ----------
    votes : (n, m) int, -1 = abstain
    probs : (n, K) float or None

    Returns
    -------
    score : (n,) float64
        ``1 - n_votes / m`` plus a tie-break term below ``0.5 / m``, so it never reorders
        different coverage levels.
    uncovered : (n,) float64
        ``1 - n_votes / m`` alone (1 for every item when there are no LFs).
    """
    m = votes.shape[1]
    uncovered = 1.0 - (votes >= 0).sum(axis=1) / m if m else np.ones(len(votes))
    score = uncovered.copy()
    if probs is not None and probs.shape[1] > 1:
        score += (0.5 / max(m, 1)) * entropy(probs) / np.log(probs.shape[1])
    return score, uncovered


def disagreement(lm_probs: np.ndarray, probs: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Total-variation distance between label-model and end-model posteriors.

    Parameters
    ----------
    lm_probs, probs : (n, K) float, rows summing to 1
    covered : (n,) bool
        Items with at least one LF vote; the others score 0 (the label model says nothing
        there, its posterior is only the class prior).

    Returns
    -------
    (n,) float64 in [0, 1]
    """
    tv = 0.5 * np.abs(lm_probs.astype(np.float64) - probs.astype(np.float64)).sum(axis=1)
    return np.where(covered, np.clip(tv, 0.0, 1.0), 0.0)


def _covered(ctx: QueryContext) -> np.ndarray:
    return (ctx.votes >= 0).any(axis=1) if ctx.votes is not None else np.ones(ctx.n, dtype=bool)


Measure = Callable[[QueryContext], tuple[np.ndarray, dict[str, np.ndarray]]]


class ScoredStrategy:
    """A measure over the context plus the top-k selector (modAL's shape).

    ``score(ctx)`` returns the (n,) scores and ``{reason key: (n,) values}`` to report per pick.
    """

    def __init__(self, name: str, requires: set[str], score: Measure, scorer: str) -> None:
        self.name, self.requires, self.score, self.scorer = name, frozenset(requires), score, scorer

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        """Top ``k`` candidates by ``self.score(ctx)``, best first."""
        scores, extra = self.score(ctx)
        return ranked(self.name, self.scorer, scores, ctx.candidates, k, rng, extra)


def _n_votes(ctx: QueryContext) -> np.ndarray:
    return (ctx.votes >= 0).sum(axis=1)


def _lf_conflict(ctx: QueryContext):
    return vote_conflict(ctx.votes, ctx.n_classes), {"n_votes": _n_votes(ctx)}


def _low_coverage(ctx: QueryContext):
    score, uncovered = low_coverage_score(ctx.votes, ctx.probs)
    return score, {"uncovered_share": uncovered, "n_votes": _n_votes(ctx)}


def _lm_entropy(ctx: QueryContext):
    return entropy(ctx.lm_probs), {"lm_predicted": ctx.lm_probs.argmax(axis=1)}


def _lm_disagreement(ctx: QueryContext):
    return disagreement(ctx.lm_probs, ctx.probs, _covered(ctx)), {
        "lm_predicted": ctx.lm_probs.argmax(axis=1), "predicted": ctx.probs.argmax(axis=1)}


WEAK_STRATEGIES = [
    ScoredStrategy("lf_conflict", {"votes"}, _lf_conflict, "vote_entropy"),
    ScoredStrategy("low_coverage", {"votes"}, _low_coverage, "uncovered_share"),
    ScoredStrategy("label_model_entropy", {"lm_probs"}, _lm_entropy, "label_model_entropy"),
    ScoredStrategy("lm_disagreement", {"lm_probs", "probs"}, _lm_disagreement, "total_variation"),
]
