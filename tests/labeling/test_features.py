"""Tabular data as it comes: missing numbers (median plus a missing indicator), categorical columns
(one-hot, or ordinal codes for ordered categoricals), and text with numbers in one end model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labeling.end_model import EndModel
from labeling.errors import InvalidInput
from labeling.features import MAX_CATEGORIES, Featurizer, categorical_columns, frame_digest
from labeling.frame import items_frame
from labeling.ingest import read_records


def test_missing_numbers_get_the_median_and_an_indicator():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 5.0], "b": [2.0, 2.0, 4.0, 4.0]})
    feat = Featurizer().fit(frame)
    X = feat.transform(frame)
    assert isinstance(X, np.ndarray) and X.shape == (4, 3) == (4, feat.n_features_out_)
    # columns: a (median 3 imputed), b, a-missing indicator; all standardised
    raw = np.array([[1, 2, 0], [3, 2, 1], [3, 4, 0], [5, 4, 0]], dtype=np.float64)
    expect = (raw - raw.mean(0)) / raw.std(0)
    assert np.allclose(X, expect, atol=1e-6)
    new = feat.transform(pd.DataFrame({"a": [np.nan], "b": [np.nan]}))
    assert np.allclose(new, [expect[1, 0], (3 - 3) / raw[:, 1].std(), expect[1, 2]], atol=1e-6)


def test_categorical_columns_are_one_hot_or_ordinal_by_type():
    size = pd.Categorical(["S", "M", "L", "M", None], categories=["S", "M", "L"], ordered=True)
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0], "colour": ["red", "blue", "red", None, "green"],
                          "size": size, "flag": [True, False, True, True, False],
                          "note": [f"free text {i}" for i in range(5)]})
    one_hot, ordinal = categorical_columns(frame, ["x"])
    assert one_hot == ["colour", "flag"] and ordinal == ["size"]  # 5 distinct notes of 5 rows too
    feat = Featurizer().fit(frame)
    X = feat.transform(frame)
    # x, size code, size-missing indicator; colour blue/green/red (+ "" for missing); flag F/T
    assert X.shape == (5, 3 + 4 + 2) == (5, feat.n_features_out_)
    onehot = X[:, 3:]
    assert onehot[0].tolist() == [0, 0, 0, 1, 0, 1] and onehot[3].tolist() == [1, 0, 0, 0, 0, 1]
    codes = frame["size"].cat.codes.to_numpy(dtype=float)
    assert np.corrcoef(X[[0, 1, 2, 3], 1], codes[:4])[0, 1] > 0.99  # S < M < L kept in order
    unseen = feat.transform(frame.assign(colour=["purple"] * 5))
    assert unseen[:, 3:7].sum() == 0  # a value not seen at fit: all zeros, no error
    assert frame_digest(frame) != frame_digest(frame.assign(colour=["red"] * 5))


def test_a_wide_free_text_column_is_not_a_category():
    frame = pd.DataFrame({"x": np.arange(200.0), "who": [f"user{i % (MAX_CATEGORIES + 1)}" for i in range(200)]})
    assert categorical_columns(frame, ["x"]) == ([], [])


def test_text_numbers_and_categories_in_one_end_model(tmp_path):
    """A CSV as people have it: text, a numeric column with empty cells, a categorical column.
    Each carries part of the signal; the one end model must use all three."""
    rng = np.random.default_rng(0)
    n = 400
    word = rng.integers(0, 2, n)
    amount = rng.normal(0, 1, n)
    shop = rng.choice(["north", "south", "east"], n)
    score = 2.0 * word + 1.5 * amount + 2.0 * (shop == "east") - 1.5
    label = (score + rng.normal(0, 0.3, n) > 0).astype(int)
    amount_cell = np.where(rng.random(n) < 0.15, np.nan, amount)
    text = np.where(word == 1, "great item arrived", "item arrived late")
    path = tmp_path / "orders.csv"
    pd.DataFrame({"id": [f"o{i}" for i in range(n)], "text": text, "amount": amount_cell,
                  "shop": shop, "label": label}).to_csv(path, index=False)
    records = list(read_records(path, feature_columns=["amount"]))
    # an empty cell is a missing value: the item has no "amount" (labeling.validation)
    assert sum("amount" not in r.features for r in records) == int(np.isnan(amount_cell).sum())
    frame = items_frame(records)
    feat = Featurizer()
    X = feat.fit_transform(frame)
    assert feat.numeric_ == ["amount"] and feat.one_hot_ == ["shop"] and feat.text_
    y = np.array([r.gold for r in records])
    train, test = np.arange(300), np.arange(300, n)

    def accuracy(Xm) -> float:
        model = EndModel(2, C=10.0).fit(Xm[train], y[train])
        return float((model.predict_proba(Xm[test]).argmax(1) == y[test]).mean())

    full = accuracy(X)
    text_only = accuracy(Featurizer().fit_transform(pd.DataFrame({"text": frame["text"]})))
    assert full >= 0.85 and full > text_only + 0.1, (full, text_only)


def test_a_frame_without_any_feature_is_refused():
    with pytest.raises(InvalidInput, match="neither text"):
        Featurizer().fit(pd.DataFrame({"id": ["a", "b"], "note": ["x", "y"] * 1}).iloc[:1])
