"""The end model: logistic regression on human labels plus weighted label-model labels.

Defaults: human labels and weak labels each weigh by class, balanced (:func:`training_set`), C
chosen each round by cross-fitting (``labeling.trust``), the project setting ``weak_weight`` (0.5)
weighing weak labels. With C=1 and unweighted classes, as before, the end model on human labels
alone trailed a plain TF-IDF logistic regression with C grid-searched (WRENCH YouTube, 50 random
labels: 0.72 against 0.80; after a batch an uncertainty strategy picked, mostly of one class, 0.62
against 0.89 at 100 labels).

Weak labels come in the proportions of what the LFs cover, not of the pool: COSINE Yelp's one LF
labels 76% of the items it covers positive, of a pool half positive, and the end model learned
that lean and carried it to the items no LF covers, 63% negative (0.37 accurate there). Balanced,
with the weak weight, C and blend cross-fitted as every round does, the served model gained on 2
seeds at 50, 100 and 200 random labels: Yelp 0 to 11 points (0.80 to 0.87 against 0.72 to 0.84),
WRENCH SMS 2 to 4 (0.91 to 0.97 against 0.87 to 0.94), YouTube -0.4 to +4.4. Before any human
label it costs where a class is rare (SMS, 13% spam: 0.74 against 0.82; the label model 0.57)
and gains elsewhere (Yelp 0.71 against 0.66, ChemProt 0.52 against 0.48, AG News 0.73 against
0.69).

Solver: Newton-CG up to :data:`NEWTON_MAX_ROWS` training rows, L-BFGS beyond. The cross-fitted
fits of a round have the used hashed columns times the classes as weights (ChemProt: about 78k x
10) and a few thousand rows; L-BFGS spent most of its time updating its own history over those
weights and took 27 to 59 iterations, Newton-CG 6 to 9 iterations of Hessian-vector products, 3
to 7 times faster, to the same optimum (test predictions identical on ChemProt, 200 labels and
2,000 weak rows, C=1 and 100). On 200k rows of word n-grams (a 1M-item pool's weak rows) it
was the other way: Newton-CG about twice L-BFGS's time.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.utils.class_weight import compute_sample_weight
from threadpoolctl import threadpool_limits

from labeling.errors import InvalidInput, NotFittedError

__all__ = ["C_DEFAULT", "MAX_WEAK_ROWS", "WEAK_WEIGHT", "EndModel", "training_set"]

WEAK_WEIGHT = 0.5  # weight of a weak label, times the label model's confidence
MAX_WEAK_ROWS = 200_000  # weak rows a linear model learns from; a larger pool is sampled
C_DEFAULT = 1.0
NEWTON_MAX_ROWS = 50_000  # larger fits use L-BFGS: Newton-CG's Hessian products pass over every row
TIE_TOL = 1e-6  # label-model classes closer than this tie: no weak label


def training_set(
    n: int, human_labels: Mapping[int, int] | np.ndarray, lm_probs: np.ndarray | None,
    lm_covered: np.ndarray | None, *, weak_weight: float = WEAK_WEIGHT,
    max_weak: int = MAX_WEAK_ROWS, seed: int = 0, balance: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, labels and weights to train the end model on.

    Human-labeled rows get weight 1, or with ``balance`` their class's balanced weight (n / (k x
    the class's count), over the k classes among them: each class weighs alike in all); every other
    row the LFs cover gets the label model's argmax with weight ``weak_weight`` x its probability,
    times, with ``balance``, its class's balanced weight among the weak rows. Left out: uncovered
    unlabeled rows, and rows where the label model's top classes tie (within 1e-6), whose argmax
    would be an arbitrary class (with majority vote on WRENCH YouTube, 248 of 1506 covered rows;
    dropping them rather than labeling them class 0 lifts the end model by about 7 points).

    Parameters
    ----------
    n : number of pool rows
    human_labels : (n,) int array, -1 = no human label; or a {row: label} mapping
    lm_probs : (n, K) label-model probabilities, or None (human labels only)
    lm_covered : (n,) bool, rows with at least one LF vote; None = every row
    weak_weight : >= 0; 0 leaves weak labels out
    balance : weigh human labels, and weak labels apart, by class, balanced (the default)
    max_weak : at most this many weak rows, drawn uniformly (with ``seed``) when more qualify: past
        a few hundred thousand, more weak rows add training time, not accuracy, to a linear model

    Returns
    -------
    indices (t,) int64, y (t,) int64, weights (t,) float64: humans first, then weak rows.
    """
    if isinstance(human_labels, Mapping):
        human = np.full(n, -1, dtype=np.int64)
        rows = np.fromiter(human_labels.keys(), dtype=np.int64, count=len(human_labels))
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise InvalidInput(f"human_labels rows must be in 0..{n - 1}, "
                               f"got {rows.min()}..{rows.max()}")
        human[rows] = np.fromiter(human_labels.values(), dtype=np.int64, count=len(human_labels))
    else:
        human = np.asarray(human_labels)
    if human.shape != (n,) or (n and human.dtype.kind not in "iu"):
        raise InvalidInput(f"human_labels must be ({n},) ints (-1 = none), got shape {human.shape} "
                           f"dtype {human.dtype}")
    if not weak_weight >= 0:
        raise InvalidInput(f"weak_weight must be >= 0, got {weak_weight!r}")
    labeled = human >= 0
    idx, y = [np.flatnonzero(labeled)], [human[labeled]]
    w = [compute_sample_weight("balanced", y[0]) if balance and labeled.any()
         else np.ones(int(labeled.sum()))]
    if lm_probs is not None and weak_weight > 0:
        lm_probs = np.asarray(lm_probs)
        if lm_probs.ndim != 2 or len(lm_probs) != n:
            raise InvalidInput(f"lm_probs must be ({n}, K), got {lm_probs.shape}")
        covered = (np.ones(n, dtype=bool) if lm_covered is None
                   else np.asarray(lm_covered, dtype=bool))
        if covered.shape != (n,):
            raise InvalidInput(f"lm_covered must be ({n},) bool, got {covered.shape}")
        top2 = np.sort(lm_probs, axis=1)[:, -2:] if lm_probs.shape[1] > 1 else None
        decided = covered if top2 is None else covered & (top2[:, 1] - top2[:, 0] >= TIE_TOL)
        rows = np.flatnonzero(~labeled & decided)
        if len(rows) > max_weak:
            rows = np.sort(np.random.default_rng(seed).choice(rows, max_weak, replace=False))
        idx.append(rows)
        weak_y = lm_probs[rows].argmax(axis=1)
        y.append(weak_y)
        w.append(weak_weight * lm_probs[rows].max(axis=1)
                 * (compute_sample_weight("balanced", weak_y) if balance and len(rows) else 1.0))
    return (np.concatenate(idx).astype(np.int64), np.concatenate(y).astype(np.int64),
            np.concatenate(w).astype(np.float64))


