"""Inter-annotator agreement over a ratings matrix: Cohen's kappa per pair of annotators,
Fleiss' kappa, Krippendorff's alpha (nominal, missing ratings allowed), overall and per class.

Every function takes ``ratings``, an (n_items, n_annotators) integer matrix with the class index
each annotator gave each item and -1 where they gave none. Only items with two or more ratings
count (one rating agrees with nothing). Every figure comes with ``n_items``, the number of items
it rests on; a figure that is undefined on its items (too few, or every rating the same class, so
chance agreement is already perfect) is None.

Fleiss' kappa needs the same number of ratings on every item it uses: it uses the items with the
most common number of ratings (among those with two or more; a tie goes to the larger number) and
says which number that was (``ratings_per_item``). Krippendorff's alpha uses every item with two
or more ratings. For complete data (every item rated by all m annotators, N items) the two are
tied: alpha = 1 - (1 - kappa) (N m - 1) / (N m).
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from labeling.errors import InvalidInput

__all__ = [
    "agreement_report",
    "check_ratings",
    "cohen_pairs",
    "fleiss",
    "krippendorff_alpha_nominal",
    "per_class",
]


def check_ratings(ratings: np.ndarray, n_classes: int) -> np.ndarray:
    """``ratings`` as an int64 (n, m) matrix of -1 or 0..n_classes-1; ``InvalidInput`` otherwise."""
    r = np.asarray(ratings)
    if r.ndim != 2 or (r.size and r.dtype.kind not in "iu"):
        raise InvalidInput(f"ratings must be an (n_items, n_annotators) integer matrix, got shape "
                           f"{r.shape} dtype {r.dtype}")
    if not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise InvalidInput(f"n_classes must be an integer >= 2, got {n_classes!r}")
    r = r.astype(np.int64)
    if r.size and (r.min() < -1 or r.max() >= n_classes):
        raise InvalidInput(f"ratings must be -1 (none) or a class index 0..{n_classes - 1}, got "
                           f"{r.min()}..{r.max()}")
    return r


def _figure(value: float | None, n_items: int, **extra) -> dict:
    ok = value is not None and math.isfinite(value)
    return {"value": float(value) if ok else None, "n_items": int(n_items), **extra}


def _counts(ratings: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, K) how many annotators gave each class to each item."""
    counts = np.zeros((len(ratings), n_classes), dtype=np.int64)
    rows, cols = np.nonzero(ratings >= 0)
    np.add.at(counts, (rows, ratings[rows, cols]), 1)
    return counts


def krippendorff_alpha_nominal(ratings: np.ndarray, n_classes: int) -> dict:
    """Krippendorff's alpha for nominal data with missing ratings.

    From the coincidence matrix (Krippendorff, "Computing Krippendorff's alpha-reliability",
    2011): each item u with m_u >= 2 ratings adds n_uc n_uk / (m_u - 1) to o_ck (c != k) and
    n_uc (n_uc - 1) / (m_u - 1) to o_cc; with n_c = sum_k o_ck and n = sum_c n_c,
    alpha = 1 - (n - 1) (n - sum_c o_cc) / (n^2 - sum_c n_c^2).

    Returns ``{"value": alpha or None, "n_items": items with >= 2 ratings}``.
    """
    r = check_ratings(ratings, n_classes)
    counts = _counts(r, n_classes)
    m = counts.sum(axis=1)
    pairable = m >= 2
    counts, m = counts[pairable], m[pairable]
    n_items = int(pairable.sum())
    if n_items == 0:
        return _figure(None, 0)
    agree = (counts * (counts - 1)).sum(axis=1) / (m - 1)  # sum_c o_cc, per item
    n_c = counts.sum(axis=0).astype(np.float64)  # each pairable value appears once in the margins
    n = float(n_c.sum())
    expected = n * n - float((n_c * n_c).sum())
    if expected == 0:  # one class only: no disagreement is possible by chance either
        return _figure(None, n_items)
    return _figure(1.0 - (n - 1.0) * (n - float(agree.sum())) / expected, n_items)


