"""Diversity: greedy k-center (farthest-first) and uncertainty pre-selection + k-center."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from strategies.base import QueryContext, Selection
from strategies.scores import SCORERS
from strategies.selectors import top_k

__all__ = ["embed", "kcenter_greedy", "KCenter", "Hybrid"]

MAX_DIM = 64
CHUNK = 50_000
MAX_POOL = 20_000


def embed(features, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dense (len(rows), <= 64) float32 view of ``features[rows]``: a seeded Gaussian random
    projection when the features are sparse or wider than 64 (distances are roughly kept)."""
    x = features[rows]
    d = x.shape[1]
    if d > MAX_DIM or sp.issparse(x):
        proj = rng.normal(size=(d, MAX_DIM)).astype(np.float32) / np.sqrt(MAX_DIM)
        x = x @ proj
    return np.asarray(x, dtype=np.float32)


def kcenter_greedy(points: np.ndarray, centers: np.ndarray, k: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Pick k rows of ``points`` farthest-first from ``centers`` (rows of the same array, may be
    empty: then the first pick is random). Returns (picks, distance at pick time)."""
    n = len(points)
    k = min(k, n)
    dist = np.full(n, np.inf, dtype=np.float64)
    sq = (points.astype(np.float64) ** 2).sum(axis=1)

    def update(c: int) -> None:
        for start in range(0, n, CHUNK):
            block = slice(start, start + CHUNK)
            d = sq[block] - 2 * points[block] @ points[c] + sq[c]
            np.minimum(dist[block], np.maximum(d, 0.0), out=dist[block])

    for c in centers:
        update(int(c))
    taken = np.zeros(n, dtype=bool)
    taken[np.asarray(centers, dtype=np.int64)] = True
    picks, gains = [], []
    for _ in range(k):
        if taken.all():
            break
        if not np.isfinite(dist).any():  # no center yet: start anywhere
            c = int(rng.integers(n))
        else:
            c = int(np.argmax(np.where(taken, -1.0, dist)))
        picks.append(c)
        gains.append(float(np.sqrt(dist[c])) if np.isfinite(dist[c]) else 0.0)
        taken[c] = True
        update(c)
    return np.array(picks, dtype=np.int64), np.array(gains)


class KCenter:
    name = "kcenter"
    requires = frozenset({"features"})

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        cand = np.flatnonzero(ctx.candidates)
        labeled = np.flatnonzero(ctx.labeled) if ctx.labeled is not None else np.empty(0, int)
        return _kcenter(self.name, ctx, cand, labeled, k, rng, {})


def _kcenter(name, ctx, cand, labeled, k, rng, extra) -> Selection:
    """k-center over ``cand`` with the ``labeled`` rows as fixed centers; at most MAX_POOL
    candidates (a seeded sample) keep the greedy loop at O(MAX_POOL * k)."""
    if len(cand) > MAX_POOL:
        cand = np.sort(rng.choice(cand, MAX_POOL, replace=False))
    rows = np.concatenate([cand, labeled]).astype(np.int64)
    points = embed(ctx.features, rows, rng)
    local, gains = kcenter_greedy(points, np.arange(len(cand), len(rows)), min(k, len(cand)), rng)
    keep = local < len(cand)
    picks, gains = cand[local[keep]], gains[keep]
    reasons = [{"strategy": name, "scorer": "distance_to_nearest_center", "value": round(g, 6),
                **extra} for g in gains]
    return Selection(picks.astype(np.int64), gains.astype(np.float64), reasons, {})


class Hybrid:
    """Top ``preselect_factor * k`` by an uncertainty scorer, then k-center inside them."""

    name = "hybrid"
    requires = frozenset({"probs", "features"})

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        scorer = ctx.params.get("scorer", "entropy")
        factor = int(ctx.params.get("preselect_factor", 10))
        scores = SCORERS[scorer](ctx.probs)
        pre = top_k(scores, ctx.candidates, factor * k, rng)
        labeled = np.flatnonzero(ctx.labeled) if ctx.labeled is not None else np.empty(0, int)
        sel = _kcenter(self.name, ctx, pre, labeled, k, rng, {"preselected_by": scorer})
        for r, i in zip(sel.reasons, sel.indices, strict=True):
            r["uncertainty"] = round(float(scores[i]), 6)
        return sel
