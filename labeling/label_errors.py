"""Which human labels are likely wrong: a ranking of the human-labeled items, with reasons.

Each round, the human-labeled items get out-of-sample class probabilities by cross-validation:
the end model (:class:`labeling.end_model.EndModel`, on the round's pool features) trained on the
other folds' human labels plus, as in the round, the label model's weak labels of unlabeled items
and the known answers of gold items. Where the labeling functions cover an item, the label
model's posterior (fitted on LF votes alone, so also independent of the human label) is averaged
in, if the label model agrees with the human labels at least as often as the cross-validated
model (a strategy sends humans the items the models get wrong, so it often does not). cleanlab scores each given label against these probabilities
(``get_label_quality_scores``, self-confidence: the probability of the given class) and flags the
likely issues (``find_label_issues``, confident learning). Items are ranked by that score, lowest
(most likely wrong) first; each carries its reasons: what the cross-validated model, the label
model and the round's end model say when they confidently disagree with the human.

The ranking is stored with the round as one float32 matrix (:data:`COLUMNS`), and the score of
every human label as ``label_quality`` (NaN where there is none).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from labeling.errors import InvalidInput

__all__ = ["COLUMNS", "CONFIDENT", "MIN_LABELS", "cross_val_probs", "entry", "label_error_arrays",
           "rank_label_errors", "reasons"]

CONFIDENT = 0.8  # a model "confidently disagrees" when it gives another class at least this
MIN_LABELS = 20  # human labels before a ranking is made
FOLDS = 5
MAX_WEAK_ROWS = 20_000  # weak-labeled rows each fold trains on, at most
# columns of the stored ranking, one row per ranked item; -1 / NaN where a model has nothing
COLUMNS = ("item", "given", "quality", "issue", "cv_pred", "cv_prob", "lm_pred", "lm_prob",
           "end_pred", "end_prob")


def cross_val_probs(X, rows: np.ndarray, labels: np.ndarray, n_classes: int, *, seed: int,
                    folds: int = FOLDS,
                    extra: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Out-of-sample probabilities of the labeled rows: (t, K) float64.

    Each fold's end model learns from the other folds' labels plus ``extra`` rows (weak labels of
    unlabeled items, known answers of gold items: rows whose label is not one being judged),
    and predicts the held-out fold.

    Parameters
    ----------
    X : (n, d) features of the pool
    rows : (t,) int, the pool rows whose labels are judged
    labels : (t,) int, their human labels
    n_classes : K
    seed : the folds' shuffle and the model's solver
    folds : at most this many folds (fewer when a class has fewer labels; at least 2)
    extra : (rows, labels, weights) always trained on, or None
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    from labeling.end_model import EndModel

    rows, labels = np.asarray(rows), np.asarray(labels)
    if len(rows) != len(labels) or len(labels) < 2:
        raise InvalidInput(f"need at least 2 labeled rows and one label per row, got {len(rows)} "
                           f"rows and {len(labels)} labels")
    smallest = int(np.bincount(labels, minlength=n_classes)[np.unique(labels)].min())
    k = max(2, min(folds, smallest, len(labels)))
    if smallest >= 2:
        splits = StratifiedKFold(k, shuffle=True, random_state=seed).split(rows, labels)
    else:  # a class with a single label cannot be stratified
        splits = KFold(k, shuffle=True, random_state=seed).split(rows)
    e_rows, e_y, e_w = extra if extra is not None else (np.zeros(0, np.int64),) * 2 + (np.zeros(0),)
    out = np.zeros((len(labels), n_classes), dtype=np.float64)
    for train, test in splits:
        idx = np.concatenate([rows[train], e_rows]).astype(np.int64)
        y = np.concatenate([labels[train], e_y]).astype(np.int64)
        w = np.concatenate([np.ones(len(train)), e_w])
        model = EndModel(n_classes, seed=seed).fit(X[idx], y, sample_weight=w)
        out[test] = model.predict_proba(X[rows[test]])
    return out


def _extra_rows(human: np.ndarray, exclude: np.ndarray, lm_probs: np.ndarray | None,
                lm_covered: np.ndarray | None, weak_weight: float, seed: int):
    """Rows every fold trains on: known answers of excluded (gold) items at weight 1, and the
    label model's decided labels of unlabeled covered items at ``weak_weight`` x confidence
    (as the round's end model weighs them), at most :data:`MAX_WEAK_ROWS` of them (drawn with
    ``seed``), so the folds cost little next to the round's own fit on a large pool."""
    known = np.flatnonzero((human >= 0) & exclude)
    parts = [(known, human[known], np.ones(len(known)))]
    if lm_probs is not None and weak_weight > 0:
        covered = np.ones(len(human), bool) if lm_covered is None else np.asarray(lm_covered, bool)
        top2 = np.sort(lm_probs, axis=1)[:, -2:]
        weak = np.flatnonzero((human < 0) & covered & (top2[:, 1] - top2[:, 0] >= 1e-6))
        if len(weak) > MAX_WEAK_ROWS:
            weak = np.sort(np.random.default_rng(seed).choice(weak, MAX_WEAK_ROWS, replace=False))
        parts.append((weak, lm_probs[weak].argmax(axis=1), weak_weight * lm_probs[weak].max(axis=1)))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def _trusted(lm: np.ndarray, cv: np.ndarray, labels: np.ndarray) -> bool:
    """Whether the label model agrees with the human labels it covers at least as often as the
    cross-validated model does on the same items. Strategies send humans the items the models
    get wrong (on WRENCH YouTube under ``entropy``, the label model agreed with 28% of the human
    labels it covered), and averaging such a model in buries the wrong labels."""
    if not len(labels):
        return False
    return bool((lm.argmax(axis=1) == labels).mean() >= (cv.argmax(axis=1) == labels).mean())


