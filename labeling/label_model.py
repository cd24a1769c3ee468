"""The label models: Snorkel's ``LabelModel``, majority vote, and :class:`AccuracyLabelModel`, which
learns each LF's accuracy from the human labels in hand.

Snorkel's fit runs on sufficient statistics (:mod:`labeling.snorkel_lean`), so a million items
with fifty LFs fit without Snorkel's dense one-hot copies of the votes.

Scoring follows WRENCH: items that no LF covers get uniform probabilities, and :meth:`predict`
breaks ties with Snorkel's deterministic row-hash rule (:func:`labeling.ties.predict`), the rule
that reproduces WRENCH's majority-vote reference numbers exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from labeling.errors import InvalidInput, NotFittedError
from labeling.ties import predict as _predict

__all__ = ["CHUNK", "KINDS", "AccuracyLabelModel", "LabelModel", "majority_proba"]

KINDS = ("auto", "snorkel", "majority")
CHUNK = 100_000  # rows per prediction block, to bound memory


def _check_votes(votes, n_classes: int, name: str = "votes") -> np.ndarray:
    votes = np.asarray(votes)
    if votes.ndim != 2:
        raise InvalidInput(f"{name} must be a 2-d (items, LFs) int array, got shape {votes.shape}")
    if votes.size and votes.dtype.kind not in "iu":
        raise InvalidInput(f"{name} must hold ints (-1 = abstain), got dtype {votes.dtype}")
    if votes.size and (votes.min() < -1 or votes.max() >= n_classes):
        raise InvalidInput(f"{name} must hold -1..{n_classes - 1}, "
                           f"got {votes.min()}..{votes.max()}")
    return votes


def majority_proba(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority vote as probabilities: each class's votes plus one, over the votes plus K (Laplace's
    rule), so the argmax is the majority (a tie stays a tie) and a row's confidence grows with its
    votes. One vote of two classes is 2/3, not certainty: with probability 1 wherever an LF
    voted, the served model was certain on every covered item and an uncertainty strategy picked
    only items no LF covers (COSINE Yelp, one LF 72% accurate, ``margin``: 46 of 50 picks
    uncovered, where 17% of the pool is; 0.74 on the test split at 100 labels, against 0.84 with
    the rule and 0.81 without LFs).

    Parameters
    ----------
    votes : (n, m) int, -1 = abstain
    n_classes : K

    Returns
    -------
    (n, K) float32: rows with no vote are uniform.
    """
    votes = np.asarray(votes)
    out = np.empty((len(votes), n_classes), dtype=np.float32)
    for start in range(0, len(votes), CHUNK):
        block = votes[start : start + CHUNK]
        counts = np.stack([(block == k).sum(axis=1) for k in range(n_classes)], axis=1)
        out[start : start + CHUNK] = (counts + 1) / (counts.sum(axis=1, keepdims=True) + n_classes)
    return out


