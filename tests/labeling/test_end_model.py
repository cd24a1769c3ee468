"""Featurizer, end model and its training set, on WRENCH YouTube and small frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labeling.end_model import EndModel, training_set
from labeling.errors import InvalidInput, NotFittedError
from labeling.features import Featurizer
from labeling.frame import items_frame
from labeling.ingest import read_wrench
from labeling.label_model import LabelModel
from labeling.metrics import evaluate
from tests.server import DATASETS


@pytest.fixture(scope="module")
def youtube():
    ds = read_wrench(DATASETS / "wrench_youtube")
    train, test = ds.splits["train"], ds.splits["test"]
    feat = Featurizer().fit(items_frame(train))
    return {
        "X": feat.transform(items_frame(train)), "X_test": feat.transform(items_frame(test)),
        "y": np.array([r.gold for r in train]), "y_test": np.array([r.gold for r in test]),
        "votes": np.array([r.votes for r in train], dtype=np.int8),
        "frame": items_frame(train), "feat": feat,
    }


def test_end_model_on_gold_labels_beats_the_wrench_reference(youtube):
    model = EndModel(2).fit(youtube["X"], youtube["y"])
    probs = model.predict_proba(youtube["X_test"])
    assert probs.dtype == np.float32 and probs.shape == (250, 2)
    # WRENCH: logistic regression on gold labels 94.24; hashed word + char n-grams give 94.8
    assert evaluate(youtube["y_test"], probs)["accuracy"] >= 0.94


def test_human_labels_are_balanced_by_class(youtube):
    """Labels not in the pool's proportions (30 ham, 20 spam; the pool is about half spam), as a
    few labels or an uncertainty strategy's picks come: weighing the human labels by class (the
    default) keeps the model from leaning to the class that has more of them."""
    X, y = youtube["X"], youtube["y"]
    balanced, plain = [], []
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        rows = np.concatenate([rng.choice(np.flatnonzero(y == 0), 30, replace=False),
                               rng.choice(np.flatnonzero(y == 1), 20, replace=False)])
        human = np.full(len(y), -1)
        human[rows] = y[rows]
        for balance, out in ((True, balanced), (False, plain)):
            idx, labels, w = training_set(len(y), human, None, None, balance=balance)
            probs = EndModel(2).fit(X[idx], labels, sample_weight=w).predict_proba(youtube["X_test"])
            out.append(evaluate(youtube["y_test"], probs)["accuracy"])
    idx, labels, w = training_set(len(y), human, None, None)
    assert np.allclose(w[labels == 0], 50 / (2 * 30)) and np.allclose(w[labels == 1], 50 / (2 * 20))
    assert np.mean(balanced) >= np.mean(plain) + 0.05, (balanced, plain)


def test_weak_labels_with_a_few_human_labels(youtube):
    n = len(youtube["y"])
    lm = LabelModel(2, seed=0).fit(youtube["votes"])
    lm_probs, covered = lm.predict_proba(youtube["votes"]), lm.coverage(youtube["votes"])
    human = np.full(n, -1)
    pick = np.random.default_rng(0).choice(n, 100, replace=False)
    human[pick] = youtube["y"][pick]

    def accuracy(lm_probs, weight):
        idx, y, w = training_set(n, human, lm_probs, covered, weak_weight=weight)
        model = EndModel(2).fit(youtube["X"][idx], y, sample_weight=w)
        return evaluate(youtube["y_test"], model.predict_proba(youtube["X_test"]))["accuracy"]

    human_only, with_weak = accuracy(None, 0.0), accuracy(lm_probs, 0.1)
    assert with_weak >= 0.92 and with_weak > human_only + 0.02, (human_only, with_weak)


def test_transform_of_chunks_equals_the_whole(youtube):
    whole = youtube["feat"].transform(youtube["frame"])
    assert sp.issparse(whole) and whole.dtype == np.float32
    assert whole.shape == (1686, youtube["feat"].n_features_out_)
    parts = [youtube["feat"].transform(youtube["frame"].iloc[a:b]) for a, b in ((0, 3), (3, 1686))]
    assert (sp.vstack(parts) != whole).nnz == 0


def test_numeric_features_are_standardised():
    frame = pd.DataFrame({"id": list("abcd"), "x": [1.0, 2.0, 3.0, np.nan], "y": [10, 10, 30, 30],
                          "flag": [True, False, True, False]})
    feat = Featurizer().fit(frame)
    assert feat.numeric_ == ["x", "y"] and feat.one_hot_ == ["flag"] and not feat.text_
    out = feat.transform(frame)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (4, 5)
    assert np.allclose(out[:, 0], [-1.4142135, 0.0, 1.4142135, 0.0])  # NaN -> the median, 2
    assert np.allclose(out[:, 1], [-1, -1, 1, 1])
    assert np.allclose(out[:, 2], [-0.57735, -0.57735, -0.57735, 1.7320508])  # x was missing
    assert out[:, 3:].tolist() == [[0, 1], [1, 0], [0, 1], [1, 0]]  # flag one-hot: False, True
    mixed = pd.DataFrame({"id": ["a", "b"], "text": ["spam now", None], "x": [1.0, 3.0]})
    both = Featurizer(n_features=64).fit(mixed).transform(mixed)
    assert sp.issparse(both) and both.shape == (2, 129)
    assert np.allclose(both[:, -1].toarray().ravel(), [-1, 1])


def test_featurizer_errors():
    with pytest.raises(NotFittedError):
        Featurizer().transform(pd.DataFrame({"text": ["a"]}))
    with pytest.raises(InvalidInput, match="neither text"):
        Featurizer().fit(pd.DataFrame({"id": ["a"], "lang": ["en"]}))
    feat = Featurizer().fit(pd.DataFrame({"x": [1.0, 2.0]}))
    with pytest.raises(InvalidInput, match="lacks feature column"):
        feat.transform(pd.DataFrame({"z": [1.0]}))


def test_training_set_weights_rows_and_dict_labels():
    human = np.array([1, -1, -1, -1, 0])
    lm = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.9, 0.1]], dtype=np.float32)
    covered = np.array([True, True, True, False, True])
    idx, y, w = training_set(5, human, lm, covered, weak_weight=0.5)
    assert idx.tolist() == [0, 4, 1, 2] and y.tolist() == [1, 0, 0, 1]
    assert np.allclose(w, [1.0, 1.0, 0.45, 0.4])
    same = training_set(5, {0: 1, 4: 0}, lm, covered, weak_weight=0.5)
    assert all(np.array_equal(a, b) for a, b in zip(same, (idx, y, w), strict=True))
    lm[3] = [0.3, 0.7]
    idx, _, _ = training_set(5, human, lm, None, weak_weight=0.5)
    assert idx.tolist() == [0, 4, 1, 2, 3]  # no coverage given: every row counts as covered
    lm[1] = [0.5, 0.5]  # a tie: no weak label, rather than an arbitrary class
    assert training_set(5, human, lm, covered, weak_weight=0.5)[0].tolist() == [0, 4, 2]
    assert training_set(5, human, None, None)[0].tolist() == [0, 4]
    # weak rows weigh by class, balanced among themselves: three of class 0, one of class 1
    lm4 = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
    _, y4, w4 = training_set(4, np.full(4, -1), lm4, None, weak_weight=0.5)
    assert y4.tolist() == [0, 0, 0, 1] and np.allclose(w4, [0.3, 0.3, 0.3, 0.8])
    assert np.allclose(training_set(4, np.full(4, -1), lm4, None, weak_weight=0.5, balance=False)[2],
                       [0.45, 0.45, 0.45, 0.4])
    assert training_set(5, human, lm, covered, weak_weight=0)[0].tolist() == [0, 4]
    with pytest.raises(InvalidInput, match=r"human_labels must be \(5,\)"):
        training_set(5, human[:3], lm, covered)
    with pytest.raises(InvalidInput, match="weak_weight"):
        training_set(5, human, lm, covered, weak_weight=-1)


def test_one_class_and_missing_classes_keep_all_columns():
    m = EndModel(3).fit(np.ones((2, 2)), np.array([2, 2]))
    assert m.classes_seen_.tolist() == [2]
    assert m.predict_proba(np.ones((1, 2))).tolist() == [[0.0, 0.0, 1.0]]
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.1]])
    m = EndModel(4).fit(X, np.array([3, 0, 3, 0]))
    p = m.predict_proba(X)
    assert p.shape == (4, 4) and (p[:, [1, 2]] == 0).all() and p[0].argmax() == 3


def test_end_model_errors():
    with pytest.raises(NotFittedError):
        EndModel(2).predict_proba(np.ones((1, 2)))
    with pytest.raises(InvalidInput, match=r"y must hold ints in 0\.\.1"):
        EndModel(2).fit(np.ones((2, 2)), np.array([0, 2]))
    with pytest.raises(InvalidInput, match="X must be"):
        EndModel(2).fit(np.ones((3, 2)), np.array([0, 1]))
    with pytest.raises(InvalidInput, match=r"X must be \(n, 2\)"):
        EndModel(2).fit(np.ones((2, 2)), np.array([0, 1])).predict_proba(np.ones((1, 3)))


@settings(max_examples=25, deadline=None)
@given(arrays(np.int64, st.integers(2, 30), elements=st.integers(0, 3)),
       st.integers(0, 2**31 - 1))
def test_predict_proba_rows_are_distributions_over_k_classes(y, seed):
    X = np.random.default_rng(seed).normal(size=(len(y), 3))
    p = EndModel(4, seed=seed).fit(X, y).predict_proba(X)
    assert p.shape == (len(y), 4) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert (p[:, np.setdiff1d(np.arange(4), y)] == 0).all()


def test_weak_rows_are_capped_by_a_seeded_uniform_draw():
    n = 1000
    lm = np.tile([0.2, 0.8], (n, 1))
    human = np.full(n, -1)
    human[:10] = 0
    idx, _y, _w = training_set(n, human, lm, None, weak_weight=0.5, max_weak=100, seed=1)
    assert idx[:10].tolist() == list(range(10)) and len(idx) == 110
    weak = idx[10:]
    assert len(set(weak.tolist())) == 100 and weak.min() >= 10 and np.all(np.diff(weak) > 0)
    again = training_set(n, human, lm, None, weak_weight=0.5, max_weak=100, seed=1)[0]
    other = training_set(n, human, lm, None, weak_weight=0.5, max_weak=100, seed=2)[0]
    assert np.array_equal(idx, again) and not np.array_equal(idx, other)


def test_fit_transform_equals_fit_then_transform_and_large_pools_drop_char_ngrams():
    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": ["free gift now", "nice song", "check it"]})
    both = Featurizer().fit_transform(frame)
    assert (both != Featurizer().fit(frame).transform(frame)).nnz == 0
    words_only = Featurizer(char_max_rows=2)
    out = words_only.fit_transform(frame)
    assert not words_only.char_ and out.shape[1] == words_only.n_features
    assert Featurizer().fit(frame).char_ and both.shape[1] == 2 * 2**18


def test_featurize_pool_reuses_an_unchanged_pool_and_sees_any_change():
    from labeling.features import featurize_pool

    frame = pd.DataFrame({"id": ["a", "b"], "text": ["free gift now", "nice song"]})
    extra = pd.DataFrame({"id": ["t"], "text": ["gift song"]})
    feat, x, x_extra = featurize_pool(frame, extra)
    assert (x != Featurizer().fit(frame).transform(frame)).nnz == 0
    assert (x_extra != feat.transform(extra)).nnz == 0
    again = featurize_pool(frame.copy(), extra.copy())
    assert again[0] is feat and again[1] is x and again[2] is x_extra
    edited = frame.assign(text=["free gift now", "nice song!"])
    assert featurize_pool(edited)[1] is not x
    assert featurize_pool(frame, extra.assign(text=["other"]))[2] is not x_extra


def test_sparse_fit_on_used_columns_matches_the_full_fit():
    """Fitting on the columns the training rows use gives the full-width fit's predictions."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = sp.random(300, 5000, density=0.002, format="csr", random_state=1, dtype=np.float64)
    X = X + sp.random(300, 5000, density=0.002, format="csr", random_state=2)
    y = (np.asarray(X[:, :2500].sum(axis=1)).ravel() > np.median(np.asarray(X[:, :2500].sum(axis=1)))).astype(int)
    w = rng.uniform(0.2, 1.0, 300)
    ours = EndModel(2, seed=0).fit(X[:200], y[:200], sample_weight=w[:200])
    full = LogisticRegression(C=1.0, max_iter=1000, random_state=0,
                              solver="newton-cg").fit(X[:200], y[:200], sample_weight=w[:200])
    assert np.allclose(ours.predict_proba(X[200:]), full.predict_proba(X[200:]), atol=1e-5)
    unused = np.setdiff1d(np.arange(5000), X[:200].indices)
    assert len(unused) and np.all(ours.model_.coef_[:, unused] == 0)


