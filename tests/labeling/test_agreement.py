"""Agreement figures against published values, scikit-learn and statsmodels (property tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from labeling.agreement import (
    agreement_report,
    cohen_pairs,
    fleiss,
    krippendorff_alpha_nominal,
    per_class,
)
from labeling.errors import InvalidInput

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers,
# 12 units, values 1..5 with missing data (here 0..4, -1 missing); nominal alpha = 0.743
_ = -1
KRIPPENDORFF_2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
]).T
KRIPPENDORFF_2011 = np.where(KRIPPENDORFF_2011 > 0, KRIPPENDORFF_2011 - 1, -1)

# Fleiss (1971) as Wikipedia's "Fleiss' kappa" worked example gives it: 10 items, 14 raters,
# counts per category; kappa = 0.210
FLEISS_COUNTS = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])


def complete(n_classes: int):
    """Complete rating matrices: 2..20 items, 2..6 annotators."""
    return st.tuples(st.integers(2, 20), st.integers(2, 6)).flatmap(
        lambda shape: arrays(np.int64, shape, elements=st.integers(0, n_classes - 1)))


def with_missing(n_classes: int):
    return st.tuples(st.integers(1, 25), st.integers(2, 6)).flatmap(
        lambda shape: arrays(np.int64, shape, elements=st.integers(-1, n_classes - 1)))


def test_krippendorff_alpha_matches_the_published_example():
    got = krippendorff_alpha_nominal(KRIPPENDORFF_2011, 5)
    assert got["value"] == pytest.approx(0.743, abs=5e-4)
    assert got["n_items"] == 11  # unit 12 has a single value: not pairable


def test_fleiss_kappa_matches_the_published_example():
    ratings = np.array([np.repeat(np.arange(5), row) for row in FLEISS_COUNTS])
    got = fleiss(ratings, 5)
    assert got["value"] == pytest.approx(0.210, abs=5e-4)
    assert (got["n_items"], got["ratings_per_item"]) == (10, 14)


@settings(max_examples=60, deadline=None)
@given(complete(3))
def test_alpha_and_fleiss_agree_on_complete_data(ratings):
    """alpha = 1 - (1 - kappa) (N m - 1) / (N m), kappa from statsmodels directly."""
    table, _ = aggregate_raters(ratings, n_cat=3)
    p = table.sum(axis=0) / table.sum()
    alpha = krippendorff_alpha_nominal(ratings, 3)["value"]
    if np.isclose((p * p).sum(), 1.0):  # one class only: both undefined
        assert alpha is None and fleiss(ratings, 3)["value"] is None
        return
    kappa = fleiss_kappa(table)
    assert fleiss(ratings, 3)["value"] == pytest.approx(kappa, abs=1e-9)
    nm = ratings.size
    assert alpha == pytest.approx(1 - (1 - kappa) * (nm - 1) / nm, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(with_missing(3))
def test_fleiss_uses_the_most_common_rating_count_and_matches_statsmodels(ratings):
    got = fleiss(ratings, 3)
    m = (ratings >= 0).sum(axis=1)
    if not (m >= 2).any():
        assert got == {"value": None, "n_items": 0, "ratings_per_item": None}
        return
    sizes, freq = np.unique(m[m >= 2], return_counts=True)
    assert got["ratings_per_item"] == sizes[freq == freq.max()].max()
    used = ratings[m == got["ratings_per_item"]]
    assert got["n_items"] == len(used)
    table = np.stack([(used == c).sum(axis=1) for c in range(3)], axis=1)
    p = table.sum(axis=0) / table.sum()
    if got["value"] is None:
        assert np.isclose((p * p).sum(), 1.0)
    else:
        assert got["value"] == pytest.approx(fleiss_kappa(table), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(with_missing(3))
def test_cohen_pairs_match_sklearn_on_the_shared_items(ratings):
    names = [f"a{j}" for j in range(ratings.shape[1])]
    pairs = {tuple(p["annotators"]): p for p in cohen_pairs(ratings, names, 3)}
    for a in range(ratings.shape[1]):
        for b in range(a + 1, ratings.shape[1]):
            both = (ratings[:, a] >= 0) & (ratings[:, b] >= 0)
            key = (names[a], names[b])
            if not both.any():
                assert key not in pairs
                continue
            assert pairs[key]["n_items"] == both.sum()
            x, y = ratings[both, a], ratings[both, b]
            if len(np.union1d(x, y)) == 1:
                assert pairs[key]["cohen_kappa"] is None
            else:
                want = cohen_kappa_score(x, y, labels=[0, 1, 2])
                assert pairs[key]["cohen_kappa"] == pytest.approx(want, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(with_missing(4), st.permutations(range(4)), st.randoms(use_true_random=False))
def test_alpha_ignores_class_names_and_annotator_order(ratings, perm, rnd):
    relabeled = np.where(ratings >= 0, np.array(perm)[ratings], -1)
    cols = list(range(ratings.shape[1]))
    rnd.shuffle(cols)
    a = krippendorff_alpha_nominal(ratings, 4)
    b = krippendorff_alpha_nominal(relabeled[:, cols], 4)
    assert a["n_items"] == b["n_items"] == ((ratings >= 0).sum(axis=1) >= 2).sum()
    if a["value"] is None:
        assert b["value"] is None
    else:
        assert b["value"] == pytest.approx(a["value"], abs=1e-9)
        assert a["value"] <= 1.0 + 1e-12


def test_perfect_agreement_is_one_and_systematic_disagreement_below_zero():
    same = np.array([[0, 0], [1, 1], [2, 2], [1, 1]])
    assert krippendorff_alpha_nominal(same, 3)["value"] == pytest.approx(1.0)
    assert fleiss(same, 3)["value"] == pytest.approx(1.0)
    swapped = np.array([[0, 1], [1, 0], [0, 1], [1, 0]])
    assert krippendorff_alpha_nominal(swapped, 2)["value"] < 0
    assert cohen_pairs(swapped, ["a", "b"], 2)[0]["cohen_kappa"] == pytest.approx(-1.0)


def test_per_class_is_one_versus_rest():
    rows = per_class(KRIPPENDORFF_2011, 5, list("abcde"))
    assert [r["class"] for r in rows] == list("abcde")
    for c, row in enumerate(rows):
        binary = np.where(KRIPPENDORFF_2011 < 0, -1, (KRIPPENDORFF_2011 == c).astype(int))
        assert row["krippendorff_alpha"] == krippendorff_alpha_nominal(binary, 2)
        assert row["fleiss_kappa"] == fleiss(binary, 2)


def test_report_counts_only_items_with_two_ratings():
    ratings = np.array([[0, -1, -1], [1, 1, -1], [0, 1, 0], [-1, -1, -1]])
    got = agreement_report(ratings, ["a", "b", "c"], ["x", "y"], by_class=True)
    assert got["n_items"] == 2
    assert got["krippendorff_alpha"]["n_items"] == 2
    assert {tuple(p["annotators"]): p["n_items"] for p in got["pairs"]} == {
        ("a", "b"): 2, ("a", "c"): 1, ("b", "c"): 1}
    assert len(got["classes"]) == 2


@pytest.mark.parametrize("bad, k, what", [
    (np.array([[0, 3]]), 3, "class index"),
    (np.array([[0, -2]]), 3, "class index"),
    (np.array([0, 1]), 3, "matrix"),
    (np.array([[0.5, 1.0]]), 3, "matrix"),
    (np.array([[0, 1]]), 1, "n_classes"),
])
def test_bad_ratings_are_refused_by_name(bad, k, what):
    with pytest.raises(InvalidInput, match=what):
        krippendorff_alpha_nominal(bad, k)


def test_cohen_pairs_need_a_name_per_column():
    with pytest.raises(InvalidInput, match="annotator name"):
        cohen_pairs(np.zeros((2, 3), dtype=int), ["a", "b"], 2)
