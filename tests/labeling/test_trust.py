"""Trust in the LFs, chosen by cross-fitting on WRENCH YouTube: useful LFs are used, harmful ones
are not allowed to hurt, and the served model mixes end and label model only where LFs vote."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.end_model import EndModel, training_set
from labeling.features import Featurizer
from labeling.frame import items_frame
from labeling.ingest import read_wrench
from labeling.label_model import LabelModel
from labeling.trust import C_GRID, LEARNED, MIN_LABELS, WEAK_C, choose_trust, served_probs
from tests.server import DATASETS


class _Item:
    def __init__(self, r):
        self.id, self.text, self.features, self.meta, self.votes = r.id, r.text, {}, {}, r.votes


@pytest.fixture(scope="module")
def youtube():
    ds = read_wrench(DATASETS / "wrench_youtube")
    train, test = ds.splits["train"], ds.splits["test"]
    feat = Featurizer()
    X = feat.fit_transform(items_frame([_Item(r) for r in train]))
    X_test = feat.transform(items_frame([_Item(r) for r in test]))
    votes = np.array([r.votes for r in train], dtype=np.int8)
    votes_test = np.array([r.votes for r in test], dtype=np.int8)
    return X, X_test, votes, votes_test, np.array([r.gold for r in train]), np.array([r.gold for r in test])


def _human(gold: np.ndarray, n_labels: int, seed: int) -> np.ndarray:
    human = np.full(len(gold), -1, dtype=np.int64)
    rows = np.random.default_rng(seed).choice(len(gold), n_labels, replace=False)
    human[rows] = gold[rows]
    return human


def _served_accuracy(youtube, votes, votes_test, human, trust, lm: LabelModel | None) -> float:
    """Train and serve as a round does with ``trust``; test accuracy."""
    X, X_test, _, _, _, y_test = youtube
    covered = (votes >= 0).any(axis=1)
    lm_probs = lm.predict_proba(votes) if lm is not None and trust.label_model != LEARNED else None
    if trust.label_model == LEARNED:
        from labeling.label_model import AccuracyLabelModel

        fit = AccuracyLabelModel(2).fit(votes[human >= 0], human[human >= 0])
        lm_probs, lm_test = fit.predict_proba(votes), fit.predict_proba(votes_test)
    else:
        lm_test = lm.predict_proba(votes_test) if lm is not None else None
    idx, y, w = training_set(len(human), human, lm_probs, covered, weak_weight=trust.weak_weight)
    model = EndModel(2, C=trust.C).fit(X[idx], y, sample_weight=w)
    probs = served_probs(model.predict_proba(X_test), lm_test, (votes_test >= 0).any(axis=1),
                         trust.blend)
    return float((probs.argmax(axis=1) == y_test).mean())


def test_useful_lfs_are_trusted_and_the_served_model_beats_humans_alone(youtube):
    X, _, votes, votes_test, gold, _ = youtube
    human = _human(gold, 60, seed=1)
    lm = LabelModel(2, kind="snorkel").fit(votes)
    trust = choose_trust(X, human, 2, votes=votes, label_models={"snorkel": lm.predict_proba(votes)},
                         seed=0)
    assert trust.n_labels == 60 and set(trust.scores) == {"label_model", "C", "weak_weight", "blend"}
    assert trust.weak_weight > 0 or trust.blend < 1  # the LFs help here: they must be used
    with_lfs = _served_accuracy(youtube, votes, votes_test, human, trust, lm)
    alone = choose_trust(X, human, 2)
    assert alone.label_model is None and alone.weak_weight == 0 and alone.blend == 1
    without = _served_accuracy(youtube, votes, votes_test, human, alone, None)
    # one split, 60 labels: within a point (the benchmark's goal), as the end model on these 60
    # labels alone (balanced, C cross-fitted) already reaches 0.90 here
    assert with_lfs >= without - 0.01, (with_lfs, without)


def test_harmful_lfs_are_not_allowed_to_hurt(youtube):
    """Every LF inverted: Snorkel's labels are mostly wrong. Cross-fitting must notice it, by
    learning the inversion (the learned label model) or by leaving the weak labels out."""
    X, _, votes, votes_test, gold, _ = youtube
    bad, bad_test = np.where(votes >= 0, 1 - votes, -1), np.where(votes_test >= 0, 1 - votes_test, -1)
    bad, bad_test = bad.astype(np.int8), bad_test.astype(np.int8)
    human = _human(gold, 80, seed=2)
    lm = LabelModel(2, kind="snorkel").fit(bad)
    trust = choose_trust(X, human, 2, votes=bad, label_models={"snorkel": lm.predict_proba(bad)},
                         seed=0)
    assert trust.scores["label_model"][LEARNED] > trust.scores["label_model"]["snorkel"]
    served = _served_accuracy(youtube, bad, bad_test, human, trust, lm)
    without = _served_accuracy(youtube, bad, bad_test, human, choose_trust(X, human, 2), None)
    # one split, 80 labels: within 2 points (the benchmark's goal, 1 point, is on 5-seed means)
    assert served >= without - 0.02, (served, without, trust)
    naive = choose_trust(X, np.full(len(gold), -1), 2, votes=bad,
                         label_models={"snorkel": lm.predict_proba(bad)})
    naive.weak_weight, naive.blend, naive.label_model = 0.5, 1.0, "snorkel"
    naive_human = _served_accuracy(youtube, bad, bad_test, human, naive, lm)
    assert served > naive_human + 0.05  # trusting inverted LFs as before would have cost points


def test_few_labels_keep_the_defaults(youtube):
    X, _, votes, _, gold, _ = youtube
    human = _human(gold, MIN_LABELS - 1, seed=0)
    trust = choose_trust(X, human, 2, votes=votes, label_models={"snorkel": np.full((len(gold), 2), 0.5)})
    assert trust.label_model == "snorkel" and trust.scores == {} and "defaults" in trust.reason
    assert trust.weak_weight == 0.5 and trust.blend == 0.5  # no labels to choose: an even blend
    none = choose_trust(X, np.full(len(gold), -1), 2)
    assert none.label_model is None and none.weak_weight == 0.0 and none.blend == 1.0


def test_served_probs_mix_only_covered_rows():
    end = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    lm = np.array([[0.1, 0.9], [0.5, 0.5], [0.0, 1.0]], dtype=np.float32)
    covered = np.array([True, False, True])
    out = served_probs(end, lm, covered, 0.25)
    assert np.allclose(out, [[0.3, 0.7], [0.2, 0.8], [0.15, 0.85]])
    assert served_probs(end, lm, covered, 1.0) is end and served_probs(end, None, None, 0.0) is end
    assert np.allclose(end[0], [0.9, 0.1])  # the input is not modified


def test_a_switch_needs_a_clear_win():
    """McNemar's exact test, one-sided at ``ALPHA`` (0.2), on the items the two candidates get
    right and wrong differently: one item ahead (the SemEval case: majority vote one item ahead of
    Snorkel on 50 labels) or two to none decide nothing; three to none do."""
    from labeling.trust import ALPHA, _clear_win

    def pair(wins: int, losses: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = np.ones(50, bool), np.ones(50, bool)
        b[:wins] = False
        a[wins:wins + losses] = False
        return a, b

    assert ALPHA == 0.2
    for wins, losses, clear in [(1, 0, False), (2, 0, False), (2, 1, False), (3, 0, True),
                                (4, 1, True), (5, 3, False), (7, 3, True)]:
        a, b = pair(wins, losses)
        assert bool(_clear_win(a, b)) == clear, (wins, losses)
        assert not _clear_win(b, a)


def test_picked_labels_choose_only_C_and_what_is_served(youtube):
    """Labels a strategy picked (no random sample among them) leave the label model and the weak
    weight at their defaults; C (with the weak rows) and the blend are cross-fitted on them, the
    blend from the end model."""
    X, _, votes, _, gold, _ = youtube
    human = _human(gold, 60, seed=3)
    snorkel = {"snorkel": LabelModel(2, kind="snorkel").fit(votes).predict_proba(votes)}
    picked = choose_trust(X, human, 2, votes=votes, label_models=snorkel,
                          decide_on=np.zeros(len(gold), bool))
    assert (picked.label_model, picked.weak_weight) == ("snorkel", 0.5)
    assert set(picked.scores) == {"C_with_weak_all_labels", "blend_all_labels"}
    assert set(picked.scores["C_with_weak_all_labels"]) == {str(c) for c in WEAK_C}
    assert picked.C in WEAK_C
    assert "all 60 human labels" in picked.reason and picked.n_labels == 0
    none = choose_trust(X, np.full(len(gold), -1), 2, votes=votes, label_models=snorkel,
                        decide_on=np.zeros(len(gold), bool))
    assert none.blend == 0.5 and none.scores == {}  # no label at all: the even blend


def test_without_a_random_sample_C_is_cross_fitted_on_every_label(youtube):
    """No LFs and no random sample among the labels (an active-learning strategy's picks, no
    evaluation slice): C is still chosen, by cross-fitted accuracy over the grid on every human
    label, not held at the default (C=1 under-fits: WRENCH YouTube ``margin`` at 100 labels
    served 0.62 against 0.89 for a grid-searched TF-IDF logistic regression)."""
    X, _, _, _, gold, _ = youtube
    human = _human(gold, 60, seed=2)
    trust = choose_trust(X, human, 2, decide_on=np.zeros(len(gold), bool))
    scores = trust.scores["C_all_labels"]
    assert set(scores) == {str(c) for c in C_GRID} and trust.label_model is None
    assert scores[str(trust.C)] == max(scores.values()) > scores["1.0"]  # here C=1 is not the best
    assert "all 60 human labels" in trust.reason
    few = _human(gold, MIN_LABELS - 1, seed=2)
    assert choose_trust(X, few, 2, decide_on=np.zeros(len(gold), bool)).scores == {}


def test_folds_hold_out_deciding_labels_and_train_on_every_other():
    """Only the deciding labels (a random sample) are held out and scored; each fold's fits train
    on every other label the round's model trains on, the picked ones included."""
    from labeling.trust import _Context

    rng = np.random.default_rng(0)
    human = np.where(rng.random(300) < 0.4, rng.integers(0, 2, 300), -1)
    train_on = (human >= 0) & (rng.random(300) < 0.9)  # the rest: an evaluation slice
    rows = np.flatnonzero((human >= 0) & (rng.random(300) < 0.3))
    ctx = _Context(np.zeros((300, 1)), human, 2, None, {}, np.ones(300, bool), 0, train_on)
    folds = ctx.folds(rows)
    assert sorted(np.concatenate([t for _, t in folds])) == list(range(len(rows)))
    for train, test in folds:
        assert set(train) == set(np.flatnonzero(train_on)) - set(rows[test])


