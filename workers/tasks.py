"""The compute of one round, as one pure function an executor can ship: arrays in, arrays out.

``fit_round`` fits the label model on the LF votes, trains the end model on human labels plus
weighted label-model posteriors, scores the pool, evaluates on the evaluation slice, runs the model
assertions (built-ins for the strategies that read them, registered ones always) and asks the
project's strategy for the next queue.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labeling.assertion_runs import AssertionRun, AssertionSpec, load_assertions, run_assertions
from labeling.assertion_types import AssertionBatch
from labeling.assertions import builtin_assertions
from labeling.end_model import EndModel, training_set
from labeling.errors import UserCodeFault
from labeling.features import featurize_pool
from labeling.label_model import LabelModel
from labeling.mc_dropout import MCDropoutClassifier, project
from labeling.metrics import evaluate
from strategies.base import AssertionVotes, QueryContext
from strategies.registry import select
from workers.limits import LimitExceeded, current, limited

__all__ = ["RoundInput", "RoundOutput", "fit_round"]

ASSERTION_STRATEGIES = ("bal", "auto")  # strategies that read model assertions
MIN_EVAL_LABELS = 50  # evaluation labels before the label model may fall back to majority vote


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


def _fit_label_model(inp: RoundInput):
    m = inp.votes.shape[1]
    if m == 0 or not inp.use_weak:
        return None, {"kind": "none", "reason": "no labeling functions" if m == 0 else "weak labels off"}
    eval_mask = inp.is_eval & (inp.human >= 0)
    # a handful of evaluation labels would swap models on noise: compare from MIN_EVAL_LABELS on
    judge = eval_mask.sum() >= MIN_EVAL_LABELS
    lm = LabelModel(inp.n_classes, seed=inp.seed, kind=inp.label_model)
    lm.fit(
        inp.votes,
        eval_votes=inp.votes[eval_mask] if judge else None,
        eval_labels=inp.human[eval_mask] if judge else None,
    )
    info = {"kind": lm.kind_, "reason": lm.reason_, "eval_accuracy": lm.eval_accuracy_, "n_lfs": m}
    return lm, info


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


def fit_round(inp: RoundInput) -> RoundOutput:
    n, k = len(inp.frame), inp.n_classes
    rng = np.random.default_rng(inp.seed)
    if inp.lm_cached is not None:  # same votes and evaluation labels as last round: same fit
        lm = None
        lm_probs, covered, lm_info = inp.lm_cached
        lm_info = {**lm_info, "reused": True}
    else:
        lm, lm_info = _fit_label_model(inp)
        lm_probs = lm.predict_proba(inp.votes) if lm is not None else None
        covered = lm.coverage(inp.votes) if lm is not None else None
    if covered is not None:
        lm_info["coverage"] = float(covered.mean()) if n else 0.0

    train_labels = np.where(inp.is_eval, -1, inp.human)
    idx, y, w = training_set(
        n, train_labels, lm_probs, covered, weak_weight=inp.weak_weight, seed=inp.seed
    )
    probs = extra_probs = None
    features = None
    n_train = {"human": int((train_labels >= 0).sum()), "weak": int(len(idx) - (train_labels >= 0).sum())}
    featurizer, features, extra_features = featurize_pool(inp.frame, inp.extra_frame)
    model = None
    if len(idx):
        model = EndModel(k, seed=inp.seed).fit(features[idx], y, sample_weight=w)
        probs = model.predict_proba(features)
        if extra_features is not None:
            extra_probs = model.predict_proba(extra_features)
    extra_lm = extra_covered = None
    if lm is not None and inp.extra_votes is not None:
        extra_lm, extra_covered = lm.predict_proba(inp.extra_votes), lm.coverage(inp.extra_votes)

    metrics: dict[str, Any] = {"n_eval_labeled": int((inp.is_eval & (inp.human >= 0)).sum())}
    eval_mask = inp.is_eval & (inp.human >= 0)
    if eval_mask.any() and probs is not None:
        metrics["end_model"] = evaluate(inp.human[eval_mask], probs[eval_mask])
    if eval_mask.any() and lm_probs is not None:
        metrics["label_model"] = evaluate(inp.human[eval_mask], lm_probs[eval_mask])

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
    ctx = QueryContext(
        n_classes=k, candidates=candidates, probs=probs, labeled=inp.human >= 0,
        labels=inp.human, lm_probs=lm_probs, votes=inp.votes if inp.votes.shape[1] else None,
        features=features, assertions=assertions, mc_probs=mc_probs, eval_metrics=metrics,
        state=inp.strategy_state,
        params=inp.strategy_params,
    )
    sel = select(inp.strategy, ctx, min(inp.queue_size, int(candidates.sum())), rng)
    digest = hashlib.sha1(
        np.ascontiguousarray(probs).tobytes() if probs is not None else b"no-model"
    ).hexdigest()[:10]
    return RoundOutput(
        probs=probs, lm_probs=lm_probs, lm_covered=covered, label_model=lm_info, metrics=metrics,
        queue=sel.indices, scores=sel.scores, reasons=sel.reasons, strategy_state=sel.state,
        model_version=digest, extra_probs=extra_probs, extra_lm_probs=extra_lm,
        extra_lm_covered=extra_covered, n_train=n_train, assertion_votes=weak,
        assertion_vote_names=weak_names,
    )
