"""The column view of pool items that LFs, featurizers and models read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pandas as pd

__all__ = ["items_frame"]


class _ItemLike(Protocol):
    id: str
    text: str | None
    features: dict[str, float]
    meta: dict[str, Any]
    votes: tuple[int, ...] | None


RESERVED = ("id", "text", "weak_labels")


def items_frame(items: Sequence[_ItemLike]) -> pd.DataFrame:
    """One row per item: ``id``, ``text``, one column per feature, one per metadata key (unless
    the name is taken), and ``weak_labels`` (tuple of file votes, or None).

    Parameters
    ----------
    items : sequence of n items (anything with id, text, features, meta, votes)

    Returns
    -------
    pandas.DataFrame with n rows, in the order given.
    """
    cols: dict[str, list[Any]] = {
        "id": [it.id for it in items],
        "text": [it.text for it in items],
        "weak_labels": [it.votes for it in items],
    }
    feature_names = sorted({k for it in items for k in it.features})
    for name in feature_names:
        cols[name] = [float(it.features.get(name, float("nan"))) for it in items]
    meta_names = sorted({k for it in items for k in it.meta} - set(cols))
    for name in meta_names:
        cols[name] = [it.meta.get(name) for it in items]
    frame = pd.DataFrame(cols)
    frame.attrs["feature_columns"] = feature_names
    return frame