class EndModel:
    """Multinomial logistic regression whose ``predict_proba`` always has all K class columns.

    Parameters
    ----------
    n_classes : K
    C : inverse L2 regularisation strength
    seed : random_state of the solver
    max_iter : solver iterations
    class_weight : "balanced" (weights inversely proportional to the class counts in ``y``,
        times any sample weights) or None

    Attributes
    ----------
    classes_seen_ : (k,) the classes present in the training labels
    model_ : the fitted LogisticRegression, or None when a single class was seen (then every item
        gets probability 1 on that class: there is nothing to discriminate)
    """

    def __init__(self, n_classes: int, *, C: float = C_DEFAULT, seed: int = 0,
                 max_iter: int = 1000, class_weight: str | None = None) -> None:
        self.n_classes, self.C, self.seed, self.max_iter = n_classes, C, seed, max_iter
        self.class_weight = class_weight

    def fit(self, X, y: np.ndarray, sample_weight: np.ndarray | None = None) -> EndModel:
        """Train on X (t, d) dense or sparse, y (t,) ints in 0..K-1, sample_weight (t,) >= 0."""
        if not isinstance(self.n_classes, int | np.integer) or self.n_classes < 2:
            raise InvalidInput(f"n_classes must be an int >= 2, got {self.n_classes!r}")
        if not self.C > 0:
            raise InvalidInput(f"C must be > 0, got {self.C!r}")
        if self.class_weight not in ("balanced", None):
            raise InvalidInput(f"class_weight must be 'balanced' or None, got {self.class_weight!r}")
        y = np.asarray(y)
        if getattr(X, "ndim", 0) != 2 or X.shape[0] != len(y) or len(y) == 0:
            raise InvalidInput(f"X must be (t, d) and y (t,) with t > 0; got X "
                               f"{getattr(X, 'shape', None)} and y {y.shape}")
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= self.n_classes:
            raise InvalidInput(f"y must hold ints in 0..{self.n_classes - 1}, got {y.dtype} "
                               f"{y.min()}..{y.max()}")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != y.shape or not (sample_weight >= 0).all():
                raise InvalidInput(f"sample_weight must be ({len(y)},) and >= 0, got shape "
                                   f"{sample_weight.shape}")
        self.classes_seen_ = np.unique(y)
        self.n_features_in_ = X.shape[1]
        if len(self.classes_seen_) == 1:
            self.model_ = None
            return self
        solver = "newton-cg" if X.shape[0] <= NEWTON_MAX_ROWS else "lbfgs"
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed,
                                         class_weight=self.class_weight, solver=solver)
        # a chain of small BLAS calls: threaded BLAS only adds waits (one thread fitted 3,000 x
        # 100k sparse rows six times faster here than the default)
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(X, y, sample_weight)

    def _fit(self, X, y: np.ndarray, sample_weight: np.ndarray | None) -> EndModel:
        if not sp.issparse(X):
            self.model_.fit(X, y, sample_weight=sample_weight)
            return self
        # Hashed text features are mostly empty columns (2^19 buckets, a few thousand used). A
        # column no training row touches keeps a zero weight under L2 (its gradient is zero from
        # the zero start), so fitting on the used columns alone reaches the same solution, many
        # times faster; the weights are then laid back out at full width.
        X = sp.csr_matrix(X)
        used = np.flatnonzero(np.bincount(X.indices, minlength=X.shape[1]))
        self.model_.fit(X[:, used], y, sample_weight=sample_weight)
        coef = np.zeros((self.model_.coef_.shape[0], X.shape[1]), dtype=self.model_.coef_.dtype)
        coef[:, used] = self.model_.coef_
        self.model_.coef_, self.model_.n_features_in_ = coef, X.shape[1]
        return self

    def predict_proba(self, X) -> np.ndarray:
        """X (n, d) -> (n, K) float32, columns in class order; classes absent in training get 0."""
        if not hasattr(self, "classes_seen_"):
            raise NotFittedError("EndModel.fit must be called before predict_proba")
        if getattr(X, "ndim", 0) != 2 or X.shape[1] != self.n_features_in_:
            raise InvalidInput(f"X must be (n, {self.n_features_in_}), "
                               f"got {getattr(X, 'shape', None)}")
        out = np.zeros((X.shape[0], self.n_classes), dtype=np.float32)
        if self.model_ is None:
            out[:, self.classes_seen_[0]] = 1.0
        else:
            out[:, self.model_.classes_] = self.model_.predict_proba(X)
        return out
