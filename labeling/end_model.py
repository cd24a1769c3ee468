"""The end model: logistic regression on human labels plus weighted label-model labels."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from labeling.errors import InvalidInput, NotFittedError

__all__ = ["EndModel", "training_set"]


def training_set(
    n: int, human_labels: np.ndarray, lm_probs: np.ndarray | None, lm_covered: np.ndarray | None,
    *, weak_weight: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, labels and weights to train on.

    Human-labeled rows get weight 1; other LF-covered rows get the label model's argmax with weight
    ``weak_weight`` x its probability; unlabeled uncovered rows are left out.

    Parameters
    ----------
    human_labels : (n,) int, -1 where no human label exists
    lm_probs : (n, K) or None
    lm_covered : (n,) bool or None
    """
    human = np.asarray(human_labels)
    if human.shape != (n,):
        raise InvalidInput(f"human_labels must have shape ({n},), got {human.shape}")
    labeled = human >= 0
    idx, y, w = [np.flatnonzero(labeled)], [human[labeled]], [np.ones(labeled.sum())]
    if lm_probs is not None and weak_weight > 0:
        weak = ~labeled & (lm_covered if lm_covered is not None else True)
        rows = np.flatnonzero(weak)
        idx.append(rows)
        y.append(lm_probs[rows].argmax(axis=1))
        w.append(weak_weight * lm_probs[rows].max(axis=1))
    return (np.concatenate(idx).astype(np.int64), np.concatenate(y).astype(np.int64),
            np.concatenate(w).astype(np.float64))


class EndModel:
    """Multinomial logistic regression with ``predict_proba`` always over all K classes."""

    def __init__(self, n_classes: int, *, C: float = 1.0, seed: int = 0, max_iter: int = 1000) -> None:
        self.n_classes, self.C, self.seed, self.max_iter = n_classes, C, seed, max_iter

    def fit(self, X, y: np.ndarray, sample_weight: np.ndarray | None = None) -> EndModel:
        y = np.asarray(y)
        if X.shape[0] != len(y) or len(y) == 0:
            raise InvalidInput(f"X has {X.shape[0]} rows and y {len(y)}; need the same, > 0")
        if y.min() < 0 or y.max() >= self.n_classes:
            raise InvalidInput(f"labels must be in 0..{self.n_classes - 1}, got {y.min()}..{y.max()}")
        self.classes_seen_ = np.unique(y)
        if len(self.classes_seen_) == 1:
            self.model_ = None  # one class seen: predict it with certainty
            return self
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
        self.model_.fit(X, y, sample_weight=sample_weight)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(n, K) float32, columns in class order (classes never seen in training get 0)."""
        if not hasattr(self, "classes_seen_"):
            raise NotFittedError("EndModel.fit must be called before predict_proba")
        out = np.zeros((X.shape[0], self.n_classes), dtype=np.float32)
        if self.model_ is None:
            out[:, self.classes_seen_[0]] = 1.0
        else:
            out[:, self.model_.classes_] = self.model_.predict_proba(X)
        return out
