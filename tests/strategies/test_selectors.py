"""top_k: the k highest candidates, best first, ties drawn at random, O(n) on large pools."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labeling.errors import InvalidInput
from strategies.selectors import ranked, top_k

# few distinct values, so ties are common
scores_st = arrays(np.float64, st.integers(1, 80), elements=st.sampled_from([-1.0, 0.0, 0.25, 0.5, 2.0])
                   | st.floats(-5, 5))


@settings(max_examples=100, deadline=None)
@given(scores_st, st.integers(0, 90), st.integers(0, 2**32 - 1), st.floats(0, 1))
def test_returns_the_k_highest_candidates(scores, k, seed, share):
    rng = np.random.default_rng(seed)
    cand = rng.random(len(scores)) < share
    picks = top_k(scores, cand, k, rng)
    n_cand = int(cand.sum())
    assert picks.dtype == np.int64 and len(picks) == min(k, n_cand) == len(set(picks.tolist()))
    assert cand[picks].all()
    assert (np.diff(scores[picks]) <= 0).all()  # best first
    rest = np.setdiff1d(np.flatnonzero(cand), picks)
    if len(picks) and len(rest):
        assert scores[picks].min() >= scores[rest].max()
    # the multiset of picked scores is exactly the k largest candidate scores
    expected = np.sort(scores[cand])[::-1][: len(picks)]
    np.testing.assert_array_equal(scores[picks], expected)


def test_ties_are_not_broken_by_position():
    scores = np.zeros(100)
    cand = np.ones(100, dtype=bool)
    firsts = [top_k(scores, cand, 10, np.random.default_rng(s)) for s in range(200)]
    share_low = np.mean([np.mean(p < 50) for p in firsts])
    assert 0.4 < share_low < 0.6  # by index it would be 1.0
    assert len({p[0] for p in firsts}) > 50


def test_ties_at_the_cut_are_drawn_fairly():
    scores = np.array([5.0] + [1.0] * 9)  # one clear winner, nine tied for the second place
    counts = np.zeros(10)
    for s in range(300):
        picks = top_k(scores, np.ones(10, dtype=bool), 2, np.random.default_rng(s))
        assert picks[0] == 0
        counts[picks[1]] += 1
    assert counts[1:].min() > 10  # each tied item wins sometimes


def test_same_rng_same_picks_and_edge_cases():
    scores = np.random.default_rng(0).random(50)
    cand = np.ones(50, dtype=bool)
    a, b = (top_k(scores, cand, 5, np.random.default_rng(3)) for _ in range(2))
    assert a.tolist() == b.tolist() == np.argsort(-scores)[:5].tolist()
    assert top_k(scores, cand, 0, np.random.default_rng(0)).shape == (0,)
    assert top_k(scores, np.zeros(50, dtype=bool), 5, np.random.default_rng(0)).shape == (0,)
    assert sorted(top_k(scores, cand, 500, np.random.default_rng(0)).tolist()) == list(range(50))


def test_a_million_items():
    rng = np.random.default_rng(0)
    scores = rng.random(1_000_000)
    cand = rng.random(1_000_000) < 0.9
    picks = top_k(scores, cand, 1000, rng)
    masked = np.where(cand, scores, -np.inf)
    assert picks.tolist() == np.argsort(-masked)[:1000].tolist()


def test_bad_inputs():
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidInput, match="scores must have shape"):
        top_k(np.zeros(3), np.ones(4, dtype=bool), 1, rng)
    with pytest.raises(InvalidInput, match="scores must be finite"):
        top_k(np.array([0.0, np.nan]), np.ones(2, dtype=bool), 1, rng)
    with pytest.raises(InvalidInput, match="k must be >= 0"):
        top_k(np.zeros(3), np.ones(3, dtype=bool), -1, rng)


def test_ranked_builds_reasons():
    scores = np.array([0.1, 0.9, 0.5])
    sel = ranked("demo", "measure", scores, np.ones(3, dtype=bool), 2, np.random.default_rng(0),
                 {"extra": np.array([7, 8, 9]), "ratio": np.array([0.1234567, 0.5, 0.25])})
    assert sel.indices.tolist() == [1, 2] and sel.scores.tolist() == [0.9, 0.5]
    assert sel.reasons == [
        {"strategy": "demo", "scorer": "measure", "value": 0.9, "extra": 8, "ratio": 0.5},
        {"strategy": "demo", "scorer": "measure", "value": 0.5, "extra": 9, "ratio": 0.25},
    ]
    assert sel.state == {}


def test_the_random_share_takes_every_tenth_place_until_it_runs_out():
    from strategies.base import Selection
    from strategies.registry import with_random_share

    picks = np.arange(100, 130)
    sel = Selection(picks, np.linspace(1, 0.1, 30), [{"strategy": "margin"}] * 30, {"s": 1})
    out = with_random_share(sel, np.array([7, 3, 5]), 0.1)
    assert len(out.indices) == 33 and out.state == {"s": 1}
    assert list(np.flatnonzero(out.indices < 100)) == [9, 19, 29]
    assert list(out.indices[[9, 19, 29]]) == [7, 3, 5]  # in the sample's own order
    assert list(out.indices[out.indices >= 100]) == list(picks)  # the strategy's order kept
    assert all(out.reasons[i] == {"strategy": "random", "scorer": "random_share", "value": 0.0}
               for i in (9, 19, 29)) and out.reasons[0] == {"strategy": "margin"}
    short = with_random_share(Selection(picks[:5], np.ones(5), [{}] * 5, {}), np.arange(4), 0.25)
    assert list(short.indices) == [100, 101, 102, 0, 103, 104, 1, 2, 3]  # picks ran out first
