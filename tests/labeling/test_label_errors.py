"""The label-error ranking finds deliberately flipped labels on real text (the bundled YouTube
spam set) and says why."""

from __future__ import annotations

import numpy as np
import pytest

from api.storage.records import Item
from demo import DATA
from labeling.errors import InvalidInput
from labeling.features import featurize_pool
from labeling.frame import items_frame
from labeling.ingest import read_wrench
from labeling.label_errors import (
    COLUMNS,
    MIN_LABELS,
    cross_val_probs,
    label_error_arrays,
    rank_label_errors,
    reasons,
)


@pytest.fixture(scope="module")
def youtube():
    records = read_wrench(DATA).splits["train"]
    items = [Item(r.id, i, r.text, r.features, r.meta, r.votes) for i, r in enumerate(records)]
    return items_frame(items), np.array([r.gold for r in records])


def noisy_labels(gold: np.ndarray, n_labeled: int, n_flipped: int, seed: int):
    rng = np.random.default_rng(seed)
    labeled = rng.choice(len(gold), n_labeled, replace=False)
    human = np.full(len(gold), -1)
    human[labeled] = gold[labeled]
    flipped = labeled[:n_flipped]
    human[flipped] = 1 - human[flipped]
    return human, flipped


@pytest.mark.parametrize("seed", [0, 1])
def test_flipped_labels_rise_to_the_top(youtube, seed):
    frame, gold = youtube
    human, flipped = noisy_labels(gold, 300, 30, seed)
    out = label_error_arrays(frame, human, 2, seed=seed)
    table = out["label_errors"]
    assert len(table) == 300
    top = set(table[: 2 * len(flipped), COLUMNS.index("item")].astype(int).tolist())
    assert len(top & set(flipped.tolist())) / len(flipped) >= 0.7
    quality = table[:, COLUMNS.index("quality")]
    assert (np.diff(quality) >= 0).all()  # most likely wrong first
    scored = ~np.isnan(out["label_quality"])
    assert scored.sum() == 300 and (human[scored] >= 0).all()


def test_excluded_and_unlabeled_items_are_not_ranked(youtube):
    frame, gold = youtube
    human, _ = noisy_labels(gold, 100, 0, 3)
    exclude = np.zeros(len(gold), dtype=bool)
    exclude[np.flatnonzero(human >= 0)[:10]] = True
    out = label_error_arrays(frame, human, 2, seed=0, exclude=exclude)
    ranked = set(out["label_errors"][:, 0].astype(int).tolist())
    assert len(ranked) == 90
    assert ranked == set(np.flatnonzero((human >= 0) & ~exclude).tolist())


def test_too_few_labels_rank_nothing(youtube):
    frame, gold = youtube
    human, _ = noisy_labels(gold, MIN_LABELS - 1, 0, 0)
    out = label_error_arrays(frame, human, 2, seed=0)
    assert out["label_errors"].shape == (0, len(COLUMNS))
    assert np.isnan(out["label_quality"]).all()


def test_reasons_name_the_models_that_disagree_confidently():
    labels = np.array([0, 1])
    cv = np.array([[0.1, 0.9], [0.2, 0.8]])
    lm = np.array([[0.05, 0.95], [0.5, 0.5]])
    end = np.array([[0.6, 0.4], [0.1, 0.9]])
    table = rank_label_errors(labels, cv, lm_probs=lm, lm_covered=np.array([True, False]),
                              end_probs=end)
    row0 = np.concatenate([[0.0], table[0]])
    why = reasons(row0, ["ham", "spam"])
    assert "label quality" in why[0]
    assert any("cross-validated model says 'spam'" in w for w in why)
    assert any("label model says 'spam' with probability 0.95" in w for w in why)
    assert not any("end model" in w for w in why)  # 0.6 on its own label: no disagreement
    assert table[1, COLUMNS.index("lm_pred") - 1] == -1  # not covered: the label model is silent
    # the label model's posterior is averaged in where it covers: item 0 scores below cv alone
    assert table[0, 1] == pytest.approx((0.1 + 0.05) / 2, abs=1e-6)


def test_cross_val_probs_refuses_mismatched_input(youtube):
    frame, _ = youtube
    _, X, _ = featurize_pool(frame)
    with pytest.raises(InvalidInput, match="one label per row"):
        cross_val_probs(X, np.arange(5), np.array([0, 1]), 2, seed=0)


def test_weak_labels_train_every_fold_and_lift_recall_on_few_labels(youtube):
    """With 60 human labels the folds learn little alone; the label model's weak labels of the
    unlabeled pool (as in the round) make the held-out predictions good enough to find flips."""
    frame, gold = youtube
    human, flipped = noisy_labels(gold, 60, 6, 5)
    lm = np.zeros((len(gold), 2))
    lm[np.arange(len(gold)), gold] = 0.9  # a label model right everywhere, at 0.9
    lm[np.arange(len(gold)), 1 - gold] = 0.1
    out = label_error_arrays(frame, human, 2, seed=0, lm_probs=lm,
                             lm_covered=np.ones(len(gold), bool), weak_weight=0.5)
    top = set(out["label_errors"][:12, 0].astype(int).tolist())
    assert top >= set(flipped.tolist())


def test_a_label_model_that_disagrees_with_the_humans_is_not_averaged_in():
    labels = np.array([0, 1, 0, 1])
    cv = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.2, 0.8]])
    wrong_lm = 1.0 - np.eye(2)[labels] * 0.9 - 0.05  # confidently the other class everywhere
    alone = rank_label_errors(labels, cv)
    with_lm = rank_label_errors(labels, cv, lm_probs=wrong_lm, lm_covered=np.ones(4, bool))
    assert with_lm[:, 1] == pytest.approx(alone[:, 1])
    right_lm = np.eye(2)[labels] * 0.9 + 0.05
    trusted = rank_label_errors(labels, cv, lm_probs=right_lm, lm_covered=np.ones(4, bool))
    assert trusted[2, 1] == pytest.approx((0.4 + 0.95) / 2, abs=1e-6)


def test_folds_train_on_gold_answers_and_at_most_max_weak_rows(monkeypatch):
    import labeling.label_errors as le

    human = np.array([0, 1, -1, -1, -1, -1, 1, -1])
    exclude = np.array([False, True, False, False, False, False, False, False])
    lm = np.tile([0.2, 0.8], (8, 1))
    lm[3] = [0.5, 0.5]  # a tie: no weak label
    monkeypatch.setattr(le, "MAX_WEAK_ROWS", 3)
    rows, y, w = le._extra_rows(human, exclude, lm, np.ones(8, bool), 0.5, seed=0)
    assert rows[0] == 1 and y[0] == 1 and w[0] == 1.0  # the gold item's known answer
    weak = rows[1:]
    assert len(weak) == 3 and set(weak) <= {2, 4, 5, 7}  # unlabeled, decided
    assert (y[1:] == 1).all() and w[1:] == pytest.approx(0.4)
