"""k-center and hybrid: spread over clusters, labeled items as centers, sparse input, bounds."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from labeling.errors import InvalidInput
from strategies import QueryContext, select
from strategies.diversity import embed, kcenter_greedy, min_sq_distances

CENTERS = np.array([[0, 0], [100, 0], [0, 100], [100, 100]], dtype=np.float32)


def clusters(per: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    which = np.repeat(np.arange(4), per)
    return (CENTERS[which] + rng.normal(size=(4 * per, 2))).astype(np.float32), which


@pytest.mark.parametrize("seed", range(5))
def test_one_pick_per_cluster(seed):
    x, which = clusters(seed=seed)
    ctx = QueryContext(2, np.ones(len(x), dtype=bool), features=x)
    sel = select("kcenter", ctx, 4, np.random.default_rng(seed))
    assert sorted(which[sel.indices].tolist()) == [0, 1, 2, 3]
    assert (np.diff(sel.scores) <= 1e-9).all()
    assert sel.scores[0] == pytest.approx(sel.scores[1])  # first pick: the radius it leaves


def test_labeled_items_are_centers():
    x, which = clusters()
    labeled = np.zeros(len(x), dtype=bool)
    labeled[[0, 60]] = True  # clusters 0 and 1 are already covered
    ctx = QueryContext(2, ~labeled, features=x, labeled=labeled)
    sel = select("kcenter", ctx, 2, np.random.default_rng(0))
    assert sorted(which[sel.indices].tolist()) == [2, 3]
    assert all(r["n_centers"] == 2 for r in sel.reasons)


def test_sparse_high_dimensional_features():
    rng = np.random.default_rng(0)
    which = np.repeat(np.arange(4), 40)
    topic = which[:, None] * 1000 + np.arange(6)  # six words every item of a cluster shares
    noise = rng.integers(10_000, 2**18, (160, 3))  # and three rare words of its own
    cols = np.hstack([topic, noise])
    rows = np.repeat(np.arange(160), 9)
    x = sp.csr_matrix((np.ones(160 * 9, np.float32), (rows, cols.ravel())), shape=(160, 2**18))
    ctx = QueryContext(2, np.ones(160, dtype=bool), features=x)
    sel = select("kcenter", ctx, 4, np.random.default_rng(1))
    assert sorted(which[sel.indices].tolist()) == [0, 1, 2, 3]


def test_embed_shapes_and_determinism():
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(30, 5))
    rows = np.array([3, 1, 2])
    np.testing.assert_array_equal(embed(dense, rows, np.random.default_rng(0)), dense[rows].astype(np.float32))
    wide = rng.normal(size=(30, 300))
    a, b = (embed(wide, rows, np.random.default_rng(4)) for _ in range(2))
    assert a.shape == (3, 64) and a.dtype == np.float32 and np.array_equal(a, b)
    sparse = sp.random(30, 10_000, density=0.01, format="csr", random_state=np.random.default_rng(0))
    assert embed(sparse, rows, np.random.default_rng(0)).shape == (3, 64)


def test_min_sq_distances_matches_brute_force():
    rng = np.random.default_rng(0)
    p, c = rng.normal(size=(500, 6)).astype(np.float32), rng.normal(size=(70, 6)).astype(np.float32)
    brute = ((p[:, None, :] - c[None, :, :]) ** 2).sum(axis=2).min(axis=1)
    np.testing.assert_allclose(min_sq_distances(p, c), brute, rtol=1e-4, atol=1e-4)


def test_greedy_is_farthest_first_and_capped_greedy_stays_valid():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(300, 3)).astype(np.float32)
    picks, gains = kcenter_greedy(p, 20, np.random.default_rng(1))
    for i in range(2, 20):  # each pick is the farthest point from the ones before it
        d = np.sqrt(min_sq_distances(p, p[picks[:i]]))
        assert gains[i] == pytest.approx(d.max(), rel=1e-4)
    picks, gains = kcenter_greedy(p, 50, np.random.default_rng(1), max_greedy=5)
    assert len(set(picks.tolist())) == 50 and (np.diff(gains) <= 1e-6).all()


def test_duplicate_points_still_give_distinct_picks_in_random_order():
    x = np.zeros((100, 3), dtype=np.float32)
    ctx = QueryContext(2, np.ones(100, dtype=bool), features=x)
    firsts = {int(select("kcenter", ctx, 5, np.random.default_rng(s)).indices[0]) for s in range(30)}
    sel = select("kcenter", ctx, 5, np.random.default_rng(0))
    assert len(set(sel.indices.tolist())) == 5 and len(firsts) > 10


def test_pool_cap_is_reported():
    x, _ = clusters(per=100)
    ctx = QueryContext(2, np.ones(len(x), dtype=bool), features=x, params={"max_pool": 50})
    sel = select("kcenter", ctx, 4, np.random.default_rng(0))
    assert len(sel.indices) == 4
    assert all(r["pool_sampled"] == 50 and r["pool_size"] == 400 for r in sel.reasons)


def test_hybrid_picks_diverse_items_among_the_uncertain():
    x, which = clusters()
    rng = np.random.default_rng(0)
    confident = rng.random(len(x)) < 0.7
    probs = np.where(confident[:, None], [[0.99, 0.01]], [[0.5, 0.5]]) + rng.uniform(0, 0.005, (len(x), 1)) * [1, -1]
    ctx = QueryContext(2, np.ones(len(x), dtype=bool), probs=probs, features=x,
                       params={"scorer": "margin", "preselect_factor": 10})
    sel = select("hybrid", ctx, 4, np.random.default_rng(0))
    assert not confident[sel.indices].any()
    assert sorted(which[sel.indices].tolist()) == [0, 1, 2, 3]
    assert all(r["preselected_by"] == "margin" and r["preselected"] == 40 for r in sel.reasons)


@pytest.mark.parametrize(("params", "message"), [
    ({"scorer": "variance"}, r"params\['scorer'\] must be one of"),
    ({"preselect_factor": 0}, r"params\['preselect_factor'\] must be an integer >= 1"),
    ({"preselect_factor": 2.5}, r"params\['preselect_factor'\] must be an integer >= 1"),
    ({"max_pool": "all"}, r"params\['max_pool'\] must be an integer >= 1"),
])
def test_bad_params_name_themselves(params, message):
    x, _ = clusters()
    ctx = QueryContext(2, np.ones(len(x), dtype=bool), probs=np.full((len(x), 2), 0.5), features=x,
                       params=params)
    for k in (0, 4):
        with pytest.raises(InvalidInput, match=message):
            select("hybrid", ctx, k, np.random.default_rng(0))
