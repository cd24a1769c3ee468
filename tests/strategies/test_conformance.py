"""The contract every registered strategy passes (small-text's shared test base, as functions).

Parametrised over ``available()``: registering a strategy puts it under this suite. Give
``full_context`` any new context field a strategy needs.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import scipy.sparse as sp

from strategies import QueryContext, Selection, available, get_strategy, select
from strategies.base import AssertionVotes

N, K = 200, 3
ARRAYS = ("candidates", "probs", "labeled", "labels", "lm_probs", "votes", "features", "mc_probs")
# strategies whose scores are not non-increasing in pick order (stochastic draws)
UNORDERED = {"bal": "draws items at random, weighted by severity rank", "auto": "may run bal"}


def full_context(seed: int = 0, **overrides) -> QueryContext:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(K), size=N).astype(np.float32)
    lm = rng.dirichlet(np.ones(K), size=N).astype(np.float32)
    votes = rng.integers(-1, K, size=(N, 6)).astype(np.int8)
    labels = np.where(rng.random(N) < 0.1, rng.integers(0, K, N), -1)
    candidates = (labels < 0) & (rng.random(N) < 0.9)
    severity = np.where(rng.random((N, 3)) < 0.3, rng.random((N, 3)), 0.0)
    fields = {"n_classes": K, "candidates": candidates, "probs": probs, "labeled": labels >= 0,
              "labels": labels, "lm_probs": lm, "votes": votes,
              "features": rng.normal(size=(N, 8)).astype(np.float32),
              "assertions": AssertionVotes(["a1", "a2", "a3"], severity, [True, True, False]),
              "mc_probs": rng.dirichlet(np.ones(K), size=(5, N)).astype(np.float32),
              "eval_metrics": {"end_model": {"accuracy": 0.7}}}
    fields.update(overrides)
    return QueryContext(**fields)


def check_selection(sel: Selection, ctx: QueryContext, k: int) -> None:
    """The contract of one result: k distinct candidates, finite scores, reasons, JSON state."""
    want = min(k, int(ctx.candidates.sum()))
    assert isinstance(sel, Selection)
    assert sel.indices.dtype == np.int64 and sel.indices.shape == (want,)
    assert len(set(sel.indices.tolist())) == want
    assert ctx.candidates[sel.indices].all()
    assert sel.scores.dtype == np.float64 and sel.scores.shape == (want,)
    assert np.isfinite(sel.scores).all()
    assert isinstance(sel.reasons, list) and len(sel.reasons) == want
    for r in sel.reasons:
        assert isinstance(r["strategy"], str) and isinstance(r["scorer"], str)
        assert np.isfinite(r["value"])
    json.dumps(sel.reasons)
    json.dumps(sel.state)


@pytest.fixture(params=available())
def name(request):
    return request.param


def snapshot(ctx: QueryContext) -> dict:
    out = {f: getattr(ctx, f).copy() for f in ARRAYS if getattr(ctx, f) is not None}
    return {**out, "severity": ctx.assertions.severity.copy(),
            "dicts": copy.deepcopy((ctx.state, ctx.params, ctx.eval_metrics))}


@pytest.mark.parametrize("sparse", [False, True])
def test_contract(name, sparse):
    ctx = full_context()
    if sparse:
        ctx = full_context(features=sp.random(N, 500, density=0.02, format="csr", dtype=np.float32,
                                              random_state=np.random.default_rng(3)))
    before = snapshot(ctx)
    sel = select(name, ctx, 25, np.random.default_rng(1))
    check_selection(sel, ctx, 25)
    after = snapshot(ctx)
    for key, value in before.items():  # inputs are not mutated
        if key == "dicts":
            assert after[key] == value
        elif sp.issparse(value):
            assert (after[key] != value).nnz == 0
        else:
            assert np.array_equal(after[key], value)
    if name not in UNORDERED:
        assert (np.diff(sel.scores) <= 1e-9).all(), "scores must be non-increasing in pick order"


def test_same_seed_same_result(name):
    a = select(name, full_context(), 20, np.random.default_rng(7))
    b = select(name, full_context(), 20, np.random.default_rng(7))
    assert a.indices.tolist() == b.indices.tolist() and a.scores.tolist() == b.scores.tolist()
    assert a.reasons == b.reasons and json.dumps(a.state) == json.dumps(b.state)


@pytest.mark.parametrize("seed", range(3))
def test_only_candidates_are_picked(name, seed):
    rng = np.random.default_rng(seed)
    for share in (0.02, 0.5):  # a few candidates, then half the pool
        ctx = full_context(seed, candidates=rng.random(N) < share)
        check_selection(select(name, ctx, 10, rng), ctx, 10)


def test_state_round_trip(name):
    """Three rounds, each fed the state the last one returned (JSON round-tripped)."""
    state: dict = {}
    for round_ in range(3):
        ctx = full_context(round_, state=state)
        sel = select(name, ctx, 15, np.random.default_rng(round_))
        check_selection(sel, ctx, 15)
        state = json.loads(json.dumps(sel.state))


def test_k_edge_cases(name):
    ctx = full_context()
    n_cand = int(ctx.candidates.sum())
    for k in (0, 1, n_cand, n_cand + 1, 10 * N):
        sel = select(name, ctx, k, np.random.default_rng(0))
        check_selection(sel, ctx, k)
    everything = select(name, ctx, 10 * N, np.random.default_rng(0))
    assert sorted(everything.indices.tolist()) == np.flatnonzero(ctx.candidates).tolist()
    none = full_context(candidates=np.zeros(N, dtype=bool))
    check_selection(select(name, none, 5, np.random.default_rng(0)), none, 5)


def test_missing_inputs_fall_back_to_random_and_say_so(name):
    required = get_strategy(name).requires
    for missing in [{f} for f in sorted(required)] + ([set(required)] if len(required) > 1 else []):
        ctx = full_context(**dict.fromkeys(missing))
        sel = select(name, ctx, 10, np.random.default_rng(0))
        check_selection(sel, ctx, 10)
        for r in sel.reasons:
            assert r["requested"] == name and r["missing"] == sorted(missing)
            assert isinstance(r["fallback"], str) and r["fallback"]
            assert r["strategy"] == "random"


def test_no_end_model_fallback_says_so():
    sel = select("entropy", full_context(probs=None), 5, np.random.default_rng(0))
    assert all(r["fallback"] == "no end model yet" for r in sel.reasons)
