"""Human-label consensus over the append-only annotation log.

An item's label is, in this order: the latest reviewer decision on it (:func:`adjudicate`), else
a vote of each annotator's latest answer, weighted by the annotators' quality estimates when there
are any (:func:`consensus`, :func:`quality_weights`). A correction is a new event that replaces the
annotator's earlier answer; nothing in the log is overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["adjudicate", "consensus", "quality_weights"]


def consensus(
    events: Iterable[tuple[int, str, int]], n_items: int, n_classes: int, *,
    weights: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Agreed label per item from ``(item_index, annotator, label)`` events in log order.

    An annotator's latest label on an item replaces their earlier ones (a correction is a new
    event); a negative label withdraws their answer (a retraction, or a skip after a label). The
    agreed label is the class with the largest vote: each annotator's vote counts
    ``weights[annotator]`` (the median weight for an annotator not in it; 1 for everyone without
    ``weights``).
    When two or more classes tie for the largest vote (one annotator of two says each, with equal
    weights) there is no agreed label: the item counts as unlabeled for training and export falls
    back to a model.

    Returns
    -------
    labels : (n_items,) int64, -1 where no human label exists or the vote ties
    agreement : (n_items,) float32, share of annotators giving the most-answered class (0 if none);
        unweighted, so it reads the same with or without quality estimates
    n_annotators : (n_items,) int32
    """
    default = float(np.median(list(weights.values()))) if weights else 1.0
    latest: dict[tuple[int, str], int] = {}
    for idx, annotator, label in events:
        if label < 0:
            latest.pop((idx, annotator), None)
        else:
            latest[(idx, annotator)] = label
    counts = np.zeros((n_items, n_classes), dtype=np.int32)
    votes = np.zeros((n_items, n_classes), dtype=np.float64)
    for (idx, annotator), label in latest.items():
        counts[idx, label] += 1
        votes[idx, label] += float(weights.get(annotator, default)) if weights else 1.0
    n_ann = counts.sum(axis=1).astype(np.int32)
    top = counts.max(axis=1)
    best = votes.max(axis=1)
    agreed = (n_ann > 0) & (np.isclose(votes, best[:, None], rtol=1e-9, atol=1e-12).sum(axis=1) == 1)
    labels = np.where(agreed, votes.argmax(axis=1), -1).astype(np.int64)
    agreement = np.divide(
        top, n_ann, out=np.zeros(n_items, dtype=np.float32), where=n_ann > 0
    ).astype(np.float32)
    return labels, agreement, n_ann


def adjudicate(
    labels: np.ndarray, reviews: Iterable[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Reviewer decisions over the vote: ``reviews`` are ``(item_index, label)`` in log order and
    the latest decision on an item is its label.

    Parameters
    ----------
    labels : (n,) int, the vote's labels (-1 = none)
    reviews : (item_index, label) pairs, log order

    Returns
    -------
    labels : (n,) int64, a copy with the decisions in
    adjudicated : (n,) bool, items with a decision
    """
    out = np.array(labels, dtype=np.int64, copy=True)
    done = np.zeros(len(out), dtype=bool)
    for idx, label in reviews:  # later decisions overwrite earlier ones
        out[idx] = label
        done[idx] = True
    return out, done


def quality_weights(quality: Mapping[str, float | None]) -> dict[str, float] | None:
    """Vote weights from per-annotator quality estimates (CROWDLAB's annotator quality, in
    [0, 1]): an annotator's estimate, or the median of the others' for one without; None (equal
    weights) when no annotator has one."""
    known = {a: float(q) for a, q in quality.items() if q is not None and np.isfinite(q)}
    if not known:
        return None
    fill = float(np.median(list(known.values())))
    return {a: max(known.get(a, fill), 1e-6) for a in quality}
