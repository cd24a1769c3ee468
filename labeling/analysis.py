"""LF analysis: coverage, overlaps, conflicts, polarity (Snorkel's LFAnalysis) and empirical
accuracy against human labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from snorkel.labeling import LFAnalysis

__all__ = ["lf_summary"]


def lf_summary(
    votes: np.ndarray, names: Sequence[str], *, labels: np.ndarray | None = None,
    labeled_mask: np.ndarray | None = None, faults: Sequence[int] | None = None,
) -> list[dict]:
    """One JSON-ready dict per LF.

    Parameters
    ----------
    votes : (n, m) int, -1 = abstain
    names : m LF names
    labels : (n,) int human labels (-1 = none); used where ``labeled_mask`` is true
    faults : m fault counts
    """
    votes = np.asarray(votes, dtype=np.int64)
    m = votes.shape[1]
    if len(names) != m:
        raise ValueError(f"{len(names)} names for {m} LF columns")
    if len(votes) == 0:
        rows = [{"polarity": [], "coverage": 0.0, "overlaps": 0.0, "conflicts": 0.0} for _ in range(m)]
    else:
        analysis = LFAnalysis(votes)
        polarity = analysis.lf_polarities()
        cov, ovl, con = (analysis.lf_coverages(), analysis.lf_overlaps(), analysis.lf_conflicts())
        rows = [{"polarity": [int(p) for p in polarity[j]], "coverage": float(cov[j]),
                 "overlaps": float(ovl[j]), "conflicts": float(con[j])} for j in range(m)]
    mask = np.zeros(len(votes), dtype=bool) if labeled_mask is None else np.asarray(labeled_mask, bool)
    for j, row in enumerate(rows):
        row["name"] = names[j]
        fired = mask & (votes[:, j] >= 0)
        row["n_labeled_votes"] = int(fired.sum())
        row["emp_accuracy"] = (
            float((votes[fired, j] == np.asarray(labels)[fired]).mean()) if fired.any() else None
        )
        row["faults"] = int(faults[j]) if faults is not None else 0
    return rows
