"""Consensus: reviewer decisions first, then a quality-weighted vote (pure core)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling.consensus import adjudicate, consensus, quality_weights


def test_weights_break_ties_and_can_outvote_but_agreement_stays_a_head_count():
    events = [(0, "good", 1), (0, "bad", 0),  # a 1-1 tie without weights
              (1, "good", 1), (1, "bad", 0), (1, "meh", 0)]
    labels, agreement, _ = consensus(events, 2, 2)
    assert labels.tolist() == [-1, 0]
    labels, agreement2, _ = consensus(events, 2, 2, weights={"good": 0.95, "bad": 0.4, "meh": 0.5})
    assert labels.tolist() == [1, 1]  # 0.95 > 0.4 + 0.5
    assert np.allclose(agreement2, agreement) and np.allclose(agreement, [0.5, 2 / 3])
    # an annotator without an estimate weighs the median of the others' (here 0.5 vs 0.95)
    labels, _, _ = consensus([(0, "new", 0), (0, "good", 1)], 1, 2,
                             weights={"good": 0.95, "bad": 0.05})
    assert labels.tolist() == [1]


def test_the_latest_review_decides():
    labels, done = adjudicate(np.array([1, -1, 0]), [(1, 0), (2, 1), (2, 0)])
    assert labels.tolist() == [1, 0, 0] and done.tolist() == [False, True, True]


def test_quality_weights():
    assert quality_weights({}) is None
    assert quality_weights({"a": None}) is None
    w = quality_weights({"a": 0.9, "b": None, "c": 0.5, "d": 0.0})
    assert w["a"] == 0.9 and w["b"] == 0.5 and 0 < w["d"] < 1e-3  # the median fills in; > 0


events = st.lists(st.tuples(st.integers(0, 4), st.sampled_from("abcd"), st.integers(-1, 2)),
                  max_size=30)


@settings(max_examples=200, deadline=None)
@given(events, st.floats(0.1, 5.0))
def test_equal_weights_are_the_plain_vote(evs, w):
    plain = consensus(evs, 5, 3)
    weighted = consensus(evs, 5, 3, weights=dict.fromkeys("abcd", w))
    for a, b in zip(plain, weighted, strict=True):
        assert np.array_equal(a, b)
    labels, agreement, n = plain
    assert ((labels >= 0) <= (n > 0)).all() and ((agreement > 0) == (n > 0)).all()
