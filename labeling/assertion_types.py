"""The values user and consistency assertions take and return (kept apart so both can import them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["AssertionBatch", "Firing"]


@dataclass(frozen=True)
class AssertionBatch:
    """What an assertion sees, for n items and K classes (read-only: never mutate it).

    ``frame`` is the items frame (``id``, ``text``, feature and metadata columns); ``probs`` the
    end model's (n, K) probabilities and ``preds`` its (n,) predicted classes; ``lm_probs`` the
    label model's (n, K) posteriors or None; ``votes`` the (n, m) LF votes (-1 abstains);
    ``human`` the (n,) human labels (-1 = none); ``class_names`` the K class names.
    """

    frame: pd.DataFrame
    probs: np.ndarray
    preds: np.ndarray
    lm_probs: np.ndarray | None
    votes: np.ndarray
    human: np.ndarray
    class_names: tuple[str, ...]

    @property
    def n(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class Firing:
    """What an assertion may return instead of a bare severity array or cluster list, to add weak
    labels: ``severity`` (n,) for item granularity or ``clusters`` for cluster granularity (each a
    sequence of row positions, or a ``(positions, severity)`` pair), and ``weak_labels`` (n,) ints
    in -1..K-1 (-1 abstains)."""

    severity: Any = None
    clusters: Sequence[Any] | None = None
    weak_labels: Any = None
