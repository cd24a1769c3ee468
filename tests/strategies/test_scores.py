"""Property tests for the uncertainty scorers: bounds, extremes, symmetry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labeling.errors import InvalidInput
from strategies.scores import SCORERS, entropy, least_confidence, margin, scorer

MAXIMUM = {"least_confidence": lambda k: 1 - 1 / k, "margin": lambda k: 1.0, "entropy": np.log}
EPS = 1e-9


@st.composite
def prob_rows(draw):
    """(n, K) rows summing to 1, exact zeros included."""
    n, k = draw(st.integers(1, 20)), draw(st.integers(2, 8))
    raw = draw(arrays(np.float64, (n, k), elements=st.sampled_from([0.0, 1e-12, 0.1, 0.5, 1.0, 3.0])
                      | st.floats(0, 1)))
    raw[:, draw(st.integers(0, k - 1))] += 1e-3  # every row has some mass
    return raw / raw.sum(axis=1, keepdims=True)


@settings(max_examples=80, deadline=None)
@given(prob_rows())
def test_bounds(p):
    k = p.shape[1]
    for name, f in SCORERS.items():
        s = f(p)
        assert s.shape == (len(p),) and s.dtype == np.float64
        assert (s >= 0).all() and (s <= MAXIMUM[name](k) + EPS).all(), name


@settings(max_examples=40, deadline=None)
@given(prob_rows(), st.randoms(use_true_random=False))
def test_class_order_does_not_matter(p, random):
    perm = list(range(p.shape[1]))
    random.shuffle(perm)
    for f in SCORERS.values():
        np.testing.assert_allclose(f(p), f(p[:, perm]), atol=1e-12)


@pytest.mark.parametrize("k", [2, 3, 10, 100])
def test_one_hot_scores_minimum_and_uniform_maximum(k):
    one_hot = np.eye(k)
    uniform = np.full((1, k), 1 / k)
    for name, f in SCORERS.items():
        assert f(one_hot) == pytest.approx(np.zeros(k), abs=EPS), name
        assert f(uniform)[0] == pytest.approx(MAXIMUM[name](k)), name


@settings(max_examples=40, deadline=None)
@given(prob_rows())
def test_nothing_beats_uniform_or_undercuts_one_hot(p):
    k = p.shape[1]
    uniform, one_hot = np.full((1, k), 1 / k), np.eye(k)[:1]
    for f in SCORERS.values():
        assert (f(p) <= f(uniform)[0] + EPS).all() and (f(p) >= f(one_hot)[0] - EPS).all()


def test_known_values():
    p = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])
    np.testing.assert_allclose(least_confidence(p), [0.3, 0.6])
    np.testing.assert_allclose(margin(p), [0.5, 1.0])
    np.testing.assert_allclose(entropy(p), -(p * np.log(p)).sum(axis=1))


def test_float32_input_and_zero_probabilities_are_safe():
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], dtype=np.float32)
    with np.errstate(all="raise"):
        np.testing.assert_allclose(entropy(p), [0.0, np.log(2)], rtol=1e-6)


def test_bad_inputs():
    with pytest.raises(InvalidInput, match="probs must be a 2-d"):
        entropy(np.ones(3))
    with pytest.raises(InvalidInput, match="margin needs at least 2 classes"):
        margin(np.ones((3, 1)))
    with pytest.raises(InvalidInput, match=r"params\['scorer'\] must be one of"):
        scorer("variance", "params['scorer']")
