"""Label model: WRENCH reference numbers, the uncovered-is-uniform rule, fallbacks, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labeling.errors import InvalidInput, NotFittedError
from labeling.ingest import read_wrench
from labeling.label_model import LabelModel, majority_proba
from labeling.ties import predict
from tests.server import DATASETS


def load(name: str):
    path = DATASETS / name
    if not path.is_dir():
        pytest.fail(f"dataset missing: {path}")
    ds = read_wrench(path)
    votes = {s: np.array([r.votes for r in recs], dtype=np.int8) for s, recs in ds.splits.items()}
    gold = {s: np.array([r.gold for r in recs]) for s, recs in ds.splits.items()}
    return votes, gold, len(ds.class_names)


def test_youtube_matches_wrench_reference():
    votes, gold, k = load("wrench_youtube")
    mv = LabelModel(k, kind="majority").fit(votes["train"])
    mv_acc = (mv.predict(votes["test"]) == gold["test"]).mean()
    sn = LabelModel(k, kind="snorkel", seed=0).fit(votes["train"])
    sn_acc = (sn.predict(votes["test"]) == gold["test"]).mean()
    # WRENCH: MV 84.0, Snorkel 84.0 (uncovered rows uniform, ties by Snorkel's row-hash rule)
    assert mv_acc == pytest.approx(0.84, abs=1e-9), mv_acc
    assert abs(sn_acc - 0.84) <= 0.03, sn_acc
    again = LabelModel(k, kind="snorkel", seed=0).fit(votes["train"])
    assert np.array_equal(again.predict_proba(votes["test"]), sn.predict_proba(votes["test"]))


def test_auto_falls_back_to_majority_when_snorkel_loses_on_eval():
    votes, _, k = load("wrench_youtube")
    ev = votes["valid"]
    # evaluation labels that agree with majority vote everywhere: Snorkel can only lose
    y = predict(majority_proba(ev, k))
    lm = LabelModel(k, kind="auto", seed=0).fit(votes["train"], eval_votes=ev, eval_labels=y)
    assert lm.eval_accuracy_["majority"] == 1.0 and lm.eval_accuracy_["snorkel"] < 1.0
    assert lm.kind_ == "majority" and "majority vote" in lm.reason_
    keep = LabelModel(k, kind="auto", seed=0).fit(votes["train"])
    assert keep.kind_ == "snorkel"


def test_few_lfs_use_majority_vote():
    votes = np.array([[1, -1], [0, 0], [-1, -1]], dtype=np.int8)
    lm = LabelModel(2).fit(votes)
    assert lm.kind_ == "majority" and "2 LF(s) < 3" in lm.reason_
    assert lm.predict_proba(votes).tolist() == [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]


def test_errors():
    with pytest.raises(NotFittedError):
        LabelModel(2).predict_proba(np.zeros((1, 3), dtype=np.int8))
    with pytest.raises(InvalidInput, match="-1..1"):
        LabelModel(2).fit(np.array([[2, 0, 0]]))
    with pytest.raises(InvalidInput, match="kind"):
        LabelModel(2, kind="magic").fit(np.zeros((2, 3), dtype=np.int8))


@settings(max_examples=40, deadline=None)
@given(arrays(np.int8, st.tuples(st.integers(1, 30), st.integers(1, 6)), elements=st.integers(-1, 2)))
def test_majority_rows_are_distributions_and_uncovered_rows_uniform(votes):
    p = majority_proba(votes, 3)
    assert np.allclose(p.sum(axis=1), 1.0)
    uncovered = (votes < 0).all(axis=1)
    assert np.allclose(p[uncovered], 1 / 3)
    covered = ~uncovered
    winners = p[covered].argmax(axis=1)
    counts = np.stack([(votes[covered] == c).sum(1) for c in range(3)], 1)
    assert (counts[np.arange(len(winners)), winners] == counts.max(1)).all()


def test_snorkel_uncovered_rows_uniform():
    votes, _, k = load("wrench_youtube")
    lm = LabelModel(k, kind="snorkel").fit(votes["train"])
    p = lm.predict_proba(votes["test"])
    uncovered = (votes["test"] < 0).all(axis=1)
    assert uncovered.any() and np.allclose(p[uncovered], 0.5)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_tie_rule_equals_snorkel():
    from snorkel.utils import probs_to_preds

    rng = np.random.default_rng(0)
    probs = rng.integers(0, 3, size=(500, 3)).astype(float) + 1e-9
    probs /= probs.sum(axis=1, keepdims=True)
    assert np.array_equal(predict(probs), probs_to_preds(probs, tie_break_policy="random"))
