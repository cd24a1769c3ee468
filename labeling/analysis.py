"""LF analysis: polarity, coverage, overlaps and conflicts (Snorkel's ``LFAnalysis``), the
empirical accuracy of each LF against human labels, and, as Snorkel's ``lf_summary(Y_dev)``,
against the gold labels a file came with (a dev set: reported, never trained on)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labeling.errors import InvalidInput

__all__ = ["gold_report", "lf_summary"]


def lf_summary(
    votes: np.ndarray, names: Sequence[str], *, labels: np.ndarray | None = None,
    labeled_mask: np.ndarray | None = None, faults: Sequence[int] | None = None,
    gold: np.ndarray | None = None,
) -> list[dict]:
    """One JSON-serialisable dict per LF.

    Parameters
    ----------
    votes : (n, m) int, -1 = abstain
    names : m LF names
    labels : (n,) int human labels, -1 = none
    labeled_mask : (n,) bool, rows whose label counts; None = every row with ``labels >= 0``
    faults : (m,) fault counts (0 when None)
    gold : (n,) int gold labels that came with the data, -1 = none (a dev set)

    Returns
    -------
    m dicts with keys name, polarity (sorted classes voted), coverage, overlaps, conflicts (shares
    of the n rows), emp_accuracy (over labeled rows where the LF votes; None if there are none),
    n_labeled_votes and faults; with ``gold``, also gold_accuracy (over gold-labeled rows where
    the LF votes; None if there are none) and n_gold_votes.
    """
    votes = np.asarray(votes)
    if votes.ndim != 2 or (votes.size and votes.dtype.kind not in "iu"):
        raise InvalidInput(f"votes must be a 2-d int array (items, LFs), got shape {votes.shape} "
                           f"dtype {votes.dtype}")
    n, m = votes.shape
    if len(names) != m:
        raise InvalidInput(f"names must have one name per LF column ({m}), got {len(names)}")
    mask = np.zeros(n, dtype=bool)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise InvalidInput(f"labels must have shape ({n},), got {labels.shape}")
        mask = labels >= 0
        if labeled_mask is not None:
            labeled_mask = np.asarray(labeled_mask, dtype=bool)
            if labeled_mask.shape != (n,):
                raise InvalidInput(f"labeled_mask must have shape ({n},), got {labeled_mask.shape}")
            mask &= labeled_mask
    if faults is not None and len(faults) != m:
        raise InvalidInput(f"faults must have one count per LF ({m}), got {len(faults)}")
    if gold is not None:
        gold = np.asarray(gold)
        if gold.shape != (n,):
            raise InvalidInput(f"gold must have shape ({n},), got {gold.shape}")
    if n and m:
        from snorkel.labeling import LFAnalysis  # here: importing labelloop stays fast

        # float input: the same numbers, and no int->float FutureWarning from scipy inside snorkel
        analysis = LFAnalysis(votes.astype(np.float64))
        polarity = analysis.lf_polarities()
        cov, ovl, con = analysis.lf_coverages(), analysis.lf_overlaps(), analysis.lf_conflicts()
    else:
        polarity, cov, ovl, con = [[] for _ in range(m)], np.zeros(m), np.zeros(m), np.zeros(m)
    rows = []
    for j in range(m):
        fired = mask & (votes[:, j] >= 0)
        rows.append({
            "name": str(names[j]),
            "polarity": sorted(int(p) for p in polarity[j]),
            "coverage": float(cov[j]),
            "overlaps": float(ovl[j]),
            "conflicts": float(con[j]),
            "emp_accuracy": (float((votes[fired, j] == labels[fired]).mean())
                             if fired.any() else None),
            "n_labeled_votes": int(fired.sum()),
            "faults": int(faults[j]) if faults is not None else 0,
        })
        if gold is not None:
            on_gold = (gold >= 0) & (votes[:, j] >= 0)
            rows[-1]["gold_accuracy"] = (float((votes[on_gold, j] == gold[on_gold]).mean())
                                         if on_gold.any() else None)
            rows[-1]["n_gold_votes"] = int(on_gold.sum())
    return rows


def gold_report(votes: np.ndarray, gold: np.ndarray, n_classes: int, *, seed: int = 0) -> dict | None:
    """How the label model does against the gold labels a file came with (a dev set, as
    Snorkel's ``Y_dev``): fitted on every item's votes (never on the gold labels), scored on the
    gold-labeled items; uncovered items count with the model's uniform, tie-broken prediction.

    Returns
    -------
    {"gold": True, "items", "coverage" (share of gold items some LF votes on), "label_model",
    "label_model_accuracy", "majority_accuracy"}, or None without gold labels or LFs.
    """
    from labeling.label_model import LabelModel  # torch and snorkel load only here

    votes, gold = np.asarray(votes), np.asarray(gold)
    has = gold >= 0
    if not has.any() or votes.ndim != 2 or votes.shape[1] == 0:
        return None
    lm = LabelModel(n_classes, seed=seed).fit(votes)
    mv = LabelModel(n_classes, kind="majority").fit(votes)
    dev = votes[has]
    return {
        "gold": True, "items": int(has.sum()),
        "coverage": float((dev >= 0).any(axis=1).mean()),
        "label_model": lm.kind_,
        "label_model_accuracy": float((lm.predict(dev) == gold[has]).mean()),
        "majority_accuracy": float((mv.predict(dev) == gold[has]).mean()),
    }
