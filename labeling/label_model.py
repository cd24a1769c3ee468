"""The label model: Snorkel's ``LabelModel``, with majority vote as baseline and fallback.

Scoring follows WRENCH: items that no LF covers get uniform probabilities, and ``predict`` breaks
ties with Snorkel's deterministic row-hash rule (:func:`labeling.ties.predict`).
"""

from __future__ import annotations

import logging

import numpy as np

from labeling.errors import InvalidInput, NotFittedError
from labeling.ties import predict

__all__ = ["LabelModel", "majority_proba", "KINDS"]

KINDS = ("auto", "snorkel", "majority")
CHUNK = 100_000


def _check_votes(votes: np.ndarray, n_classes: int, name: str = "votes") -> np.ndarray:
    votes = np.asarray(votes)
    if votes.ndim != 2:
        raise InvalidInput(f"{name} must be a 2-d (items, LFs) array, got shape {votes.shape}")
    if votes.size and (votes.min() < -1 or votes.max() >= n_classes):
        raise InvalidInput(f"{name} must hold -1..{n_classes - 1}, got {votes.min()}..{votes.max()}")
    return votes


def majority_proba(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, K) float32: share of each class among the non-abstaining votes; ties split evenly
    (max classes share the mass); rows with no vote are uniform."""
    out = np.empty((len(votes), n_classes), dtype=np.float32)
    for start in range(0, len(votes), CHUNK):
        block = votes[start : start + CHUNK]
        counts = np.stack([(block == k).sum(axis=1) for k in range(n_classes)], axis=1)
        top = counts == counts.max(axis=1, keepdims=True)
        out[start : start + CHUNK] = top / top.sum(axis=1, keepdims=True)
    return out


class LabelModel:
    """Turns LF votes into per-item class probabilities.

    Parameters
    ----------
    n_classes : number of classes K
    seed : seed of Snorkel's training (deterministic for a given seed)
    epochs, lr : Snorkel training settings
    min_lfs : below this many LFs, majority vote is used
    kind : "auto" (Snorkel unless too few LFs or it loses to majority vote on the evaluation
        votes), "snorkel" or "majority"
    """

    def __init__(self, n_classes: int, *, seed: int = 0, epochs: int = 500, lr: float = 0.01,
                 min_lfs: int = 3, kind: str = "auto") -> None:
        self.n_classes, self.seed, self.epochs, self.lr = n_classes, seed, epochs, lr
        self.min_lfs, self.kind = min_lfs, kind

    def fit(self, votes: np.ndarray, *, eval_votes: np.ndarray | None = None,
            eval_labels: np.ndarray | None = None) -> LabelModel:
        if self.kind not in KINDS:
            raise InvalidInput(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        if self.n_classes < 2:
            raise InvalidInput(f"n_classes must be >= 2, got {self.n_classes}")
        votes = _check_votes(votes, self.n_classes)
        m = votes.shape[1]
        self.n_lfs_ = m
        self.eval_accuracy_: dict[str, float] | None = None
        self._snorkel = None
        if self.kind == "majority":
            self.kind_, self.reason_ = "majority", "majority vote was asked for"
            return self
        if self.kind == "auto" and m < self.min_lfs:
            self.kind_, self.reason_ = "majority", f"{m} LF(s) < {self.min_lfs}: majority vote"
            return self
        covered = (votes >= 0).any(axis=1)
        if covered.sum() < 2:
            self.kind_, self.reason_ = "majority", "fewer than 2 covered items: majority vote"
            return self
        self._snorkel = self._fit_snorkel(votes[covered])
        self.kind_, self.reason_ = "snorkel", "Snorkel LabelModel"
        if self.kind == "auto" and eval_votes is not None and eval_labels is not None and len(eval_labels):
            eval_votes = _check_votes(eval_votes, self.n_classes, "eval_votes")
            y = np.asarray(eval_labels)
            acc = {
                "snorkel": float((predict(self.predict_proba(eval_votes)) == y).mean()),
                "majority": float((predict(majority_proba(eval_votes, self.n_classes)) == y).mean()),
            }
            self.eval_accuracy_ = acc
            if acc["snorkel"] < acc["majority"]:
                self._snorkel = None
                self.kind_ = "majority"
                self.reason_ = (f"Snorkel scored {acc['snorkel']:.3f} < majority vote "
                                f"{acc['majority']:.3f} on {len(y)} evaluation items")
        return self

    def _fit_snorkel(self, votes: np.ndarray):
        from snorkel.labeling.model import LabelModel as SnorkelLabelModel

        logging.getLogger("snorkel").setLevel(logging.WARNING)
        model = SnorkelLabelModel(cardinality=self.n_classes, verbose=False, device="cpu")
        model.fit(votes.astype(np.int64), n_epochs=self.epochs, lr=self.lr, seed=self.seed,
                  log_freq=self.epochs + 1, progress_bar=False)
        return model

    def _fitted(self) -> None:
        if not hasattr(self, "kind_"):
            raise NotFittedError("LabelModel.fit must be called before predicting")

    def coverage(self, votes: np.ndarray) -> np.ndarray:
        """(n,) bool: items with at least one LF vote."""
        return (np.asarray(votes) >= 0).any(axis=1)

    def predict_proba(self, votes: np.ndarray) -> np.ndarray:
        """(n, K) float32 posteriors; uncovered rows are uniform (the WRENCH rule)."""
        self._fitted()
        votes = _check_votes(votes, self.n_classes)
        if votes.shape[1] != self.n_lfs_:
            raise InvalidInput(f"votes have {votes.shape[1]} LFs, the model was fitted on {self.n_lfs_}")
        if self._snorkel is None:
            return majority_proba(votes, self.n_classes)
        out = np.full((len(votes), self.n_classes), 1.0 / self.n_classes, dtype=np.float32)
        covered = self.coverage(votes)
        idx = np.flatnonzero(covered)
        for start in range(0, len(idx), CHUNK):
            rows = idx[start : start + CHUNK]
            out[rows] = self._snorkel.predict_proba(votes[rows].astype(np.int64))
        return out

    def predict(self, votes: np.ndarray) -> np.ndarray:
        """(n,) int: argmax of ``predict_proba``, ties by Snorkel's row-hash rule."""
        return predict(self.predict_proba(votes))