@contextmanager
def _global_rngs_kept() -> Iterator[None]:
    """Snorkel's ``fit(seed=...)`` seeds the global ``random``, NumPy and torch generators; put
    them back afterwards so fitting leaves no trace on the caller's randomness."""
    import torch

    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class LabelModel:
    """Turns LF votes into per-item class probabilities.

    Parameters
    ----------
    n_classes : number of classes K (>= 2)
    seed : seed of Snorkel's training; the same seed and votes give the same model
    epochs, lr : Snorkel training settings
    min_lfs : with fewer LFs, ``kind="auto"`` uses majority vote
    kind : "auto" (Snorkel unless there are too few LFs, or it scores below majority vote on the
        evaluation votes given to :meth:`fit`), "snorkel" or "majority"
    fit_on : "covered" (Snorkel learns from the items at least one LF votes on; the default) or
        "all" (every row, as WRENCH fits it)

    Attributes
    ----------
    kind_ : "snorkel" or "majority", the model fitted
    reason_ : a sentence saying why
    eval_accuracy_ : {"snorkel": acc, "majority": acc} on the evaluation votes, or None
    n_lfs_ : m, the number of LF columns fitted on
    """

    def __init__(self, n_classes: int, *, seed: int = 0, epochs: int = 500, lr: float = 0.01,
                 min_lfs: int = 3, kind: str = "auto", fit_on: str = "covered") -> None:
        self.n_classes, self.seed, self.epochs, self.lr = n_classes, seed, epochs, lr
        self.min_lfs, self.kind, self.fit_on = min_lfs, kind, fit_on

    def fit(self, votes: np.ndarray, *, eval_votes: np.ndarray | None = None,
            eval_labels: np.ndarray | None = None) -> LabelModel:
        """Fit on ``votes`` (n, m) int8 (-1 = abstain); ``eval_votes`` (e, m) with ``eval_labels``
        (e,) let ``kind="auto"`` fall back to majority vote when Snorkel does worse on them."""
        if self.kind not in KINDS:
            raise InvalidInput(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        if not isinstance(self.n_classes, int | np.integer) or self.n_classes < 2:
            raise InvalidInput(f"n_classes must be an int >= 2, got {self.n_classes!r}")
        if self.fit_on not in ("covered", "all"):
            raise InvalidInput(f"fit_on must be 'covered' or 'all', got {self.fit_on!r}")
        if self.epochs < 1 or self.lr <= 0:
            raise InvalidInput(f"epochs must be >= 1 and lr > 0, got {self.epochs} and {self.lr}")
        votes = _check_votes(votes, self.n_classes)
        m = votes.shape[1]
        if eval_votes is not None and eval_labels is not None:
            eval_votes = _check_votes(eval_votes, self.n_classes, "eval_votes")
            eval_labels = np.asarray(eval_labels)
            if eval_votes.shape[1] != m or eval_labels.shape != (len(eval_votes),):
                raise InvalidInput(f"eval_votes must be (e, {m}) and eval_labels (e,), got "
                                   f"{eval_votes.shape} and {eval_labels.shape}")
        self.n_lfs_ = m
        self.eval_accuracy_: dict[str, float] | None = None
        self._snorkel = None
        if self.kind == "majority":
            self.kind_, self.reason_ = "majority", "Majority vote was asked for."
            return self
        if self.kind == "auto" and m < self.min_lfs:
            self.kind_ = "majority"
            self.reason_ = f"Majority vote: {m} LF(s) is fewer than min_lfs={self.min_lfs}."
            return self
        if (votes >= 0).any(axis=1).sum() < 2:
            self.kind_, self.reason_ = "majority", "Majority vote: fewer than 2 items have a vote."
            return self
        self._snorkel = self._fit_snorkel(votes)
        self.kind_, self.reason_ = "snorkel", "Snorkel LabelModel."
        if self.kind == "auto" and eval_votes is not None and eval_labels is not None \
                and len(eval_labels):
            acc = {
                "snorkel": float((self.predict(eval_votes) == eval_labels).mean()),
                "majority": float(
                    (_predict(majority_proba(eval_votes, self.n_classes)) == eval_labels).mean()
                ),
            }
            self.eval_accuracy_ = acc
            on = f"on {len(eval_labels)} evaluation items"
            if acc["snorkel"] < acc["majority"]:
                self._snorkel = None
                self.kind_ = "majority"
                self.reason_ = (f"Majority vote: Snorkel scored {acc['snorkel']:.3f} < majority "
                                f"vote {acc['majority']:.3f} {on}.")
            else:
                self.reason_ = (f"Snorkel LabelModel: it scored {acc['snorkel']:.3f} >= majority "
                                f"vote {acc['majority']:.3f} {on}.")
        return self

    def _fit_snorkel(self, votes: np.ndarray):
        from labeling.snorkel_lean import LeanSnorkelLabelModel

        model = LeanSnorkelLabelModel(cardinality=self.n_classes, verbose=False, device="cpu")
        if self.fit_on == "covered":
            # rows no LF votes on carry no evidence about the LFs' accuracies; leaving them out
            # scored better here (YouTube test: 0.856 vs 0.840 with every row, as WRENCH fits it)
            votes = votes[(votes >= 0).any(axis=1)]
        with _global_rngs_kept():
            model.fit(votes.astype(np.int8, copy=False), n_epochs=self.epochs, lr=self.lr, seed=self.seed,
                      log_freq=self.epochs + 1, progress_bar=False)
        return model

    def _checked(self, votes) -> np.ndarray:
        if not hasattr(self, "kind_"):
            raise NotFittedError("LabelModel.fit must be called before predicting")
        votes = _check_votes(votes, self.n_classes)
        if votes.shape[1] != self.n_lfs_:
            raise InvalidInput(f"votes must have {self.n_lfs_} LF columns (as fitted), "
                               f"got {votes.shape[1]}")
        return votes

    def coverage(self, votes: np.ndarray) -> np.ndarray:
        """(n, m) votes -> (n,) bool: the items with at least one LF vote."""
        return (np.asarray(votes) >= 0).any(axis=1)

    def predict_proba(self, votes: np.ndarray) -> np.ndarray:
        """(n, m) votes -> (n, K) float32 posteriors; rows without a vote are uniform 1/K (the
        WRENCH rule); majority vote splits ties evenly. Computed in blocks of :data:`CHUNK` rows."""
        votes = self._checked(votes)
        if self._snorkel is None:
            return majority_proba(votes, self.n_classes)
        out = np.full((len(votes), self.n_classes), 1.0 / self.n_classes, dtype=np.float32)
        idx = np.flatnonzero(self.coverage(votes))
        for start in range(0, len(idx), CHUNK):
            rows = idx[start : start + CHUNK]
            out[rows] = self._snorkel.predict_proba(votes[rows])
        return out

    def predict(self, votes: np.ndarray, *, start: int = 0) -> np.ndarray:
        """(n, m) votes -> (n,) int64 argmax of :meth:`predict_proba`.

        Ties are broken deterministically by Snorkel's ``probs_to_preds(tie_break_policy=
        "random")`` rule: among the tied classes, the one at SHA-1(str(row index)) modulo their
        count. The row index is the position in ``votes`` plus ``start``, so a shard starting at
        row ``start`` of a pool predicts what the whole pool predicts for those rows.
        """
        return _predict(self.predict_proba(votes), start=start)


class AccuracyLabelModel:
    """A label model that learns LF accuracies from human labels (a supervised naive Bayes vote).

    Each LF ``j`` has one accuracy ``a_j``: the chance its vote, when it votes, is the true class;
    its wrong votes spread evenly over the other classes. The posterior of class ``c`` is the class
    prior times, per voting LF, ``a_j`` if it voted ``c`` else ``(1 - a_j) / (K - 1)``. Accuracies
    are estimated on the labeled items with a Beta prior of mean ``prior_accuracy`` and weight
    ``prior_strength`` votes, so an LF seen on few labels keeps the prior; an LF no better than
    chance gets a log-odds near zero: it is in effect dropped. The class prior is the smoothed
    class frequency of the labels. Items with no vote get the class prior.

    Parameters
    ----------
    n_classes : K
    prior_accuracy, prior_strength : the Beta prior on every LF's accuracy

    Attributes
    ----------
    accuracy_ : (m,) float64 fitted accuracies
    votes_seen_ : (m,) int, labeled items each LF voted on
    class_prior_ : (K,) float64
    """

    def __init__(self, n_classes: int, *, prior_accuracy: float = 0.7,
                 prior_strength: float = 4.0) -> None:
        self.n_classes, self.prior_accuracy, self.prior_strength = n_classes, prior_accuracy, prior_strength

    def fit(self, votes: np.ndarray, labels: np.ndarray) -> AccuracyLabelModel:
        """``votes`` (t, m) of the labeled items, ``labels`` (t,) their classes in 0..K-1."""
        if not isinstance(self.n_classes, int | np.integer) or self.n_classes < 2:
            raise InvalidInput(f"n_classes must be an int >= 2, got {self.n_classes!r}")
        if not 0 < self.prior_accuracy < 1 or not self.prior_strength > 0:
            raise InvalidInput("prior_accuracy must be in (0, 1) and prior_strength > 0, got "
                               f"{self.prior_accuracy!r} and {self.prior_strength!r}")
        votes = _check_votes(votes, self.n_classes)
        labels = np.asarray(labels)
        if labels.shape != (len(votes),) or (len(labels) and (labels.dtype.kind not in "iu"
                                                              or labels.min() < 0
                                                              or labels.max() >= self.n_classes)):
            raise InvalidInput(f"labels must be ({len(votes)},) ints in 0..{self.n_classes - 1}")
        voted = votes >= 0
        right = (votes == labels[:, None]) & voted
        a, s = self.prior_accuracy, self.prior_strength
        self.votes_seen_ = voted.sum(axis=0)
        self.accuracy_ = (right.sum(axis=0) + a * s) / (self.votes_seen_ + s)
        counts = np.bincount(labels.astype(np.int64), minlength=self.n_classes)
        self.class_prior_ = (counts + 1.0) / (counts.sum() + self.n_classes)
        self.n_lfs_ = votes.shape[1]
        return self

    def predict_proba(self, votes: np.ndarray) -> np.ndarray:
        """(n, m) votes -> (n, K) float32 posteriors, in blocks of :data:`CHUNK` rows."""
        if not hasattr(self, "accuracy_"):
            raise NotFittedError("AccuracyLabelModel.fit must be called before predict_proba")
        votes = _check_votes(votes, self.n_classes)
        if votes.shape[1] != self.n_lfs_:
            raise InvalidInput(f"votes must have {self.n_lfs_} LF columns (as fitted), "
                               f"got {votes.shape[1]}")
        k = self.n_classes
        acc = np.clip(self.accuracy_, 1e-4, 1 - 1e-4)
        # log-odds of a vote for c against a vote for another class: added to class c's score;
        # the constant log((1 - a) / (K - 1)) every voting LF adds to all classes cancels out
        gain = (np.log(acc) - np.log((1 - acc) / (k - 1))).astype(np.float32)
        base = np.log(self.class_prior_).astype(np.float32)
        out = np.empty((len(votes), k), dtype=np.float32)
        for start in range(0, len(votes), CHUNK):
            block = votes[start : start + CHUNK]
            score = np.tile(base, (len(block), 1))
            for c in range(k):
                score[:, c] += (block == c) @ gain
            score -= score.max(axis=1, keepdims=True)
            np.exp(score, out=score)
            out[start : start + CHUNK] = score / score.sum(axis=1, keepdims=True)
        return out
