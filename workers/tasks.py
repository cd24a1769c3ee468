"""The compute of one round, as one pure function an executor can ship: arrays in, arrays out.

``fit_round`` fits the label model on the LF votes, chooses from the human labels how much to trust
the LFs (:mod:`labeling.trust`: which label model, the end model's C, the weak weight, and what to
serve: end model, label model or a blend), trains the end model on human labels plus weighted
label-model labels, scores the pool with the served model, evaluates on the evaluation slice, runs the model
assertions (built-ins for the strategies that read them, registered ones always) and asks the
project's strategy for the next queue.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labeling.assertion_runs import AssertionRun, AssertionSpec, load_assertions, run_assertions
from labeling.assertion_types import AssertionBatch
from labeling.assertions import builtin_assertions
from labeling.end_model import MAX_WEAK_ROWS, EndModel, training_set
from labeling.errors import UserCodeFault
from labeling.features import featurize_pool
from labeling.intervals import evaluate_with_interval
from labeling.label_model import AccuracyLabelModel, LabelModel, majority_proba
from labeling.mc_dropout import MCDropoutClassifier, project
from labeling.trust import (
    CV_WEAK_ROWS,
    LEARNED,
    choose_trust,
    decision_rows,
    queue_share,
    served_probs,
)
from strategies.base import AssertionVotes, QueryContext
from strategies.registry import select, with_random_share
from workers.limits import LimitExceeded, current, limited

__all__ = ["RoundInput", "RoundOutput", "fit_round"]

ASSERTION_STRATEGIES = ("bal", "auto")  # strategies that read model assertions


@dataclass
class RoundInput:
    frame: pd.DataFrame  # n pool items in seq order
    votes: np.ndarray  # (n, m) int8
    human: np.ndarray  # (n,) int, -1 = no human label
    is_eval: np.ndarray  # (n,) bool, evaluation slice
    open_mask: np.ndarray  # (n,) bool, items that may still be queued
    n_classes: int
    strategy: str
    strategy_params: dict[str, Any]
    strategy_state: dict[str, Any]
    queue_size: int
    weak_weight: float
    label_model: str
    seed: int
    use_weak: bool = True
    # (n,) float draws in [0, 1), the random share's order; None: no share (``random``, no LFs)
    explore: np.ndarray | None = None
    explore_fraction: float = 0.0  # with LFs, items drawn under it are the random share of batches
    extra_frame: pd.DataFrame | None = None  # held-out items to score too (simulation)
    extra_votes: np.ndarray | None = None
    lm_cached: tuple[np.ndarray, np.ndarray, dict] | None = None  # (probs, covered, info) to reuse
    assertion_specs: list[AssertionSpec] = field(default_factory=list)  # registered, active
    class_names: tuple[str, ...] = ()


@dataclass
class RoundOutput:
    probs: np.ndarray | None  # (n, K) float32 end-model probabilities
    lm_probs: np.ndarray | None  # (n, K) float32 label-model posteriors
    lm_covered: np.ndarray | None  # (n,) bool
    label_model: dict[str, Any]
    metrics: dict[str, Any]
    queue: np.ndarray  # (q,) positions, best first
    scores: np.ndarray  # (q,)
    reasons: list[dict]
    strategy_state: dict[str, Any]
    model_version: str
    extra_probs: np.ndarray | None = None
    extra_lm_probs: np.ndarray | None = None
    extra_lm_covered: np.ndarray | None = None
    n_train: dict[str, int] = field(default_factory=dict)
    # weak labels of registered assertions: (n, c) int8, -1 abstains; they join the next round's
    # label-model input as one labeling function per column
    assertion_votes: np.ndarray | None = None
    assertion_vote_names: list[str] = field(default_factory=list)


_LM_MEMO: OrderedDict[str, LabelModel] = OrderedDict()
_LM_LOCK = threading.Lock()
LM_MEMO_ENTRIES = 2
LM_SEED = 0  # one label-model fit per vote matrix, whatever the round: its weak labels stay put


def _fit_label_model(votes: np.ndarray, n_classes: int, kind: str) -> LabelModel:
    """The unsupervised label model of ``votes`` (Snorkel, or majority vote with too few LFs);
    fitted once per vote matrix and kind in this process (a SemEval-sized Snorkel fit takes
    seconds, and most rounds of a simulation or a labeling session leave the votes unchanged)."""
    h = hashlib.sha1(f"{votes.shape}|{n_classes}|{kind}|".encode())
    h.update(np.ascontiguousarray(votes).tobytes())
    key = h.hexdigest()
    with _LM_LOCK:
        if key in _LM_MEMO:
            _LM_MEMO.move_to_end(key)
            return _LM_MEMO[key]
    lm = LabelModel(n_classes, seed=LM_SEED, kind=kind).fit(votes)
    with _LM_LOCK:
        _LM_MEMO[key] = lm
        while len(_LM_MEMO) > LM_MEMO_ENTRIES:
            _LM_MEMO.popitem(last=False)
    return lm


def _label_models(inp: RoundInput):
    """``(candidates, extra_candidates, covered, info)``: the unsupervised label models' pool
    probabilities by name (the project's kind first; with ``auto`` majority vote as well), the
    same for the held-out items (or None), and the coverage."""
    m = inp.votes.shape[1]
    if m == 0 or not inp.use_weak:
        return {}, None, None, {"kind": "none",
                                "reason": "no labeling functions" if m == 0 else "weak labels off"}
    extra = inp.extra_votes
    if inp.lm_cached is not None and extra is None:  # same votes as last round: same fit
        probs, covered, info = inp.lm_cached
        candidates = {info.get("kind", "snorkel"): probs}
        info = {**info, "reused": True}
        extra_candidates = None
    else:
        lm = _fit_label_model(inp.votes, inp.n_classes, inp.label_model)
        candidates = {lm.kind_: lm.predict_proba(inp.votes)}
        covered = lm.coverage(inp.votes)
        extra_candidates = {lm.kind_: lm.predict_proba(extra)} if extra is not None else None
        info = {"kind": lm.kind_, "reason": lm.reason_, "n_lfs": m}
    if inp.label_model == "auto" and "majority" not in candidates:
        candidates["majority"] = majority_proba(inp.votes, inp.n_classes)
        if extra_candidates is not None:
            extra_candidates["majority"] = majority_proba(extra, inp.n_classes)
    return candidates, extra_candidates, np.asarray(covered, dtype=bool), info


def _chosen_lm(name: str | None, candidates: dict, extra_candidates: dict | None,
               inp: RoundInput):
    """The chosen label model's probabilities on the pool and on the held-out items."""
    if name is None:
        return None, None
    if name != LEARNED:
        return candidates[name], (extra_candidates or {}).get(name)
    rows = (inp.human >= 0) & ~inp.is_eval  # the evaluation slice stays unseen, as for the end model
    fit = AccuracyLabelModel(inp.n_classes).fit(inp.votes[rows], inp.human[rows])
    extra = fit.predict_proba(inp.extra_votes) if inp.extra_votes is not None else None
    return fit.predict_proba(inp.votes), extra


def _assertions(inp: RoundInput, probs: np.ndarray, lm_probs: np.ndarray | None, rescore,
                rng: np.random.Generator, metrics: dict[str, Any]):
    """Built-in assertions (for the strategies that read them) and the registered ones (always:
    their counts are monitoring and their weak labels feed the next round). Firing counts go into
    ``metrics``; returns the severities for the strategy and the registered ones' weak labels."""
    names: list[str] = []
    columns: list[np.ndarray] = []
    dependent: list[bool] = []
    if inp.strategy in ASSERTION_STRATEGIES or inp.strategy_params.get("assertions"):
        names, severity, dependent = builtin_assertions(
            inp.frame, probs, inp.votes, lm_probs, inp.human, rescore, rng)
        columns = [severity[:, j] for j in range(len(names))]
    weak, weak_names = None, []
    if inp.assertion_specs:
        batch = AssertionBatch(
            inp.frame, probs, probs.argmax(axis=1), lm_probs, inp.votes, inp.human,
            inp.class_names or tuple(str(c) for c in range(inp.n_classes)))
        runs = _limited_runs(inp.assertion_specs, batch)
        metrics["assertion_runs"] = {r.name: {**r.counts(), "granularity": r.granularity} for r in runs}
        names += [r.name for r in runs]
        columns += [r.severity.astype(np.float32) for r in runs]
        dependent = list(dependent) + [r.model_dependent for r in runs]
        voting = [r for r in runs if r.weak_labels is not None]
        if voting:
            weak = np.stack([r.weak_labels for r in voting], axis=1).astype(np.int8)
            weak_names = [r.name for r in voting]
    if not names:
        return None, None, []
    severity = np.stack(columns, axis=1).astype(np.float32)
    metrics["assertions"] = {m: int((severity[:, j] > 0).sum()) for j, m in enumerate(names)}
    return AssertionVotes(names, severity, dependent), weak, weak_names


def _limited_runs(specs: list[AssertionSpec], batch: AssertionBatch) -> list[AssertionRun]:
    """Each registered assertion under this worker's limits for user code; one past a time limit
    abstains on the batch with that as its fault, like one that raises."""
    from workers.sandbox import harden_worker

    harden_worker()
    try:
        with limited(current()):
            assertions = load_assertions(specs)
    except LimitExceeded as exc:
        raise UserCodeFault(f"loading the registered assertions: {exc}") from None
    runs = []
    for a in assertions:
        try:
            with limited(current()):
                runs.extend(run_assertions([a], batch))
        except LimitExceeded as exc:
            runs.append(AssertionRun(a.name, a.granularity, a.model_dependent, np.zeros(batch.n),
                                     None, None, str(exc)))
    return runs


def _weak_scale(covered: np.ndarray, human: np.ndarray, n_weak: int, decided: int) -> float:
    """Factor on the final fit's weak weights so their total equals that of the cross-fitted
    fits, which saw at most ``CV_WEAK_ROWS`` of the unlabeled covered items (a weight's meaning
    must not change with the pool size)."""
    pool = int((covered & (human < 0)).sum())
    if n_weak == 0 or pool == 0:
        return 1.0
    return min(1.0, CV_WEAK_ROWS / pool) * decided / n_weak


def fit_round(inp: RoundInput) -> RoundOutput:
    n, k = len(inp.frame), inp.n_classes
    rng = np.random.default_rng(inp.seed)
    candidates, extra_candidates, covered, lm_info = _label_models(inp)
    base_lm = next(iter(candidates.values()), None)  # the unsupervised label model, stored
    if covered is not None:
        lm_info["coverage"] = float(covered.mean()) if n else 0.0

    featurizer, features, extra_features = featurize_pool(inp.frame, inp.extra_frame)
    weak_on = bool(candidates)
    # with LFs, a random share of every active-learning batch decides how much to trust them
    share = inp.explore_fraction if weak_on and inp.explore is not None else 0.0
    explore = inp.explore < share if share else np.zeros(n, dtype=bool)
    # the label model that learns LF accuracies from human labels only where every label is a
    # random sample: a strategy's picks are where LFs fail most, and would teach it accuracies too
    # low, while the random share alone is a tenth of the labels (WRENCH YouTube, ``margin``, 400
    # labels: learned from the random share, chosen on it, 0.876 on the test split against 0.956
    # with Snorkel kept)
    deciding = decision_rows(inp.human, inp.is_eval | explore, inp.strategy)
    trust = choose_trust(features, inp.human, k, votes=inp.votes if weak_on else None,
                         label_models=candidates, covered=covered, seed=inp.seed,
                         learned=weak_on and inp.label_model == "auto" and inp.strategy == "random",
                         default_weak=inp.weak_weight,
                         decide_on=deciding,
                         train_on=~inp.is_eval)
    lm_probs, extra_lm_chosen = _chosen_lm(trust.label_model, candidates, extra_candidates, inp)
    lm_info["chosen"] = trust.label_model

    train_labels = np.where(inp.is_eval, -1, inp.human)
    idx, y, w = training_set(n, train_labels, lm_probs, covered, weak_weight=trust.weak_weight,
                             max_weak=MAX_WEAK_ROWS, seed=inp.seed)
    n_human = int((train_labels >= 0).sum())
    if len(idx) > n_human:
        decided = len(training_set(n, train_labels, lm_probs, covered, weak_weight=1.0,
                                   max_weak=n, seed=inp.seed)[0]) - n_human
        w[n_human:] *= _weak_scale(covered, inp.human, len(idx) - n_human, decided)
    probs = extra_probs = end_probs = None
    n_train = {"human": n_human, "weak": int(len(idx) - n_human)}
    model = None
    if len(idx):
        model = EndModel(k, C=trust.C, seed=inp.seed).fit(features[idx], y, sample_weight=w)
        end_probs = model.predict_proba(features)
        probs = served_probs(end_probs, lm_probs, covered, trust.blend)
        if extra_features is not None:
            extra_cov = (inp.extra_votes >= 0).any(axis=1) if inp.extra_votes is not None else None
            extra_probs = served_probs(model.predict_proba(extra_features), extra_lm_chosen,
                                       extra_cov, trust.blend)
    extra_lm = extra_covered = None
    if extra_candidates:
        extra_lm = next(iter(extra_candidates.values()))
        extra_covered = (inp.extra_votes >= 0).any(axis=1)

    eval_mask = inp.is_eval & (inp.human >= 0)
    metrics: dict[str, Any] = {"n_eval_labeled": int(eval_mask.sum()), "trust": trust.as_dict()}
    # evaluation-slice figures rest on few items early on: each says how many, with an interval
    if eval_mask.any() and probs is not None:
        metrics["served"] = evaluate_with_interval(inp.human[eval_mask], probs[eval_mask])
        metrics["end_model"] = evaluate_with_interval(inp.human[eval_mask], end_probs[eval_mask])
    if eval_mask.any() and base_lm is not None:
        metrics["label_model"] = evaluate_with_interval(inp.human[eval_mask], base_lm[eval_mask])

    assertions, weak, weak_names = None, None, []
    if model is not None:
        assertions, weak, weak_names = _assertions(
            inp, probs, lm_probs, lambda f: model.predict_proba(featurizer.transform(f)), rng, metrics)

    mc_probs = None
    if model is not None and (inp.strategy == "bald" or inp.strategy_params.get("mc_dropout")):
        dense = project(features, 256, inp.seed)
        mc = MCDropoutClassifier(k, seed=inp.seed).fit(dense[idx], y, sample_weight=w)
        mc_probs = mc.predict_mc(dense, passes=int(inp.strategy_params.get("passes", 10)))

    candidates = inp.open_mask & ~inp.is_eval & (inp.human < 0)
    k_queue = min(inp.queue_size, int(candidates.sum()))
    sample = np.flatnonzero(candidates & explore)  # empty without a share
    rate = queue_share(int(deciding.sum()), share)  # the queue's random places
    if len(sample):
        sample = sample[np.argsort(inp.explore[sample], kind="stable")][:round(k_queue * rate)]
    ctx = QueryContext(
        n_classes=k, candidates=candidates & ~explore, probs=probs, labeled=inp.human >= 0,
        labels=inp.human, lm_probs=lm_probs, votes=inp.votes if inp.votes.shape[1] else None,
        features=features, assertions=assertions, mc_probs=mc_probs, eval_metrics=metrics,
        state=inp.strategy_state,
        params=inp.strategy_params,
    )
    sel = select(inp.strategy, ctx, min(k_queue - len(sample), int(ctx.candidates.sum())), rng)
    if len(sample):
        sel = with_random_share(sel, sample, rate)
    digest = hashlib.sha1(
        np.ascontiguousarray(probs).tobytes() if probs is not None else b"no-model"
    ).hexdigest()[:10]
    return RoundOutput(
        probs=probs, lm_probs=base_lm, lm_covered=covered, label_model=lm_info, metrics=metrics,
        queue=sel.indices, scores=sel.scores, reasons=sel.reasons, strategy_state=sel.state,
        model_version=digest, extra_probs=extra_probs, extra_lm_probs=extra_lm,
        extra_lm_covered=extra_covered, n_train=n_train, assertion_votes=weak,
        assertion_vote_names=weak_names,
    )
