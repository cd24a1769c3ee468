"""On a real small problem, informed strategies beat random at what they claim to do."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from strategies import QueryContext, select
from strategies.diversity import min_sq_distances
from strategies.scores import SCORERS


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order] / 16.0, y[order]
    model = LogisticRegression(max_iter=300).fit(x[:100], y[:100])
    candidates = np.ones(len(x), dtype=bool)
    candidates[:100] = False
    return x.astype(np.float32), y, model.predict_proba(x).astype(np.float32), candidates


@pytest.mark.parametrize("name", ["entropy", "margin", "least_confidence"])
def test_uncertainty_picks_more_uncertain_and_more_wrong_items_than_random(digits, name):
    _, y, probs, candidates = digits
    ctx = QueryContext(n_classes=10, candidates=candidates, probs=probs, labeled=~candidates)
    picked = select(name, ctx, 50, np.random.default_rng(0)).indices
    rand = [select("random", ctx, 50, np.random.default_rng(s)).indices for s in range(5)]
    score = SCORERS[name]
    assert score(probs[picked]).mean() > 1.5 * np.mean([score(probs[r]).mean() for r in rand])
    wrong = probs.argmax(axis=1) != y
    assert wrong[picked].mean() > np.mean([wrong[r].mean() for r in rand])


def test_kcenter_covers_the_pool_better_than_random(digits):
    x, _, probs, candidates = digits
    ctx = QueryContext(n_classes=10, candidates=candidates, probs=probs, labeled=~candidates,
                       features=x)

    def radius(idx):  # farthest candidate from any labeled or picked item
        return np.sqrt(min_sq_distances(x[candidates], x[np.r_[np.flatnonzero(~candidates), idx]]).max())

    kc = radius(select("kcenter", ctx, 50, np.random.default_rng(0)).indices)
    rnd = min(radius(select("random", ctx, 50, np.random.default_rng(s)).indices) for s in range(5))
    assert kc < rnd
