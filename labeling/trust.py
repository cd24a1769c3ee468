"""How much to trust the labeling functions, chosen each round from the human labels in hand.

Cross-fitting: the labeled items that are a random sample of the pool (every human label under the
``random`` strategy, else the evaluation slice and the random share of each batch:
:func:`decision_rows`) are split into K folds; each candidate is trained on every other label the
round's model trains on (a strategy's picks included) and scored on the fold, so every random
label scores every candidate once, on a model that never saw it. Chosen in turn, each by
cross-fitted accuracy (ties: the lower log-loss). The two steps that can drop the LFs (which label
model, how much weight its labels get) leave their default (trust the LFs: the project's label
model and weak weight) only when the best beats it clearly, by McNemar's exact test on the labels
the two get right and wrong differently, one-sided at :data:`ALPHA` (:func:`_clear_win`); C and
what is served are chosen as a grid search would, with no default to beat:

1. the label model: the unsupervised ones given (Snorkel, majority vote; they never see a label,
   so they are scored on the labels directly) and :class:`~labeling.label_model.AccuracyLabelModel`,
   which learns LF accuracies from the fold's labels; scored on the labeled items some LF covers;
2. the end model's ``C`` (:data:`C_GRID`, 1 to 1000), on human labels alone, with no default to
   beat, as a grid search would choose it. Too few random labels (an active-learning strategy's
   picks, no evaluation slice) and C is chosen on every human label: how much to regularise does
   not hinge on the labels being a sample of the pool as trusting the LFs does, and C=1 held on
   picked labels under-fits (WRENCH YouTube, ``margin`` without LFs: 0.62 at 100 labels against
   0.89 for a TF-IDF logistic regression with C grid-searched);
3. the weak weight, 0 included, and the end model's C with weak rows (:data:`WEAK_C`): the end
   model trained on the fold's human labels plus weak labels of up to :data:`CV_WEAK_ROWS`
   unlabeled covered items;
4. what the round serves on covered items: the end model, the label model, or a blend of the two
   (items no LF covers always get the end model). An even blend as the default to beat held
   where the end model had outgrown the label model: each fold's end model trains on 4/5 of the
   labels, which under-rates it while accuracy still climbs steeply with labels, and the label
   model's share does not change with them (COSINE Yelp, 100 random labels: the end model alone
   cross-fitted at 0.72 against 0.70 for the even blend, no clear win; on the test split 0.78
   against 0.71). Chosen outright, on 2 seeds at 50, 100 and 200 random labels of WRENCH
   YouTube, ChemProt and SemEval and COSINE IMDB and Yelp, the served model gained up to 7 points
   and lost at most 2.4.

So the served model is never worse, on the cross-fitted labels, than the best of its parts.
With fewer than :data:`MIN_LABELS` human labels the defaults hold.

Before there are labels to choose from, the blend is even (:data:`DEFAULT_BLEND`): with nothing to
tell the end model from the label model, the mixture is the safe choice, since log-loss is convex
and so the mixture's is never above the mean of its parts' on any item. Serving the end model
alone, as before, lost to the label model where LFs are precise and many classes make the end model
diffuse (WRENCH, 0 labels, measured before weak labels weighed by class: ChemProt 0.391 against the
label model's 0.473, SemEval 0.690 against 0.813; the even blend 0.484 and 0.828), while on YouTube
the blend keeps most of the end model's lead (0.916; end model 0.932, label model 0.856). Pure:
arrays in, a choice out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.stats import binomtest
from sklearn.model_selection import KFold, StratifiedKFold

from labeling.end_model import EndModel, training_set
from labeling.errors import InvalidInput
from labeling.label_model import AccuracyLabelModel

__all__ = ["BLENDS", "C_GRID", "LEARNED", "MIN_LABELS", "SAMPLE_GOAL", "WEAK_C", "WEAK_GRID", "Trust",
           "choose_trust", "decision_rows", "queue_share", "served_probs"]

MIN_LABELS = 10  # fewer human labels: the defaults below, no cross-fitting
FOLDS = 5
CV_WEAK_ROWS = 2000  # weak rows in each cross-fitted fit; the final fit keeps their total weight
C_GRID = (1.0, 10.0, 100.0, 1000.0)
WEAK_GRID = (0.0, 0.03, 0.1, 0.3, 1.0)
WEAK_C = (1.0, 100.0)  # C of the end model with weak rows (DEFAULT_C first)
BLENDS = (1.0, 0.75, 0.5, 0.25, 0.0)  # end model's share of the served probabilities
LEARNED = "learned"  # name of the label model that learns LF accuracies from human labels
DEFAULT_C, DEFAULT_WEAK = 1.0, 0.5  # with fewer than MIN_LABELS human labels
DEFAULT_BLEND = 0.5  # with LFs and too few labels: an even blend of end and label model
SERVE_PICKED_DEFAULT = 1.0  # the blend's default on an active-learning strategy's picks alone
# a candidate replaces the default only on a win McNemar's exact test finds clear at this level:
# at 0.05 the LFs kept their weight where they cost 2 to 4 points, for lack of labels to show it
# (COSINE IMDB, ``random``, 300 labels: 0.776 against 0.796 without LFs; Yelp, 100: 0.748
# against 0.789); at 0.2 a switch still needs 3 items to 0, 4 to 1, 6 to 2 or 7 to 3
ALPHA = 0.2
SAMPLE_GOAL, EARLY_SHARE = 100, 0.5  # half the queue is random until this many labels are


@dataclass
class Trust:
    """The choice of one round. ``weak_weight`` is per weak row at :data:`CV_WEAK_ROWS` rows;
    ``scores`` holds the cross-fitted accuracy of every candidate, per step."""

    label_model: str | None
    C: float
    weak_weight: float
    blend: float
    n_labels: int
    reason: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"label_model": self.label_model, "C": self.C, "weak_weight": self.weak_weight,
                "blend": self.blend, "n_labels": self.n_labels, "reason": self.reason,
                "cross_fitted_accuracy": self.scores}


def _folds(y: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    k = int(min(FOLDS, max(2, len(y) // 5)))
    counts = np.bincount(y)
    counts = counts[counts > 0]
    splitter = (StratifiedKFold(k, shuffle=True, random_state=seed) if counts.min() >= k
                else KFold(k, shuffle=True, random_state=seed))
    return list(splitter.split(np.zeros(len(y)), y))


def _score(y: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """(accuracy, -log-loss): larger is better, compared in that order."""
    if len(y) == 0:
        return 0.0, 0.0
    p = np.clip(probs[np.arange(len(y)), y], 1e-6, 1.0)
    return float(np.mean(probs.argmax(axis=1) == y)), float(np.mean(np.log(p)))


def _clear_win(better: np.ndarray, worse: np.ndarray) -> bool:
    """Whether ``better`` (n,) bool, right or wrong per item, beats ``worse`` clearly: McNemar's
    exact test, one-sided at :data:`ALPHA`, on the items exactly one of them gets right. A
    handful of labels that two candidates disagree on decides nothing: on WRENCH SemEval with 50
    random labels majority vote got one item more right than Snorkel and was chosen under the
    earlier rule (one standard error), while Snorkel is 4 points better on the test split."""
    wins, losses = int((better & ~worse).sum()), int((worse & ~better).sum())
    if wins <= losses:
        return False
    return binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue < ALPHA


def _best(scored: Mapping, y: np.ndarray, default) -> tuple[object, dict[str, float]]:
    """The candidate with the best score if it beats ``default`` clearly (:func:`_clear_win`),
    else ``default``; and every candidate's accuracy.

    Labels an active-learning strategy picked are the items the current model finds hard, not a
    sample of the pool: on them every candidate may score alike (e.g. all predict the class most
    hard items have), and a choice on noise could throw away LFs that help on the rest of the
    pool. The default (trust the LFs) stands until the labels say otherwise."""
    results = {key: _score(y, probs) for key, probs in scored.items()}
    best = max(results, key=lambda key: (round(results[key][0], 9), results[key][1]))
    if best != default and default in scored and not _clear_win(
            scored[best].argmax(axis=1) == y, scored[default].argmax(axis=1) == y):
        best = default
    return best, {str(key): round(acc, 4) for key, (acc, _) in results.items()}


def served_probs(end: np.ndarray, lm: np.ndarray | None, covered: np.ndarray | None,
                 blend: float) -> np.ndarray:
    """``blend`` x end model + (1 - blend) x label model on covered rows; the end model elsewhere."""
    if lm is None or blend >= 1.0:
        return end
    out = np.array(end, dtype=np.float32, copy=True)
    rows = np.flatnonzero(covered) if covered is not None else np.arange(len(end))
    out[rows] = blend * end[rows] + (1.0 - blend) * lm[rows]
    return out


def decision_rows(human: np.ndarray, sampled: np.ndarray, strategy: str) -> np.ndarray:
    """(n,) bool: the labels that may decide how much to trust the LFs. Under ``random`` every
    label is a random sample of the pool. Under any other strategy the picked labels are the items
    the model found hard, where LFs are wrong far more often than on the pool, and cross-fitting on
    them throws away LFs that help: on WRENCH YouTube with ``entropy`` it chose weak weight 0 on
    100 picked labels (cross-fitted 0.90 against 0.75 with LFs) and served 0.748 on the test
    split, against 0.95 trusting them. There only ``sampled`` labels decide: the evaluation slice
    and the random share of each batch (``explore_fraction``), both random samples of the pool."""
    labeled = np.asarray(human) >= 0
    return labeled if strategy == "random" else labeled & np.asarray(sampled, dtype=bool)


def queue_share(n_sampled: int, share: float) -> float:
    """The share of the queue drawn at random under an active-learning strategy with LFs: at least
    :data:`EARLY_SHARE` while fewer than :data:`SAMPLE_GOAL` labels are a random sample, then
    ``share`` (the ``explore_fraction`` setting; 0 turns the share off). A tenth from the start
    left 10 to 25 random labels at 100 to 250 labels, too few for McNemar's test to tell LFs
    that hurt from LFs that help, and the LFs kept their weight where they hurt (COSINE Yelp,
    ``margin``: 16 points below the loop without LFs at 150 labels)."""
    return share if share <= 0 or n_sampled >= SAMPLE_GOAL else max(share, EARLY_SHARE)


def choose_trust(
    X, human: np.ndarray, n_classes: int, *, votes: np.ndarray | None = None,
    label_models: Mapping[str, np.ndarray] | None = None, covered: np.ndarray | None = None,
    seed: int = 0, learned: bool = True, default_weak: float = DEFAULT_WEAK,
    decide_on: np.ndarray | None = None, train_on: np.ndarray | None = None,
) -> Trust:
    """Choose the label model, ``C``, weak weight and blend from the human labels.

    Parameters
    ----------
    X : (n, d) features of the pool
    human : (n,) int, -1 = no human label (every label counts, the evaluation slice's too)
    n_classes : K
    votes : (n, m) LF votes, for the learned label model; None = no LFs
    label_models : {name: (n, K) probabilities} of unsupervised label models, the default first
    covered : (n,) bool, items some LF votes on
    seed : of the folds and the weak-row sample
    learned : offer :class:`AccuracyLabelModel` as a candidate
    default_weak : the weak weight while there are fewer than :data:`MIN_LABELS` labels (the
        project's ``weak_weight`` setting)
    decide_on : (n,) bool, the labeled items whose labels may decide (None = all): a random sample
        of the pool, not items an active-learning strategy picked (see :func:`decision_rows`)
    train_on : (n,) bool, the labeled items the round's end model trains on (None = all); the
        cross-fitted fits train on them too, less each fold's held-out labels
    """
    human = np.asarray(human)
    n = len(human)
    label_models = dict(label_models or {})
    weak = bool(label_models) or (learned and votes is not None and votes.shape[1] > 0)
    if covered is None:
        covered = np.zeros(n, bool) if votes is None else (np.asarray(votes) >= 0).any(axis=1)
    if covered.shape != (n,) or X.shape[0] != n:
        raise InvalidInput(f"X, human and covered must have {n} rows")
    rows = np.flatnonzero((human >= 0) if decide_on is None else (human >= 0) & decide_on)
    default_lm = next(iter(label_models), LEARNED if weak else None)
    train_on = (human >= 0) if train_on is None else (human >= 0) & np.asarray(train_on, bool)
    ctx = _Context(X, human, n_classes, votes, label_models, covered, seed, train_on)
    if len(rows) < MIN_LABELS or len(np.unique(human[rows])) < 2:
        trust = Trust(default_lm, DEFAULT_C, default_weak if weak else 0.0,
                      DEFAULT_BLEND if weak else 1.0, len(rows),
                      f"defaults: fewer than {MIN_LABELS} human labels of two classes or more")
        if weak:  # C with the weak rows: _serve_on_all
            return _serve_on_all(ctx, trust)
        labeled = np.flatnonzero(human >= 0)
        if len(labeled) >= MIN_LABELS and len(np.unique(human[labeled])) >= 2:
            C, c_scores, _ = _choose_C(ctx, labeled, ctx.folds(labeled))
            trust = replace(trust, C=C, scores={"C_all_labels": c_scores},
                            reason=f"{trust.reason} that are a random sample; C cross-fitted on "
                                   f"all {len(labeled)} human labels")
        return trust
    y = human[rows]
    folds = ctx.folds(rows)
    scores: dict[str, dict[str, float]] = {}

    # 1. label model, scored on labeled items some LF covers
    lm_oof: dict[str, np.ndarray] = {name: np.asarray(p)[rows] for name, p in label_models.items()}
    if weak and learned and votes is not None and votes.shape[1]:
        lm_oof[LEARNED] = ctx.lm_folds(LEARNED, rows, folds)[1]
    lm_name = None
    if lm_oof:
        cov = covered[rows]
        lm_name, scores["label_model"] = _best({k: v[cov] for k, v in lm_oof.items()}, y[cov],
                                               default_lm)

    # 2. C, human labels alone
    C, scores["C"], end_oof = _choose_C(ctx, rows, folds)
    if lm_name is None:
        return Trust(None, C, 0.0, 1.0, len(rows), "no labeling functions: C by cross-fitting",
                     scores)

    # 3. weak weight, with the chosen label model's labels on a sample of unlabeled covered items,
    # and C with them (WEAK_C): the best C with weak rows is not that of human labels alone
    # (WRENCH YouTube, 100 random labels plus weak labels at 0.5: C=1 0.94, C=100 0.88; SemEval,
    # 200: C=1 0.64, C=100 0.78), so the two are chosen together
    weights = sorted(set(WEAK_GRID[1:]) | {float(default_weak)} - {0.0})
    weak_oof = {(C, 0.0): end_oof[C]}
    for c in WEAK_C:
        weak_oof.update({(c, w): p for w, p in ctx.weak_oof(rows, folds, lm_name, c, weights).items()})
    (C, weak_weight), scores["weak_weight"] = _best(weak_oof, y, (DEFAULT_C, float(default_weak)))

    # 4. served: end model, label model or a blend, on covered items
    cov = covered[rows]
    chosen = weak_oof[(C, weak_weight)]
    blends = {b: served_probs(chosen, lm_oof[lm_name], cov, b) for b in BLENDS}
    blend, scores["blend"] = _best(blends, y, None)
    trust = Trust(lm_name, float(C), float(weak_weight), float(blend), len(rows),
                  f"cross-fitted on {len(rows)} human labels in {len(folds)} folds", scores)
    return trust if decide_on is None or not (human >= 0)[~decide_on].any() else _serve_on_all(ctx, trust)


def _choose_C(ctx: _Context, rows: np.ndarray, folds) -> tuple[float, dict[str, float],
                                                         dict[float, np.ndarray]]:
    """``C`` of the end model, by cross-fitting on the human labels ``rows`` alone: the best
    cross-fitted accuracy (ties: the lower log-loss), as a user's grid search would choose it,
    with no default to beat (any C trusts the labels alike). Also every C's out-of-fold
    probabilities."""
    X, human, k = ctx.X, ctx.human, ctx.n_classes
    oof: dict[float, np.ndarray] = {}
    for C in C_GRID:
        probs = np.empty((len(rows), k), dtype=np.float32)
        for train, test in folds:
            model = EndModel(k, C=C, seed=ctx.seed, class_weight="balanced")  # as training_set
            probs[test] = model.fit(X[train], human[train]).predict_proba(X[rows[test]])
        oof[C] = probs
    C, scores = _best(oof, human[rows], None)
    return float(C), scores, oof


def _serve_on_all(ctx: _Context, trust: Trust) -> Trust:
    """Step 4 alone, on every human label, for rounds whose labels are mostly an active-learning
    strategy's picks: the label model and the weak weight stay as the random sample chose (or the
    defaults); without a random sample, C with the weak rows is chosen here too, from
    :data:`WEAK_C` (C=1 unless another wins clearly). Picked items are not a sample of the pool
    and tell little about it, so without a random sample to decide, the default here is the end
    model (:data:`SERVE_PICKED_DEFAULT`), as every round served before the blend existed, and a blend
    is served only when the picked labels clearly favour it. An even blend held on every picked
    label kept the served model near the label model once the end model had outgrown it (WRENCH
    YouTube, seed 0: ``entropy`` 0.896 at 200 labels against 0.928 now, ``margin`` 0.936 at 500
    against 0.952 without LFs); on SemEval (``margin``, 50 labels) the picked labels favour the
    blend clearly (cross-fitted 0.68 against 0.38) and it is served (0.843 on test; end model
    0.707, label model 0.813)."""
    rows = np.flatnonzero(ctx.human >= 0)
    y = ctx.human[rows]
    if len(rows) < MIN_LABELS or len(np.unique(y)) < 2 or trust.label_model is None:
        return trust
    folds = ctx.folds(rows)
    w, extra = trust.weak_weight, {}
    # C with the weak rows, from WEAK_C: C=1 unless another wins clearly on these labels (on a
    # random sample step 3 chose it with the weight)
    Cs = [trust.C] if "weak_weight" in trust.scores else list(WEAK_C)
    ends = {c: ctx.weak_oof(rows, folds, trust.label_model, c, [w])[w] for c in Cs}
    C = Cs[0]
    if len(Cs) > 1:
        C, extra["C_with_weak_all_labels"] = _best(ends, y, DEFAULT_C)
    lm = ctx.lm_folds(trust.label_model, rows, folds)[1]
    cov = ctx.covered[rows]
    blends = {b: served_probs(ends[C], lm, cov, b) for b in BLENDS}
    # a random sample's choice is the default, the even blend with too few random labels to choose:
    # serving the end model there instead, as without a random sample, helped on WRENCH YouTube
    # (``margin``, 250 labels: 0.944 on the test split against 0.916) and hurt on Yelp, whose one
    # weak vote is 0.69 accurate (100 labels: 0.57 against 0.67, below the label model)
    blend, scores = _best(blends, y, trust.blend if "blend" in trust.scores else SERVE_PICKED_DEFAULT)
    return replace(trust, C=float(C), blend=float(blend),
                   scores={**trust.scores, **extra, "blend_all_labels": scores},
                   reason=f"{trust.reason}; blend cross-fitted on all {len(rows)} human labels")


@dataclass
class _Context:
    """What the cross-fitted fits of one round share. ``train_on`` (n,) bool: the human labels the
    round's end model trains on; each fold's fits see all of them but the fold's held-out ones."""

    X: object
    human: np.ndarray
    n_classes: int
    votes: np.ndarray | None
    label_models: dict[str, np.ndarray]
    covered: np.ndarray
    seed: int
    train_on: np.ndarray

    def folds(self, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """K folds of the deciding labels ``rows``: per fold, the pool positions its fits train on
        (every label in ``train_on`` outside the fold) and the fold, as indices into ``rows``.
        Picked labels thus train every candidate as they train the round's model, while only
        ``rows`` (a random sample) score them."""
        out = []
        for _, test in _folds(self.human[rows], self.seed):
            train = self.train_on.copy()
            train[rows[test]] = False
            out.append((np.flatnonzero(train), test))
        return out

    def lm_folds(self, name: str, rows: np.ndarray, folds) -> tuple[list, np.ndarray]:
        """Per fold, the label model ``name`` as a function of item positions, and its
        out-of-fold probabilities on ``rows``: the learned one fitted on each fold's labels."""
        k = self.n_classes
        oof = np.empty((len(rows), k), dtype=np.float32)
        fits = []
        for train, test in folds:
            if name == LEARNED:
                fit = AccuracyLabelModel(k).fit(self.votes[train], self.human[train])
                fits.append(lambda pos, fit=fit: fit.predict_proba(self.votes[pos]))
            else:
                fits.append(lambda pos, p=self.label_models[name]: np.asarray(p)[pos])
            oof[test] = fits[-1](rows[test])
        return fits, oof

    def weak_oof(self, rows: np.ndarray, folds, lm_name: str, C: float,
                 weights: list[float]) -> dict[float, np.ndarray]:
        """Out-of-fold probabilities on ``rows`` of the end model trained on each fold's human
        labels plus the label model's labels on up to :data:`CV_WEAK_ROWS` unlabeled covered
        items, per weak weight."""
        k = self.n_classes
        pool = np.flatnonzero(self.covered & (self.human < 0))
        rng = np.random.default_rng(self.seed)
        sample = np.sort(rng.choice(pool, min(len(pool), CV_WEAK_ROWS), replace=False))
        labeled = np.union1d(np.flatnonzero(self.train_on), rows)
        universe = np.concatenate([labeled, sample])
        Xu, m, u = self.X[universe], len(labeled), len(universe)
        weak_rows = np.zeros(u, dtype=bool)
        weak_rows[m:] = True  # labeled items never become weak rows
        per_fold = []
        for fit, (train, _) in zip(self.lm_folds(lm_name, rows, folds)[0], folds, strict=True):
            lm_u = np.vstack([np.zeros((m, k), np.float32), np.asarray(fit(sample), np.float32)])
            fold_human = np.full(u, -1, dtype=np.int64)
            seen = np.isin(labeled, train)
            fold_human[:m][seen] = self.human[labeled[seen]]
            per_fold.append((lm_u, fold_human))
        out = {}
        for w in weights:
            oof = np.empty((len(rows), k), dtype=np.float32)
            for (lm_u, fold_human), (_, test) in zip(per_fold, folds, strict=True):
                idx, yy, ww = training_set(u, fold_human, lm_u, weak_rows, weak_weight=w, max_weak=u)
                model = EndModel(k, C=C, seed=self.seed).fit(Xu[idx], yy, sample_weight=ww)
                oof[test] = model.predict_proba(self.X[rows[test]])
            out[w] = oof
        return out
