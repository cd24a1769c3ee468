"""Human-label consensus over the append-only annotation log."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["consensus"]


def consensus(
    events: Iterable[tuple[int, str, int]], n_items: int, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Majority label per item from ``(item_index, annotator, label)`` events in log order.

    An annotator's latest label on an item replaces their earlier ones (a correction is a new
    event). Ties go to the lowest class index.

    Returns
    -------
    labels : (n_items,) int64, -1 where no human label exists
    agreement : (n_items,) float32, share of annotators agreeing with the consensus (0 if none)
    n_annotators : (n_items,) int32
    """
    latest: dict[tuple[int, str], int] = {}
    for idx, annotator, label in events:
        latest[(idx, annotator)] = label
    counts = np.zeros((n_items, n_classes), dtype=np.int32)
    for (idx, _), label in latest.items():
        counts[idx, label] += 1
    n_ann = counts.sum(axis=1).astype(np.int32)
    labels = np.where(n_ann > 0, counts.argmax(axis=1), -1).astype(np.int64)
    agreement = np.divide(
        counts.max(axis=1), n_ann, out=np.zeros(n_items, dtype=np.float32), where=n_ann > 0
    ).astype(np.float32)
    return labels, agreement, n_ann
