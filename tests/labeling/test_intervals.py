"""Evaluation intervals: Wilson for accuracy, a percentile bootstrap for macro-F1."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from labeling.errors import InvalidInput
from labeling.intervals import _macro_f1, bootstrap_macro_f1, evaluate_with_interval, wilson


def test_wilson_matches_the_textbook_values():
    lo, hi = wilson(2, 2)  # "accuracy 1.0 on 2 items"
    assert lo == pytest.approx(0.3424, abs=1e-4) and hi == 1.0
    lo, hi = wilson(81, 100)
    assert (lo, hi) == pytest.approx((0.7222, 0.8749), abs=1e-4)
    assert wilson(0, 0) is None and wilson(0, 5)[0] == 0.0
    with pytest.raises(InvalidInput):
        wilson(3, 2)


def test_vectorised_macro_f1_equals_sklearn():
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 4, (20, 30)), rng.integers(0, 4, (20, 30))
    pred[3] = 0  # a row where classes are missing from the predictions
    ours = _macro_f1(y, pred, 4)
    theirs = [f1_score(a, b, average="macro", zero_division=0) for a, b in zip(y, pred, strict=True)]
    assert np.allclose(ours, theirs)


def test_intervals_narrow_with_more_items_and_hold_the_estimate():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 2000)
    pred = np.where(rng.random(2000) < 0.8, y, rng.integers(0, 3, 2000))
    probs = np.eye(3)[pred]
    small, large = evaluate_with_interval(y[:40], probs[:40]), evaluate_with_interval(y, probs)
    for out in (small, large):
        assert out["accuracy_ci"][0] <= out["accuracy"] <= out["accuracy_ci"][1]
        assert out["macro_f1_ci"][0] <= out["macro_f1"] <= out["macro_f1_ci"][1]
    width = lambda ci: ci[1] - ci[0]
    assert small["n_items"] == 40 and large["n_items"] == 2000
    assert width(large["accuracy_ci"]) < width(small["accuracy_ci"]) / 4
    assert width(large["macro_f1_ci"]) < width(small["macro_f1_ci"]) / 4
    assert bootstrap_macro_f1(y, pred, seed=3) == bootstrap_macro_f1(y, pred, seed=3)
    empty = evaluate_with_interval(np.zeros(0, int), np.zeros((0, 3)))
    assert empty["n_items"] == 0 and empty["accuracy_ci"] is None and empty["macro_f1_ci"] is None
