"""Annotation quality use cases: agreement, annotator monitoring and the label-error ranking.

They read the answer log through the store (``annotations``), the pool, the gold marks and the
latest round's arrays; the maths is in :mod:`labeling.agreement`,
:mod:`labeling.annotator_quality` and :mod:`labeling.label_errors`. The label-error ranking is
computed in each round (:func:`api.service.rounds.run_round`) and only read here.
"""

from __future__ import annotations

import numpy as np

from api.service.gold import gold_labels
from api.service.rounds import PoolView, load_pool
from api.storage.base import Store
from api.storage.records import Annotation
from labeling.agreement import agreement_report
from labeling.annotator_quality import KINDS, AnswerLog, annotator_report
from labeling.errors import InvalidInput
from labeling.label_errors import COLUMNS, entry

__all__ = ["MAX_LIMIT", "agreement", "annotators", "answer_log", "label_errors"]

MAX_LIMIT = 10_000
_AS = {"label": "label", "correct": "label"}  # a correction is the annotator's label from then on


def answer_log(pool: PoolView, annotations: list[Annotation]) -> AnswerLog:
    """The log's events on pool items as arrays (annotators in order of first answer)."""
    codes: dict[str, int] = {}
    rows = [(pool.index[a.item_id], codes.setdefault(a.annotator, len(codes)),
             KINDS.index(_AS.get(a.kind, a.kind)), a.label if a.kind in _AS else -1,
             np.nan if a.time_spent_s is None else a.time_spent_s)
            for a in annotations if a.item_id in pool.index and _AS.get(a.kind, a.kind) in KINDS]
    cols = list(zip(*rows)) if rows else [(), (), (), (), ()]
    return AnswerLog(np.array(cols[0], dtype=np.int64), np.array(cols[1], dtype=np.int64),
                     np.array(cols[2], dtype=np.int64), np.array(cols[3], dtype=np.int64),
                     np.array(cols[4], dtype=np.float64), tuple(codes), len(pool.items))


def _load(store: Store, project_id: str) -> tuple[PoolView, AnswerLog]:
    pool = load_pool(store, project_id)
    return pool, answer_log(pool, store.annotations(project_id))


def agreement(store: Store, project_id: str, *, by_class: bool = False,
              by_version: bool = False) -> dict:
    """Krippendorff's alpha, Fleiss' kappa and Cohen's kappa per pair of annotators over the items
    with two or more labels (each annotator's latest label); per class with ``by_class``; with
    ``by_version``, ``versions``: the same over the answers given under each guidelines version."""
    pool = load_pool(store, project_id)
    annotations = store.annotations(project_id)
    log = answer_log(pool, annotations)
    names = pool.project.class_names
    out = agreement_report(log.ratings(), list(log.names), names, by_class=by_class)
    if by_version:
        versions = sorted({a.guidelines_version for a in annotations
                           if a.guidelines_version is not None})
        out["versions"] = []
        for v in versions:
            part = answer_log(pool, [a for a in annotations if a.guidelines_version == v])
            out["versions"].append({"guidelines_version": v, **agreement_report(
                part.ratings(), list(part.names), names)})
    return {"project_id": project_id, **out}


def _round_probs(store: Store, project_id: str, n: int, k: int) -> np.ndarray | None:
    """The latest round's end-model probabilities, uniform for items added since."""
    probs = store.get_array(project_id, "probs")
    if probs is None or probs.ndim != 2 or probs.shape[1] != k:
        return None
    out = np.full((n, k), 1.0 / k, dtype=np.float64)
    m = min(n, len(probs))
    out[:m] = probs[:m]
    return out


def annotators(store: Store, project_id: str) -> list[dict]:
    """One entry per annotator (see :func:`labeling.annotator_quality.annotator_report`), best
    first; CROWDLAB weighs the latest round's end-model probabilities."""
    pool, log = _load(store, project_id)
    n, k = len(pool.items), pool.project.n_classes
    return annotator_report(log, k, gold=gold_labels(store, project_id, n),
                            pred_probs=_round_probs(store, project_id, n, k))


def label_errors(store: Store, project_id: str, *, limit: int = 50) -> dict:
    """The latest round's ranking of human labels by how likely they are wrong: the first
    ``limit`` items with their label, suggested class, quality score and reasons."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer in 1..{MAX_LIMIT}, got {limit!r}")
    project = store.get_project(project_id)
    rnd = store.latest_round(project_id)
    table = store.get_array(project_id, "label_errors") if rnd is not None else None
    out = {"project_id": project_id, "round": rnd.number if rnd else None,
           "n_ranked": 0 if table is None else len(table), "items": []}
    if table is None or not len(table):
        out["note"] = ("no ranking yet: a round ranks the human labels once there are enough of "
                       "them (see labeling.label_errors.MIN_LABELS)")
        return out
    names = project.class_names
    seqs = table[:limit, COLUMNS.index("item")].astype(np.int64)
    ids = _ids_at(store, project_id, seqs)
    for row, item_id in zip(table[:limit], ids, strict=True):
        out["items"].append({"id": item_id, **entry(row, names)})
    return out


def _ids_at(store: Store, project_id: str, seqs: np.ndarray) -> list[str]:
    wanted = {int(s) for s in seqs}
    found: dict[int, str] = {}
    for chunk in store.iter_items(project_id):
        for it in chunk:
            if it.seq in wanted:
                found[it.seq] = it.id
        if len(found) == len(wanted):
            break
    return [found[int(s)] for s in seqs]