def test_picked_labels_start_from_the_random_samples_blend(youtube, monkeypatch):
    """On every label (most of them a strategy's picks), the blend's default is the random
    sample's choice, the even blend where it decided nothing: a mixture, never far below the
    better part (serving the end model instead fell below the label model on Yelp)."""
    import labeling.trust as trust_module
    from labeling.trust import DEFAULT_BLEND, SERVE_PICKED_DEFAULT, Trust, _Context

    X, _, votes, _, gold, _ = youtube
    human = _human(gold, 40, seed=5)
    snorkel = LabelModel(2, kind="snorkel").fit(votes).predict_proba(votes)
    ctx = _Context(X, human, 2, votes, {"snorkel": snorkel}, (votes >= 0).any(axis=1), 0,
                   human >= 0)
    defaults = []
    real = trust_module._best
    monkeypatch.setattr(trust_module, "_best",
                        lambda scored, y, default: defaults.append(default) or real(scored, y, default))
    scores = {"blend": {}, "weak_weight": {}}
    for chosen, expected in ((DEFAULT_BLEND, DEFAULT_BLEND), (0.25, 0.25)):
        trust_module._serve_on_all(ctx, Trust("snorkel", 1.0, 0.5, chosen, 12, "", dict(scores)))
        assert defaults[-1] == expected
    trust_module._serve_on_all(ctx, Trust("snorkel", 1.0, 0.5, DEFAULT_BLEND, 0, "", {}))
    assert defaults[-1] == SERVE_PICKED_DEFAULT  # no random sample: the end model


def test_what_is_served_is_chosen_outright(youtube, monkeypatch):
    """On a random sample, the blend is the best cross-fitted one with no default to beat (as C):
    an even blend as the default held where the end model had outgrown the label model, which
    each fold's end model, on 4/5 of the labels, under-rates. The steps that can drop the LFs
    keep their default until a clear win."""
    import labeling.trust as trust_module

    X, _, votes, _, gold, _ = youtube
    human = _human(gold, 60, seed=3)
    snorkel = LabelModel(2, kind="snorkel").fit(votes).predict_proba(votes)
    calls = []
    real = trust_module._best
    monkeypatch.setattr(trust_module, "_best",
                        lambda scored, y, default: calls.append((set(scored), default))
                        or real(scored, y, default))
    trust = choose_trust(X, human, 2, votes=votes, label_models={"snorkel": snorkel}, seed=0)
    blend_calls = [default for keys, default in calls if keys == set(trust_module.BLENDS)]
    assert blend_calls == [None]
    assert "snorkel" in calls[0][0] and calls[0][1] == "snorkel"  # the label model: Snorkel first
    best = max(trust.scores["blend"].values())
    assert trust.scores["blend"][str(trust.blend)] == best
