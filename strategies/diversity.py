"""Diversity: greedy k-center (farthest-first) on item features, and ``hybrid``, uncertainty
pre-selection followed by k-center inside the pre-selected items (Sener & Savarese's core-set
greedy; the hybrid after Ash et al.'s observation that uncertain picks cluster).

Features are embedded to at most 64 dense dimensions by a random projection seeded from ``rng``
(a sparse sign projection for scipy sparse input, so TF-IDF with 2**19 columns stays O(nnz)).
The greedy loop is O(pool * k * 64) and seeding it with the labeled items O(pool * labeled * 64),
so both are bounded (``WORK_BUDGET``, ``CENTER_BUDGET``) by seeded samples of the pool and of the
labeled items (``params["max_pool"]`` overrides the pool size); reasons say when that happened.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from labeling.errors import InvalidInput
from strategies.base import QueryContext, Selection
from strategies.scores import scorer
from strategies.selectors import top_k

__all__ = ["Hybrid", "KCenter", "embed", "kcenter_greedy", "min_sq_distances"]

MAX_DIM = 64
ROW_CHUNK = 16_384
WORK_BUDGET = 20_000_000  # pool size * greedy steps (about a second on one core)
CENTER_BUDGET = 50_000_000  # pool size * labeled centers (one blocked matrix product)
MIN_POOL = 20_000
MIN_CENTERS = 100


def _projection(d: int, sparse: bool, rng: np.random.Generator):
    if sparse:  # s nonzero +-1/sqrt(s) per input column (a sparse Johnson-Lindenstrauss map)
        s = 4
        rows = np.repeat(np.arange(d), s)
        cols = rng.integers(0, MAX_DIM, size=d * s)
        vals = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=d * s) / np.sqrt(s)
        return sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(d, MAX_DIM))
    return (rng.standard_normal((d, MAX_DIM), dtype=np.float32) / np.sqrt(MAX_DIM))


def embed(features, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dense float32 view of ``features[rows]`` with at most 64 columns, built in row chunks.

    Parameters
    ----------
    features : (n, d) ndarray or scipy sparse matrix
    rows : (r,) int
    rng : numpy.random.Generator
        Seeds the projection, used when the input is sparse or ``d > 64``.

    Returns
    -------
    (r, min(d, 64)) float32, C-contiguous; (r, 64) for sparse input
    """
    sparse = sp.issparse(features)
    d = features.shape[1]
    proj = _projection(d, sparse, rng) if sparse or d > MAX_DIM else None
    out = np.empty((len(rows), MAX_DIM if proj is not None else d), dtype=np.float32)
    for start in range(0, len(rows), ROW_CHUNK):
        x = features[rows[start:start + ROW_CHUNK]]
        if proj is not None:
            x = x @ proj
        out[start:start + ROW_CHUNK] = x.toarray() if sp.issparse(x) else np.asarray(x)
    return out


