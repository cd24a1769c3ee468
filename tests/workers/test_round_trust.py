"""A round on WRENCH YouTube: what it serves is never worse than its parts, with LFs good or bad,
and its evaluation says how many items it rests on, with intervals."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.frame import items_frame
from labeling.ingest import read_wrench
from labeling.metrics import evaluate
from labeling.trust import SAMPLE_GOAL
from tests.server import DATASETS
from workers.tasks import RoundInput, fit_round


class _Item:
    def __init__(self, r):
        self.id, self.text, self.features, self.meta, self.votes = r.id, r.text, {}, {}, r.votes


@pytest.fixture(scope="module")
def youtube():
    ds = read_wrench(DATASETS / "wrench_youtube")
    train, test = ds.splits["train"], ds.splits["test"]
    return (items_frame([_Item(r) for r in train]), np.array([r.votes for r in train], np.int8),
            np.array([r.gold for r in train]), items_frame([_Item(r) for r in test]),
            np.array([r.votes for r in test], np.int8), np.array([r.gold for r in test]))


def _round(youtube, votes, extra_votes, *, use_weak=True, labels=120, evals=30, strategy="random"):
    frame, _, gold, test_frame, _, _ = youtube
    n = len(frame)
    rows = np.random.default_rng(4).choice(n, labels, replace=False)
    human = np.full(n, -1)
    human[rows] = gold[rows]
    is_eval = np.zeros(n, bool)
    is_eval[rows[:evals]] = True
    return fit_round(RoundInput(
        frame=frame, votes=votes, human=human, is_eval=is_eval, open_mask=np.ones(n, bool),
        n_classes=2, strategy=strategy, strategy_params={}, strategy_state={}, queue_size=20,
        weak_weight=0.5, label_model="auto", seed=0, use_weak=use_weak, extra_frame=test_frame,
        extra_votes=extra_votes))


def _acc(probs, y) -> float:
    return float(evaluate(y, probs)["accuracy"])


def test_served_model_is_never_worse_than_its_parts_and_reports_intervals(youtube):
    _, votes, _, _, votes_test, y_test = youtube
    out = _round(youtube, votes, votes_test)
    plain = _round(youtube, votes, votes_test, use_weak=False)
    served, lm = _acc(out.extra_probs, y_test), _acc(out.extra_lm_probs, y_test)
    alone = _acc(plain.extra_probs, y_test)
    assert served >= max(lm, alone) - 0.01, (served, lm, alone, out.metrics["trust"])
    trust = out.metrics["trust"]
    assert trust["n_labels"] == 120  # every human label, the 30 evaluation ones included
    assert out.label_model["chosen"] == trust["label_model"] in ("snorkel", "majority", "learned")
    assert out.n_train["human"] == 90
    for part in ("served", "end_model", "label_model"):
        m = out.metrics[part]
        assert m["n_items"] == 30 and m["accuracy_ci"][0] <= m["accuracy"] <= m["accuracy_ci"][1]
        assert m["macro_f1_ci"][0] <= m["macro_f1"] <= m["macro_f1_ci"][1]
    assert plain.metrics["trust"]["label_model"] is None and plain.extra_lm_probs is None


def test_inverted_lfs_cost_nothing(youtube):
    _, votes, _, _, votes_test, y_test = youtube
    flip = lambda v: np.where(v >= 0, 1 - v, -1).astype(np.int8)
    out = _round(youtube, flip(votes), flip(votes_test))
    plain = _round(youtube, votes, votes_test, use_weak=False)
    served, alone = _acc(out.extra_probs, y_test), _acc(plain.extra_probs, y_test)
    assert served >= alone - 0.01, (served, alone, out.metrics["trust"])
    assert _acc(out.extra_lm_probs, y_test) < 0.5  # Snorkel believed the inverted LFs


def test_labels_a_strategy_picked_do_not_decide(youtube):
    _, votes, _, _, votes_test, _ = youtube
    out = _round(youtube, votes, votes_test, strategy="entropy")
    assert out.metrics["trust"]["n_labels"] == 30  # the evaluation slice alone
    few = _round(youtube, votes, votes_test, strategy="entropy", evals=5)
    assert "defaults" in few.metrics["trust"]["reason"] and few.metrics["trust"]["weak_weight"] == 0.5


def test_a_round_without_lfs_or_random_sample_cross_fits_C(youtube):
    """Without LFs, under a strategy's picks and no evaluation slice, the round still chooses C
    by cross-fitting on every human label (it held C=1 before, and under-fitted)."""
    _, votes, _, _, votes_test, _ = youtube
    out = _round(youtube, votes, votes_test, use_weak=False, strategy="entropy", evals=0)
    trust = out.metrics["trust"]
    assert trust["n_labels"] == 0 and trust["label_model"] is None
    scores = trust["cross_fitted_accuracy"]["C_all_labels"]
    assert scores[str(trust["C"])] == max(scores.values()) and "all 120 human labels" in trust["reason"]


def test_with_lfs_a_random_share_of_each_batch_decides_how_much_to_trust_them(youtube):
    """Under an active-learning strategy with LFs, places of the queue go to the items drawn under
    ``explore_fraction``, in their draw's order: every other place while fewer than
    ``SAMPLE_GOAL`` labels are a random sample, then every tenth. Their labels decide, while
    every label trains. Without LFs there is no share."""
    frame, votes, gold, _, _, _ = youtube
    n = len(gold)
    draw = np.random.default_rng(9).random(n)
    picked = np.flatnonzero(draw >= 0.1)[:100]  # 100 labels a strategy picked

    def round_with(n_random: int):
        labeled = np.flatnonzero(draw < 0.1)[:n_random]  # labels of the random share so far
        human = np.full(n, -1)
        human[labeled], human[picked] = gold[labeled], gold[picked]
        return human, fit_round(RoundInput(
            frame=frame, votes=votes, human=human, is_eval=np.zeros(n, bool),
            open_mask=np.ones(n, bool), n_classes=2, strategy="entropy", strategy_params={},
            strategy_state={}, queue_size=50, weak_weight=0.5, label_model="auto", seed=0,
            explore=draw, explore_fraction=0.1))

    human, out = round_with(12)
    share = [i for i, r in enumerate(out.reasons) if r["scorer"] == "random_share"]
    assert share == list(range(1, 50, 2))  # half, while the random sample is small
    queued = out.queue[share]
    assert (draw[queued] < 0.1).all() and (np.diff(draw[queued]) > 0).all()
    unlabeled = np.flatnonzero((draw < 0.1) & (human < 0))
    assert list(queued) == list(unlabeled[np.argsort(draw[unlabeled])][:25])  # next in draw order
    assert not (draw[np.delete(out.queue, share)] < 0.1).any()  # the strategy never picks them
    trust = out.metrics["trust"]
    assert trust["n_labels"] == 12 and out.n_train["human"] == 112
    _, out = round_with(SAMPLE_GOAL)
    assert [i for i, r in enumerate(out.reasons) if r["scorer"] == "random_share"] == [9, 19, 29, 39, 49]
    assert out.metrics["trust"]["n_labels"] == SAMPLE_GOAL
    plain = fit_round(RoundInput(
        frame=frame, votes=np.zeros((n, 0), np.int8), human=human, is_eval=np.zeros(n, bool),
        open_mask=np.ones(n, bool), n_classes=2, strategy="entropy", strategy_params={},
        strategy_state={}, queue_size=50, weak_weight=0.5, label_model="auto", seed=0,
        explore=draw, explore_fraction=0.1))
    assert not any(r["scorer"] == "random_share" for r in plain.reasons)