def fleiss(ratings: np.ndarray, n_classes: int) -> dict:
    """Fleiss' kappa (``statsmodels.stats.inter_rater.fleiss_kappa``) over the items with the most
    common number of ratings (>= 2; ties to the larger number).

    Returns ``{"value", "n_items", "ratings_per_item"}`` (``ratings_per_item`` None when no item
    has two ratings).
    """
    from statsmodels.stats.inter_rater import fleiss_kappa

    r = check_ratings(ratings, n_classes)
    counts = _counts(r, n_classes)
    m = counts.sum(axis=1)
    sizes, freq = np.unique(m[m >= 2], return_counts=True)
    if len(sizes) == 0:
        return _figure(None, 0, ratings_per_item=None)
    best = int(sizes[np.flatnonzero(freq == freq.max())[-1]])
    table = counts[m == best]
    p = table.sum(axis=0) / table.sum()
    if np.isclose(float((p * p).sum()), 1.0):  # one class only: kappa is 0/0
        return _figure(None, len(table), ratings_per_item=best)
    return _figure(float(fleiss_kappa(table, method="fleiss")), len(table), ratings_per_item=best)


def cohen_pairs(ratings: np.ndarray, annotators: list[str], n_classes: int) -> list[dict]:
    """Cohen's kappa (``sklearn.metrics.cohen_kappa_score``) for every pair of annotators who
    rated at least one item in common, over those items.

    Returns a list of ``{"annotators": [a, b], "cohen_kappa": value or None, "n_items": n}`` in
    the order of ``annotators`` (a before b).
    """
    from sklearn.metrics import cohen_kappa_score

    r = check_ratings(ratings, n_classes)
    if len(annotators) != r.shape[1]:
        raise InvalidInput(f"need one annotator name per ratings column: {r.shape[1]} columns, "
                           f"{len(annotators)} names")
    rated = r >= 0
    out = []
    for a, b in combinations(range(r.shape[1]), 2):
        both = rated[:, a] & rated[:, b]
        n = int(both.sum())
        if n == 0:
            continue
        x, y = r[both, a], r[both, b]
        value = None
        if len(np.union1d(x, y)) > 1:  # one class on both sides: kappa is 0/0
            value = float(cohen_kappa_score(x, y, labels=np.arange(n_classes)))
        out.append({"annotators": [annotators[a], annotators[b]],
                    "cohen_kappa": value if value is None or math.isfinite(value) else None,
                    "n_items": n})
    return out


def per_class(ratings: np.ndarray, n_classes: int, class_names: list[str]) -> list[dict]:
    """Agreement on each class against the rest (ratings made binary: this class or another):
    ``{"class", "krippendorff_alpha", "fleiss_kappa"}`` per class."""
    r = check_ratings(ratings, n_classes)
    if len(class_names) != n_classes:
        raise InvalidInput(f"need {n_classes} class names, got {len(class_names)}")
    out = []
    for c, name in enumerate(class_names):
        binary = np.where(r < 0, -1, (r == c).astype(np.int64))
        out.append({"class": name, "krippendorff_alpha": krippendorff_alpha_nominal(binary, 2),
                    "fleiss_kappa": fleiss(binary, 2)})
    return out


def agreement_report(ratings: np.ndarray, annotators: list[str], class_names: list[str], *,
                     by_class: bool = False) -> dict:
    """The figures of a project: ``krippendorff_alpha``, ``fleiss_kappa`` (each ``{value,
    n_items}``), ``pairs`` (see :func:`cohen_pairs`), ``n_items`` (items with >= 2 ratings) and,
    with ``by_class``, ``classes`` (see :func:`per_class`).

    Parameters
    ----------
    ratings : (n_items, n_annotators) int, -1 = no rating
    annotators : (n_annotators,) names of the columns
    class_names : (K,) names of the classes
    """
    k = len(class_names)
    r = check_ratings(ratings, k)
    out = {
        "n_items": int(((r >= 0).sum(axis=1) >= 2).sum()),
        "krippendorff_alpha": krippendorff_alpha_nominal(r, k),
        "fleiss_kappa": fleiss(r, k),
        "pairs": cohen_pairs(r, annotators, k),
    }
    if by_class:
        out["classes"] = per_class(r, k, class_names)
    return out
