"""Human-label consensus over the append-only annotation log."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["consensus"]


def consensus(
    events: Iterable[tuple[int, str, int]], n_items: int, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Agreed label per item from ``(item_index, annotator, label)`` events in log order.

    An annotator's latest label on an item replaces their earlier ones (a correction is a new
    event); a negative label withdraws their answer (a retraction, or a skip after a label). The agreed label is the class most annotators gave; when two or more classes tie for
    most votes (one annotator of two says each, as happens on redundantly labeled items) there is
    no agreed label: the item counts as unlabeled for training and export falls back to a model.

    Returns
    -------
    labels : (n_items,) int64, -1 where no human label exists or the annotators tie
    agreement : (n_items,) float32, share of annotators giving the most-voted class (0 if none)
    n_annotators : (n_items,) int32
    """
    latest: dict[tuple[int, str], int] = {}
    for idx, annotator, label in events:
        if label < 0:
            latest.pop((idx, annotator), None)
        else:
            latest[(idx, annotator)] = label
    counts = np.zeros((n_items, n_classes), dtype=np.int32)
    for (idx, _), label in latest.items():
        counts[idx, label] += 1
    n_ann = counts.sum(axis=1).astype(np.int32)
    top = counts.max(axis=1)
    agreed = (n_ann > 0) & ((counts == top[:, None]).sum(axis=1) == 1)
    labels = np.where(agreed, counts.argmax(axis=1), -1).astype(np.int64)
    agreement = np.divide(
        top, n_ann, out=np.zeros(n_items, dtype=np.float32), where=n_ann > 0
    ).astype(np.float32)
    return labels, agreement, n_ann