def min_sq_distances(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance from each point to its nearest center, in blocks.

    Parameters
    ----------
    points : (n, d) float32
    centers : (c, d) float32, c >= 1

    Returns
    -------
    (n,) float32 >= 0
    """
    out = np.full(len(points), np.inf, dtype=np.float32)
    sq_p = np.einsum("ij,ij->i", points, points)
    sq_c = np.einsum("ij,ij->i", centers, centers)
    step = max(1, 4_000_000 // max(len(centers), 1))  # about 16 MB per block
    for start in range(0, len(points), step):
        block = slice(start, start + step)
        for cs in range(0, len(centers), ROW_CHUNK):
            cb = slice(cs, cs + ROW_CHUNK)
            d = sq_p[block, None] - 2 * points[block] @ centers[cb].T + sq_c[None, cb]
            np.minimum(out[block], d.min(axis=1), out=out[block])
    return np.maximum(out, 0.0)


def kcenter_greedy(points: np.ndarray, k: int, rng: np.random.Generator,
                   centers: np.ndarray | None = None, max_greedy: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Greedy k-center: repeatedly pick the point farthest from every center so far.

    Parameters
    ----------
    points : (n, d) float32
        The pool to pick from.
    k : int
    rng : numpy.random.Generator
        Orders the pool, so equal distances are broken at random; picks the first point when
        there are no centers.
    centers : (c, d) float32, optional
        Fixed centers (for instance the labeled items).
    max_greedy : int, optional
        Greedy steps at most (each is O(n d)); picks beyond them follow by distance to the
        centers chosen so far, without further updates.

    Returns
    -------
    picks : (min(k, n),) int64 positions into ``points``, in pick order
    gains : (min(k, n),) float64 distance to the nearest center at pick time (non-increasing);
        a first pick without centers gets the covering radius it leaves, like the second pick.
    """
    n = len(points)
    k = min(int(k), n)
    if k == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    greedy = k if max_greedy is None else max(1, min(k, int(max_greedy)))
    order = rng.permutation(n)
    pts = np.ascontiguousarray(points[order], dtype=np.float32)
    sq = np.einsum("ij,ij->i", pts, pts)
    has_centers = centers is not None and len(centers) > 0
    dist = min_sq_distances(pts, centers) if has_centers else np.full(n, np.inf, np.float32)
    picks = np.empty(k, dtype=np.int64)
    gains = np.empty(k, dtype=np.float64)
    buf = np.empty(n, dtype=np.float32)
    for i in range(greedy):
        c = int(np.argmax(dist)) if (i or has_centers) else 0
        picks[i], gains[i] = c, dist[c]
        dist[c] = -np.inf  # taken: the minimum below keeps it at -inf
        np.einsum("ij,j->i", pts, pts[c], out=buf)  # not BLAS gemv: its threads spin under load
        buf *= -2.0
        buf += sq
        buf += sq[c]
        np.minimum(dist, buf, out=dist)
        if i == 0 and not has_centers:  # the covering radius the first pick leaves
            gains[0] = max(float(dist.max()), 0.0)
    if greedy < k:  # the rest by distance to the chosen centers (stable: ties stay random)
        rest = np.argsort(-dist, kind="stable")[: k - greedy]
        picks[greedy:], gains[greedy:] = rest, dist[rest]
    return order[picks].astype(np.int64), np.sqrt(np.maximum(gains, 0.0))


def _int_param(params: dict, key: str, default: int, minimum: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InvalidInput(f"params[{key!r}] must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _kcenter(name: str, ctx: QueryContext, pool: np.ndarray, k: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """k-center over the candidate positions ``pool``, the labeled items as fixed centers.

    Work is bounded: the pool is sampled to about ``WORK_BUDGET / k`` items, the labeled
    centers to about ``CENTER_BUDGET / pool``, and greedy steps to ``WORK_BUDGET / pool``;
    each reason says which bound applied.
    """
    max_pool = _int_param(ctx.params, "max_pool", 0, 1) if "max_pool" in ctx.params else None
    k = min(k, len(pool))
    if k == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64), []
    labeled = np.zeros(ctx.n, dtype=bool) if ctx.labeled is None else ctx.labeled.copy()
    labeled[pool] = False
    centers = np.flatnonzero(labeled)
    if max_pool is None:
        max_pool = max(MIN_POOL, min(WORK_BUDGET // k, CENTER_BUDGET // max(len(centers), 1)))
    cap = max(max_pool, k)
    note: dict = {}
    if len(pool) > cap:
        note.update(pool_sampled=cap, pool_size=len(pool))
        pool = np.sort(rng.choice(pool, cap, replace=False))
    max_centers = max(MIN_CENTERS, CENTER_BUDGET // len(pool))
    if len(centers) > max_centers:
        note.update(centers_sampled=max_centers, labeled_size=len(centers))
        centers = np.sort(rng.choice(centers, max_centers, replace=False))
    greedy = max(1, WORK_BUDGET // len(pool))
    if greedy < k:
        note.update(greedy_picks=greedy)
    emb = embed(ctx.features, np.concatenate([pool, centers]).astype(np.int64), rng)
    local, gains = kcenter_greedy(emb[: len(pool)], k, rng, emb[len(pool):], greedy)
    reasons = [{"strategy": name, "scorer": "distance_to_nearest_center", "value": round(float(g), 6),
                "n_centers": len(centers), **note} for g in gains]
    return pool[local].astype(np.int64), gains, reasons


class KCenter:
    """Greedy k-center on ``ctx.features``, starting from the labeled items as centers (or one
    random candidate when nothing is labeled). Requires ``features``; stateless.

    Params: ``max_pool`` (int) caps the candidates considered (a seeded sample beyond it).
    Score of a pick: its distance to the nearest labeled item or earlier pick.
    """

    name = "kcenter"
    requires = frozenset({"features"})

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        """Up to ``k`` candidates, farthest-first, best first."""
        picks, gains, reasons = _kcenter(self.name, ctx, np.flatnonzero(ctx.candidates), k, rng)
        return Selection(picks, gains, reasons, {})


class Hybrid:
    """Top ``preselect_factor * k`` candidates by an uncertainty scorer, then k-center inside
    them. Requires ``probs`` and ``features``; stateless.

    Params: ``scorer`` ("entropy" by default, or "margin" / "least_confidence"),
    ``preselect_factor`` (int >= 1, default 10), ``max_pool`` as for ``kcenter``.
    """

    name = "hybrid"
    requires = frozenset({"probs", "features"})

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        """Up to ``k`` diverse picks among the most uncertain candidates."""
        scorer_name = ctx.params.get("scorer", "entropy")
        scores = scorer(scorer_name, "params['scorer']")(ctx.probs)
        factor = _int_param(ctx.params, "preselect_factor", 10, 1)
        pre = top_k(scores, ctx.candidates, factor * k, rng)
        picks, gains, reasons = _kcenter(self.name, ctx, np.sort(pre), k, rng)
        for r, i in zip(reasons, picks, strict=True):
            r.update(preselected_by=scorer_name, preselected=len(pre),
                     uncertainty=round(float(scores[i]), 6))
        return Selection(picks, gains, reasons, {})
