"""A retrain round: apply LFs (incrementally), fit the label model and end model, score the
pool, refresh the queue and record the round. Runs as a job, never inside a request.

Registered model assertions run in every round that has an end model; their firing counts go
into the round's metrics (``assertions``: flagged items per assertion, ``assertion_runs``: items,
clusters, weak votes, fault and version per registered one). Their weak labels (consistency
assertions: the group's majority prediction) are computed from this round's predictions, so they
are stored (array ``assertion_votes``, columns named in ``metrics["assertion_weak_labels"]``) and
join the *next* round's label-model input as one more labeling function each (named
``assertion:<name>``; new items abstain; dropped when the assertion is deactivated or changes
version).

Gold items (:mod:`api.service.gold`) train on their known answer, not on their answers. Each
round also ranks the human labels by how likely they are wrong
(:func:`labeling.label_errors.label_error_arrays`, on the executor): arrays ``label_errors`` and
``label_quality``, served by ``GET /projects/{p}/label-errors`` and the export; the top
``review_top_k`` not yet reviewed enter the review queue (:mod:`api.service.review`). Human labels
are the consensus (:func:`human_consensus`: a reviewer's decision, else a vote weighted by the
previous round's CROWDLAB annotator quality, kept in ``metrics["annotator_quality"]``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from api.service.assertions import assertion_specs
from api.service.gold import gold_labels
from api.service.lfs import lf_set_version, specs, vote_matrix
from api.service.review import queue_label_errors
from api.service.routing import route_all
from api.storage.base import Store
from api.storage.records import (
    ANSWER_KINDS,
    Annotation,
    AssertionRecord,
    Item,
    Project,
    Round,
    id_draw,
)
from labeling.annotator_quality import crowdlab_quality
from labeling.consensus import adjudicate, consensus, quality_weights
from labeling.frame import items_frame
from labeling.label_errors import label_error_arrays
from workers import sandbox, user_code
from workers.executor import Executor
from workers.tasks import RoundInput, RoundOutput, fit_round

__all__ = ["PoolView", "annotator_weights", "human_consensus", "human_labels", "load_pool",
           "run_round"]

Progress = Callable[[int, int, str], None]
# the kinds that set or withdraw an annotator's label (a reviewer's "review" decides instead)
CONSENSUS_KINDS = ("label", "correct", "skip", "retract")


@dataclass
class PoolView:
    project: Project
    items: list[Item]
    frame: pd.DataFrame
    index: dict[str, int]  # item id -> position (= seq)


def load_pool(store: Store, project_id: str) -> PoolView:
    project = store.get_project(project_id)
    items = [it for chunk in store.iter_items(project_id) for it in chunk]
    frame = items_frame(items)
    return PoolView(project, items, frame, {it.id: i for i, it in enumerate(items)})


def human_labels(
    pool: PoolView, annotations: list[Annotation], *, weights: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consensus labels, agreement and annotator counts per pool position (see
    :func:`human_consensus`)."""
    labels, agreement, n_ann, _ = human_consensus(pool, annotations, weights=weights)
    return labels, agreement, n_ann


