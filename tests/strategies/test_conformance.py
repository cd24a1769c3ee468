"""Every registered strategy passes this suite (a new one is covered by registering it)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labeling.errors import InvalidInput
from strategies import QueryContext, available, get_strategy, select
from strategies.base import AssertionVotes
from strategies.scores import entropy, least_confidence, margin
from strategies.selectors import top_k

N, K = 200, 3


def full_context(seed: int = 0, **overrides) -> QueryContext:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(K), size=N).astype(np.float32)
    lm = rng.dirichlet(np.ones(K), size=N).astype(np.float32)
    votes = rng.integers(-1, K, size=(N, 6)).astype(np.int8)
    labels = np.where(rng.random(N) < 0.1, rng.integers(0, K, N), -1)
    candidates = (labels < 0) & (rng.random(N) < 0.9)
    severity = np.where(rng.random((N, 3)) < 0.3, rng.random((N, 3)), 0.0)
    fields = dict(n_classes=K, candidates=candidates, probs=probs, labeled=labels >= 0, labels=labels,
                  lm_probs=lm, votes=votes, features=rng.normal(size=(N, 8)).astype(np.float32),
                  assertions=AssertionVotes(["a1", "a2", "a3"], severity, [True, True, False]),
                  eval_metrics={"end_model": {"accuracy": 0.7}})
    fields.update(overrides)
    return QueryContext(**fields)


@pytest.fixture(params=available())
def name(request):
    return request.param


def test_picks_are_distinct_candidates_with_reasons(name):
    ctx = full_context()
    before = {k: np.copy(v) for k, v in vars(ctx).items() if isinstance(v, np.ndarray)}
    sel = select(name, ctx, 25, np.random.default_rng(1))
    assert len(sel.indices) == 25 == len(set(sel.indices.tolist()))
    assert ctx.candidates[sel.indices].all()
    assert np.isfinite(sel.scores).all() and len(sel.scores) == 25
    assert len(sel.reasons) == 25 and all(r["strategy"] for r in sel.reasons)
    json.dumps(sel.reasons), json.dumps(sel.state)
    for k, v in before.items():  # inputs are not mutated
        assert np.array_equal(getattr(ctx, k), v)


def test_same_seed_same_picks(name):
    a = select(name, full_context(), 20, np.random.default_rng(7))
    b = select(name, full_context(), 20, np.random.default_rng(7))
    assert a.indices.tolist() == b.indices.tolist()


def test_k_edge_cases(name):
    ctx = full_context()
    assert len(select(name, ctx, 0, np.random.default_rng(0)).indices) == 0
    everything = select(name, ctx, 10 * N, np.random.default_rng(0))
    assert sorted(everything.indices.tolist()) == np.flatnonzero(ctx.candidates).tolist()
    none = full_context(candidates=np.zeros(N, dtype=bool))
    assert len(select(name, none, 5, np.random.default_rng(0)).indices) == 0


@pytest.mark.parametrize("needy", [n for n in available() if get_strategy(n).requires])
def test_missing_inputs_fall_back_to_random_and_say_so(needy):
    name, strategy = needy, get_strategy(needy)
    bare = full_context(**{f: None for f in strategy.requires})
    sel = select(name, bare, 10, np.random.default_rng(0))
    assert len(sel.indices) == 10 and all("fallback" in r for r in sel.reasons)


def test_bad_context_is_rejected():
    with pytest.raises(InvalidInput, match="unknown strategy"):
        select("psychic", full_context(), 5, np.random.default_rng(0))
    with pytest.raises(InvalidInput, match="probs"):
        select("entropy", full_context(probs=np.ones((N, K), dtype=np.float32)), 5, np.random.default_rng(0))
    with pytest.raises(InvalidInput, match="k must"):
        select("entropy", full_context(), -1, np.random.default_rng(0))


def test_entropy_picks_more_uncertain_items_than_random_on_digits():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=200).fit(X[:100], y[:100])
    probs = model.predict_proba(X).astype(np.float32)
    candidates = np.ones(len(X), dtype=bool)
    candidates[:100] = False
    ctx = QueryContext(n_classes=10, candidates=candidates, probs=probs)
    rng = np.random.default_rng(0)
    ent = select("entropy", ctx, 50, rng)
    rnd = select("random", ctx, 50, rng)
    assert entropy(probs[ent.indices]).mean() > 2 * entropy(probs[rnd.indices]).mean()
    wrong = (probs.argmax(1) != y)
    assert wrong[ent.indices].mean() > wrong[rnd.indices].mean()


prob_rows = arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(2, 6)),
                   elements=st.floats(0.001, 1.0)).map(lambda a: a / a.sum(axis=1, keepdims=True))


@settings(max_examples=60, deadline=None)
@given(prob_rows)
def test_scorer_bounds(p):
    k = p.shape[1]
    assert (least_confidence(p) >= -1e-9).all() and (least_confidence(p) <= 1 - 1 / k + 1e-9).all()
    assert (margin(p) >= -1e-9).all() and (margin(p) <= 1 + 1e-9).all()
    assert (entropy(p) >= -1e-9).all() and (entropy(p) <= np.log(k) + 1e-9).all()


def test_scorer_extremes():
    one_hot, uniform = np.eye(4)[:1], np.full((1, 4), 0.25)
    for f in (least_confidence, margin, entropy):
        assert f(one_hot)[0] == pytest.approx(0.0) and f(uniform)[0] > f(one_hot)[0]
    assert entropy(uniform)[0] == pytest.approx(np.log(4))
    assert margin(uniform)[0] == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 60), elements=st.floats(-5, 5)), st.integers(0, 70), st.integers(0, 9))
def test_top_k_returns_the_highest(scores, k, seed):
    cand = np.ones(len(scores), dtype=bool)
    picks = top_k(scores, cand, k, np.random.default_rng(seed))
    assert len(picks) == min(k, len(scores)) == len(set(picks.tolist()))
    if 0 < len(picks) < len(scores):
        rest = np.setdiff1d(np.arange(len(scores)), picks)
        assert scores[picks].min() >= scores[rest].max()
    assert (np.diff(scores[picks]) <= 0).all()