def rank_label_errors(labels: np.ndarray, cv_probs: np.ndarray, *,
                      lm_probs: np.ndarray | None = None, lm_covered: np.ndarray | None = None,
                      end_probs: np.ndarray | None = None) -> np.ndarray:
    """The ranking of :data:`COLUMNS` (without ``item``, which the caller fills): (t, 9) float32
    rows in the order of ``labels``; sort by ``quality`` ascending for the ranking.

    Parameters
    ----------
    labels : (t,) int, human labels
    cv_probs : (t, K) out-of-sample probabilities (:func:`cross_val_probs`)
    lm_probs : (t, K) label-model posteriors, or None
    lm_covered : (t,) bool, rows an LF voted on (the label model says nothing elsewhere)
    end_probs : (t, K) the round's end-model probabilities, or None
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, dtype=np.int64)
    t, k = np.asarray(cv_probs).shape
    if len(labels) != t:
        raise InvalidInput(f"cv_probs must have one row per label: {t} rows, {len(labels)} labels")
    probs = np.asarray(cv_probs, dtype=np.float64).copy()
    covered = np.zeros(t, dtype=bool)
    if lm_probs is not None:
        covered = np.ones(t, dtype=bool) if lm_covered is None else np.asarray(lm_covered, bool)
        if _trusted(np.asarray(lm_probs)[covered], probs[covered], labels[covered]):
            probs[covered] = (probs[covered] + np.asarray(lm_probs, dtype=np.float64)[covered]) / 2
    probs = np.clip(probs, 1e-9, None)
    probs /= probs.sum(axis=1, keepdims=True)
    quality = get_label_quality_scores(labels, probs)
    issue = np.zeros(t, dtype=bool)
    if len(np.unique(labels)) == k:  # confident learning needs every class among the labels
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            issue = find_label_issues(labels, probs, n_jobs=1)  # no process pool in a server
    out = np.full((t, len(COLUMNS) - 1), np.nan, dtype=np.float32)
    out[:, 0], out[:, 1], out[:, 2] = labels, quality, issue
    out[:, 3], out[:, 4] = cv_probs.argmax(axis=1), np.max(cv_probs, axis=1)
    out[:, 5] = -1
    if lm_probs is not None:
        lm = np.asarray(lm_probs)
        out[covered, 5], out[covered, 6] = lm[covered].argmax(axis=1), lm[covered].max(axis=1)
    out[:, 7] = -1
    if end_probs is not None:
        end = np.asarray(end_probs)
        out[:, 7], out[:, 8] = end.argmax(axis=1), end.max(axis=1)
    return out


def label_error_arrays(frame: pd.DataFrame, human: np.ndarray, n_classes: int, *, seed: int,
                       exclude: np.ndarray | None = None, lm_probs: np.ndarray | None = None,
                       lm_covered: np.ndarray | None = None, end_probs: np.ndarray | None = None,
                       weak_weight: float = 0.5) -> dict[str, np.ndarray]:
    """A round's label-error outputs over the pool, as the store keeps them.

    Parameters
    ----------
    frame : (n rows) the pool
    human : (n,) int, consensus human labels, -1 = none
    exclude : (n,) bool, labeled items not to rank (gold items, whose answer is known)
    lm_probs, lm_covered, end_probs : the round's label model and end model over the pool
    weak_weight : weight of a weak label (times the label model's confidence) in the folds

    Returns
    -------
    ``label_errors`` (t, len(COLUMNS)) float32 sorted most likely wrong first (no rows with
    fewer than :data:`MIN_LABELS` labels to rank, or a single class among them), and
    ``label_quality`` (n,) float32, NaN where no label was ranked.
    """
    from labeling.features import featurize_pool

    human = np.asarray(human)
    exclude = np.zeros(len(human), bool) if exclude is None else np.asarray(exclude, bool)
    rows = np.flatnonzero((human >= 0) & ~exclude)
    quality = np.full(len(human), np.nan, dtype=np.float32)
    if len(rows) < MIN_LABELS or len(np.unique(human[rows])) < 2:
        return {"label_errors": np.zeros((0, len(COLUMNS)), dtype=np.float32),
                "label_quality": quality}
    labels = human[rows].astype(np.int64)
    _, X, _ = featurize_pool(frame)  # the round has just featurized this pool: a cache hit
    cv = cross_val_probs(X, rows, labels, n_classes, seed=seed,
                         extra=_extra_rows(human, exclude, lm_probs, lm_covered, weak_weight, seed))
    ranked = rank_label_errors(
        labels, cv, lm_probs=None if lm_probs is None else lm_probs[rows],
        lm_covered=None if lm_covered is None else lm_covered[rows],
        end_probs=None if end_probs is None else end_probs[rows])
    table = np.hstack([rows[:, None].astype(np.float32), ranked])
    order = np.lexsort((rows, ranked[:, 1]))  # quality ascending, then pool order
    quality[rows] = ranked[:, 1]
    return {"label_errors": table[order], "label_quality": quality}


def reasons(row: np.ndarray, class_names: list[str], *, confident: float = CONFIDENT) -> list[str]:
    """Why one ranked row (of :data:`COLUMNS`) may be a wrong label, in words."""
    c = dict(zip(COLUMNS, row.tolist(), strict=True))
    given = int(c["given"])
    name = class_names.__getitem__
    out = [f"label quality {c['quality']:.3f} (the out-of-sample probability of {name(given)!r})"]
    if c["issue"]:
        out.append("cleanlab's confident learning flags the label")
    for key, who in (("cv", "cross-validated model"), ("lm", "label model"),
                     ("end", "round's end model")):
        pred, prob = int(c[f"{key}_pred"]), c[f"{key}_prob"]
        if pred >= 0 and pred != given and prob >= confident:
            out.append(f"{who} says {name(pred)!r} with probability {prob:.2f}")
    return out


def entry(row: np.ndarray, class_names: list[str]) -> dict:
    """One ranked row as served: the given label and the suggested class by name (the class of
    the more confident of the two models independent of the label), its quality score, whether
    confident learning flags it, and :func:`reasons`."""
    c = dict(zip(COLUMNS, row.tolist(), strict=True))
    lm_wins = c["lm_pred"] >= 0 and c["lm_prob"] > c["cv_prob"]
    suggested = int(c["lm_pred"] if lm_wins else c["cv_pred"])
    return {"label": class_names[int(c["given"])], "suggested": class_names[suggested],
            "label_quality": round(float(c["quality"]), 6), "issue": bool(c["issue"]),
            "reasons": reasons(row, class_names)}
