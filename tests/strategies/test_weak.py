"""Weak-supervision strategies: LF conflict, low coverage, label-model entropy, LM vs end model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import QueryContext, select
from strategies.weak import disagreement, low_coverage_score, vote_conflict

A = -1  # abstain
VOTES = np.array([
    [0, 0, 0, 0, A, A],  # unanimous
    [0, 1, A, A, A, A],  # 1-1 split
    [0, 0, 0, 1, 1, 1],  # 3-3 split
    [A, A, A, A, A, A],  # no votes
    [0, 1, 2, A, A, A],  # three-way split
    [1, A, A, A, A, A],  # one vote
], dtype=np.int8)


def test_vote_conflict_orders_disagreement():
    s = vote_conflict(VOTES, 3)
    assert s[0] == 0 and s[3] == 0 and s[5] == 0
    assert s[2] > s[1] > 0  # more LFs disagreeing weighs more
    assert s[4] > s[1]  # a three-way split is more confused than 1-1
    sel = select("lf_conflict", QueryContext(3, np.ones(6, dtype=bool), votes=VOTES), 2,
                 np.random.default_rng(0))
    assert set(sel.indices.tolist()) == {2, 4}
    assert all(r["n_votes"] in (3, 6) for r in sel.reasons)


def test_low_coverage_puts_unvoted_items_first():
    _, uncovered = low_coverage_score(VOTES, None)
    np.testing.assert_allclose(uncovered, [2 / 6, 4 / 6, 0, 1, 3 / 6, 5 / 6])
    sel = select("low_coverage", QueryContext(3, np.ones(6, dtype=bool), votes=VOTES), 3,
                 np.random.default_rng(0))
    assert sel.indices.tolist() == [3, 5, 1]
    assert sel.reasons[0]["uncovered_share"] == 1.0 and sel.reasons[0]["n_votes"] == 0


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 60), st.integers(0, 2**32 - 1))
def test_low_coverage_tie_break_never_reorders_coverage(m, seed):
    rng = np.random.default_rng(seed)
    votes = np.where(rng.random((40, m)) < rng.random((40, 1)), rng.integers(0, 3, (40, m)), -1)
    probs = rng.dirichlet(np.ones(3) * 0.3, 40)
    score, uncovered = low_coverage_score(votes, probs)
    order = np.argsort(-score, kind="stable")
    assert (np.diff(uncovered[order]) <= 1e-12).all()
    # inside one coverage level, the more uncertain end-model item comes first
    same = uncovered[:, None] == uncovered[None, :]
    ent = -(probs * np.log(np.clip(probs, 1e-300, None))).sum(axis=1)
    assert ((score[:, None] > score[None, :]) <= ((ent[:, None] >= ent[None, :]) | ~same)).all()


def test_low_coverage_with_no_lfs():
    score, uncovered = low_coverage_score(np.zeros((4, 0), dtype=np.int8), None)
    assert (uncovered == 1).all() and (score == 1).all()


def test_label_model_entropy_picks_the_unsure_posterior():
    lm = np.array([[1.0, 0.0], [0.5, 0.5], [0.9, 0.1], [0.6, 0.4]])
    sel = select("label_model_entropy", QueryContext(2, np.ones(4, dtype=bool), lm_probs=lm), 2,
                 np.random.default_rng(0))
    assert sel.indices.tolist() == [1, 3]
    assert sel.reasons[0]["value"] == pytest.approx(np.log(2), abs=1e-6)


def test_disagreement_is_total_variation_on_covered_items():
    lm = np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.2, 0.8]])
    end = np.array([[0.0, 1.0], [0.0, 1.0], [0.5, 0.5], [0.6, 0.4]])
    covered = np.array([True, False, True, True])
    np.testing.assert_allclose(disagreement(lm, end, covered), [1.0, 0.0, 0.0, 0.4])
    votes = np.array([[0], [A], [1], [1]], dtype=np.int8)
    ctx = QueryContext(2, np.ones(4, dtype=bool), probs=end, lm_probs=lm, votes=votes)
    sel = select("lm_disagreement", ctx, 2, np.random.default_rng(0))
    assert sel.indices.tolist() == [0, 3]  # item 1 disagrees too, but no LF covers it
    assert sel.reasons[0]["lm_predicted"] == 0 and sel.reasons[0]["predicted"] == 1


def test_lm_disagreement_without_votes_treats_every_item_as_covered():
    lm = np.array([[1.0, 0.0], [0.5, 0.5]])
    end = np.array([[0.0, 1.0], [0.5, 0.5]])
    sel = select("lm_disagreement", QueryContext(2, np.ones(2, dtype=bool), probs=end, lm_probs=lm),
                 1, np.random.default_rng(0))
    assert sel.indices.tolist() == [0] and sel.scores[0] == pytest.approx(1.0)