def test_relation_items_get_an_entity_aware_block():
    """WRENCH relation data keeps its entity spans; the featurizer then hashes the words between
    the two entities, so two sentences with the same words but different entity pairs differ."""
    from labeling.features import SPAN_COLUMNS

    ds = read_wrench(DATASETS / "wrench_semeval")
    rec = ds.splits["train"][0]
    assert all(c in rec.meta for c in SPAN_COLUMNS)
    text = "the cash was in the suitcase near the door"
    frame = pd.DataFrame({"id": ["a", "b"], "text": [text, text], "span1_start": [4, 4],
                          "span1_end": [8, 8], "span2_start": [20, 34], "span2_end": [28, 38]})
    feat = Featurizer()
    x = feat.fit_transform(frame)
    assert feat.relation_ and x.shape[1] == 3 * feat.n_features
    rel = x[:, 2 * feat.n_features:]
    assert rel[0].nnz and (rel[0] != rel[1]).nnz  # different entity pairs, different features
    assert (x[:, : 2 * feat.n_features][0] != x[:, : 2 * feat.n_features][1]).nnz == 0
    with pytest.raises(InvalidInput, match="entity-span"):
        feat.transform(frame[["id", "text"]])
    plain = Featurizer()
    plain.fit(frame[["id", "text"]])
    assert not plain.relation_


def test_newton_cg_on_small_fits_lbfgs_on_large(monkeypatch):
    """Both reach the same optimum; Newton-CG is the faster on the few thousand rows of a round's
    cross-fitted fits, L-BFGS on the hundreds of thousands of a large pool's final fit."""
    from labeling import end_model

    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    small = EndModel(2).fit(X, y)
    monkeypatch.setattr(end_model, "NEWTON_MAX_ROWS", 39)
    large = EndModel(2).fit(X, y)
    assert (small.model_.solver, large.model_.solver) == ("newton-cg", "lbfgs")
    assert np.allclose(small.predict_proba(X), large.predict_proba(X), atol=1e-3)