def human_consensus(
    pool: PoolView, annotations: list[Annotation], *, weights: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pool position: the label (a reviewer's latest decision, else the vote of each
    annotator's latest answer weighted by ``weights``), the annotators' agreement, their count and
    whether a reviewer decided. A correction replaces the annotator's answer; a skip or a
    retraction after a label withdraws it (Label Studio sends both)."""
    events = [
        (pool.index[a.item_id], a.annotator, a.label if a.kind in ("label", "correct") else -1)
        for a in annotations
        if a.kind in CONSENSUS_KINDS and a.item_id in pool.index
    ]
    labels, agreement, n_ann = consensus(events, len(pool.items), pool.project.n_classes,
                                         weights=weights)
    decisions = [(pool.index[a.item_id], a.label) for a in annotations
                 if a.kind == "review" and a.item_id in pool.index and a.label is not None]
    labels, adjudicated = adjudicate(labels, decisions)
    return labels, agreement, n_ann, adjudicated


def annotator_weights(rnd: Round | None) -> dict[str, float] | None:
    """Vote weights from a round's annotator quality estimates (None: equal weights)."""
    return quality_weights(rnd.metrics.get("annotator_quality", {})) if rnd is not None else None


def _annotator_quality(pool: PoolView, annotations: list[Annotation], probs: np.ndarray | None,
                       executor: Executor) -> dict[str, float | None]:
    """CROWDLAB's quality estimate per annotator against this round's probabilities."""
    from api.service.quality import answer_log  # it reads pools through this module

    log = answer_log(pool, annotations)
    values, _ = executor.call(crowdlab_quality, log.ratings(), log.names, probs)
    return {name: v["value"] for name, v in zip(log.names, values, strict=True)}


def _label_model_key(records, n: int, human: np.ndarray, is_eval: np.ndarray, kind: str,
                     use_weak: bool, assertion_votes: np.ndarray) -> str:
    """What the label-model fit depends on: LF versions, pool size, evaluation labels, settings,
    and the assertion weak labels that join the votes."""
    h = hashlib.sha1(f"{lf_set_version(records)}|{n}|{kind}|{use_weak}|".encode())
    h.update(np.ascontiguousarray(np.where(is_eval, human, -1)).tobytes())
    h.update(np.ascontiguousarray(assertion_votes).tobytes())
    return h.hexdigest()[:16]


def _assertion_votes(store: Store, project_id: str, previous: Round | None,
                     active: list[AssertionRecord], n: int) -> tuple[np.ndarray, list[dict]]:
    """The weak labels the previous round's assertions emitted, as (n, c) vote columns for the
    active assertions whose version has not changed since (items added since abstain), with
    their LF info entries."""
    wanted = previous.metrics.get("assertion_weak_labels", []) if previous is not None else []
    versions = {r.name: r.version for r in active}
    stored = store.get_array(project_id, "assertion_votes") if wanted else None
    if stored is None or stored.ndim != 2 or stored.shape[1] != len(wanted) or len(stored) > n:
        return np.zeros((n, 0), dtype=np.int8), []
    keep = [j for j, w in enumerate(wanted) if versions.get(w["name"]) == w["version"]]
    votes = np.full((n, len(keep)), -1, dtype=np.int8)
    votes[: len(stored)] = stored[:, keep]
    info = [{"name": f"assertion:{wanted[j]['name']}", "version": wanted[j]["version"],
             "faults": 0, "first_error": None, "kind": "assertion"} for j in keep]
    return votes, info


def run_round(
    store: Store,
    project_id: str,
    executor: Executor,
    *,
    now: float,
    progress: Progress | None = None,
    use_weak: bool = True,
    extra: tuple[pd.DataFrame, np.ndarray | None] | None = None,
    fence: tuple[str, int] | None = None,
) -> tuple[Round, RoundOutput]:
    """Run one round and store its outputs (arrays, queue, round record) in one atomic
    ``commit_round``. ``extra`` = (frame, votes) of held-out items to score as well (the
    simulator's test split); its probabilities come back in the output only. ``fence`` = the
    running job's (lock name, token): the outputs are stored only while it is the lock's latest
    token, else ``StaleToken`` and nothing is stored. None outside jobs (CLI, simulator)."""
    report = progress or (lambda done, total, stage: None)
    pool = load_pool(store, project_id)
    project, n = pool.project, len(pool.items)
    settings = project.settings
    # one scale for the whole round: the rows LFs still need, then three steps
    total = n + 3
    report(0, total, "apply_lfs")
    lf_records = [r for r in store.list_lfs(project_id) if r.active]
    votes, lf_info = vote_matrix(
        store, project_id, lf_records, pool.frame, project.n_classes, executor,
        progress=lambda d, t: report(round(d * n / max(t, 1)), total, "apply_lfs"), fence=fence,
    )
    assertion_records = [r for r in store.list_assertions(project_id) if r.active]
    checks = assertion_specs(assertion_records)
    if any(kind == "source" for _, kind, _ in checks):  # fail early when one no longer loads
        sandbox.shared().run(user_code.check_assertions, checks)
    previous = store.latest_round(project_id)
    weak, weak_info = _assertion_votes(store, project_id, previous, assertion_records, n)
    votes, lf_info = np.hstack([votes, weak]), lf_info + weak_info
    annotations = store.annotations(project_id)
    human, _, _ = human_labels(pool, annotations, weights=annotator_weights(previous))
    gold = gold_labels(store, project_id, n)  # gold items train on their known answer
    human = np.where(gold >= 0, gold, human)
    is_eval = np.fromiter((it.is_eval for it in pool.items), dtype=bool, count=n)
    explore = None  # the random share's draw (workers.tasks.fit_round), apart from redundancy's
    if votes.shape[1] and use_weak and settings.strategy != "random" and settings.explore_fraction:
        salt = f"explore\x1f{settings.seed}\x1f"
        explore = np.fromiter((id_draw(it.id, salt) for it in pool.items), dtype=np.float64, count=n)
    flagged = {a.item_id for a in annotations if a.kind == "flag"}
    open_mask = np.fromiter((it.id not in flagged for it in pool.items), dtype=bool, count=n)
    lm_key = _label_model_key(lf_records, n, human, is_eval, settings.label_model, use_weak, weak)
    lm_cached = None
    if previous is not None and previous.label_model.get("cache_key") == lm_key:
        probs, covered = store.get_array(project_id, "lm_probs"), store.get_array(project_id, "lm_covered")
        if probs is not None and covered is not None and len(probs) == n:
            keep = {k: v for k, v in previous.label_model.items() if k in ("kind", "reason", "eval_accuracy", "n_lfs", "coverage")}
            lm_cached = (probs, covered.astype(bool), keep)
    extra_votes = None
    if extra is not None and lf_records:
        extra_votes = executor.apply_lfs(specs(lf_records), extra[0], project.n_classes).votes
    if extra is not None and weak.shape[1]:  # held-out items have no assertion weak labels
        base = extra_votes if extra_votes is not None else np.zeros((len(extra[0]), 0), np.int8)
        extra_votes = np.hstack([base, np.full((len(base), weak.shape[1]), -1, dtype=np.int8)])
    report(n + 1, total, "fit label model, train end model, score, rank")
    inp = RoundInput(
        frame=pool.frame, votes=votes, human=human, is_eval=is_eval, explore=explore,
        open_mask=open_mask, explore_fraction=settings.explore_fraction,
        n_classes=project.n_classes, strategy=settings.strategy,
        strategy_params=settings.strategy_params,
        strategy_state=previous.strategy_state if previous else {},
        queue_size=settings.queue_size, weak_weight=settings.weak_weight,
        label_model=settings.label_model,
        seed=settings.seed + (previous.number if previous else 0),
        use_weak=use_weak,
        extra_frame=extra[0] if extra is not None else None, extra_votes=extra_votes,
        lm_cached=lm_cached, assertion_specs=assertion_specs(assertion_records),
        class_names=tuple(project.class_names),
    )
    out: RoundOutput = executor.call(fit_round, inp)
    report(n + 2, total, "label-errors ranked, store")
    # which human labels look wrong (cross-validated), for the review queue and export
    ranked = executor.call(label_error_arrays, pool.frame, human, project.n_classes, seed=inp.seed,
                           exclude=gold >= 0, lm_probs=out.lm_probs, lm_covered=out.lm_covered,
                           end_probs=out.probs, weak_weight=settings.weak_weight)
    arrays: dict[str, np.ndarray] = {}
    if out.probs is not None:
        arrays["probs"] = out.probs.astype(np.float32)
    if out.lm_probs is not None:
        arrays["lm_probs"] = out.lm_probs.astype(np.float32)
        arrays["lm_covered"] = out.lm_covered.astype(np.bool_)
    arrays.update(ranked)
    metrics = dict(out.metrics)
    metrics["annotator_quality"] = _annotator_quality(pool, annotations, out.probs, executor)
    if len(ranked["label_errors"]):
        metrics["label_errors"] = {"ranked": len(ranked["label_errors"]),
                                   "issues": int(ranked["label_errors"][:, 3].sum())}
    versions = {r.name: r.version for r in assertion_records}
    if "assertion_runs" in metrics:
        metrics["assertion_runs"] = {name: {**c, "version": versions.get(name)}
                                     for name, c in metrics["assertion_runs"].items()}
    if out.assertion_votes is not None:
        arrays["assertion_votes"] = out.assertion_votes.astype(np.int8)
        metrics["assertion_weak_labels"] = [{"name": m, "version": versions.get(m)}
                                            for m in out.assertion_vote_names]
    ids = [pool.items[i].id for i in out.queue]
    # each pool position's place in the queue (-1: not in it), for tools that order by a score
    rank = np.full(n, -1, dtype=np.int32)
    rank[np.asarray(out.queue, dtype=np.int64)] = np.arange(len(out.queue), dtype=np.int32)
    arrays["queue_rank"] = rank
    number = (previous.number if previous else 0) + 1
    lm_info = {**out.label_model, "lfs": lf_info, "lf_set_version": lf_set_version(lf_records),
               "cache_key": lm_key}
    rnd = Round(
        project_id=project_id, number=number, model_version=f"r{number}-{out.model_version}",
        created_at=now, n_labels=sum(a.kind in ANSWER_KINDS for a in annotations),
        metrics={**metrics, "n_train": out.n_train, "n_items": n},
        label_model=lm_info, strategy=settings.strategy, strategy_state=out.strategy_state,
    )
    store.commit_round(project_id, arrays=arrays, queue=(ids, out.scores.tolist(), out.reasons),
                       rnd=rnd, fence=fence)
    # after the fence let the round commit: answers a stopped replica never routed, then review
    route_all(store, project_id, annotations, now=now)
    if settings.review_top_k and len(ranked["label_errors"]):
        queue_label_errors(store, project_id, ranked["label_errors"], settings.review_top_k,
                           items=pool.items, annotations=annotations, now=now)
    report(total, total, "done")
    return rnd, out
