"""The review queue: items a reviewer decides, leased like the pool (``Store.lease(pool="review")``).

Items enter it two ways: disagreement routing sends an item still disputed at ``max_required``
answers (:mod:`api.service.routing`), and each round sends the top ``review_top_k`` of its
label-error ranking not yet reviewed (:func:`queue_label_errors`). Either way the store sets the
item's ``required`` to its answers so far plus one, so the reviewer's decision (a ``review``
annotation, which counts as an answer) completes it.

A review lease carries each item's earlier answers and why it is there, worked out from the log
and the latest round when it is leased (no second record to keep in step): ``disagreement`` when
its standing answers agree less than ``min_agreement``, else ``label_error`` with the ranking's
figures when the latest round ranked it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from api.service.annotate import MAX_BATCH, new_lease_id
from api.service.render import LeaseRenderer
from api.storage.base import Store
from api.storage.records import Annotation, Item, Lease, Project
from labeling.errors import InvalidInput
from labeling.label_errors import COLUMNS, entry
from labeling.routing import ANSWER_KINDS, current_votes

__all__ = ["lease_review", "queue_label_errors", "review_answer", "review_items", "why"]


def _answers(events: Sequence[Annotation], names: list[str]) -> list[dict]:
    return [{"annotator": a.annotator, "kind": a.kind,
             "label": names[a.label] if a.label is not None and 0 <= a.label < len(names) else None,
             "comment": a.comment, "created_at": a.created_at,
             "guidelines_version": a.guidelines_version} for a in events]


def _ranked_rows(store: Store, project_id: str, seqs: set[int]) -> dict[int, np.ndarray]:
    """The latest label-error ranking's rows of the items at pool positions ``seqs``."""
    table = store.get_array(project_id, "label_errors")
    if table is None or not len(table):
        return {}
    col = table[:, COLUMNS.index("item")].astype(np.int64)
    return {int(s): row for s, row in zip(col, table, strict=True) if int(s) in seqs}


def why(project: Project, events: Sequence[Annotation], row: np.ndarray | None) -> dict:
    """Why an item is in the review queue, from its events and its label-error row (or None)."""
    votes = current_votes((a.annotator, a.kind, a.label) for a in events)
    counts = np.bincount(list(votes.values()), minlength=project.n_classes) if votes else None
    agreement = float(counts.max() / len(votes)) if votes else 0.0
    figures = {"annotators": len(votes), "agreement": round(agreement, 6)}
    if len(votes) >= 2 and agreement < project.settings.min_agreement:
        return {"why": "disagreement", **figures}
    out = {"why": "label_error", **figures}
    if row is not None:
        out.update(entry(row, project.class_names))
    return out


def review_items(store: Store, project: Project, items: Sequence[Item]) -> list[dict]:
    """For each of ``items``: ``{"answers": [...], "review": why(...)}``, from the log as it is."""
    wanted = {it.id for it in items}
    by_item: dict[str, list[Annotation]] = {i: [] for i in wanted}
    for a in store.annotations(project.id):
        if a.item_id in wanted:
            by_item[a.item_id].append(a)
    names = project.class_names
    rows = _ranked_rows(store, project.id, {it.seq for it in items})
    return [{"answers": _answers(by_item[it.id], names),
             "review": why(project, by_item[it.id], rows.get(it.seq))}
            for it in items]


def lease_review(store: Store, project_id: str, reviewer: str, size: int | None, *,
                 now: float) -> tuple[Lease, Project, list[dict]]:
    """Lease up to ``size`` items of the review queue (the project's ``batch_size`` if None) for
    ``reviewer``: never one they answered or hold. Returns the lease, the project and, per leased
    item, its answers and why it is there (:func:`review_items`)."""
    if not isinstance(reviewer, str) or not reviewer.strip() or len(reviewer) > 200:
        raise InvalidInput(f"annotator must be a non-empty string of at most 200 characters, "
                           f"got {reviewer!r}")
    project = store.get_project(project_id)
    n = project.settings.batch_size if size is None else size
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_BATCH:
        raise InvalidInput(f"size must be an integer in 1..{MAX_BATCH}, got {n!r}")
    lease = store.lease(project_id, reviewer, n, n_eval=0, now=now,
                        ttl=project.settings.lease_ttl_s, lease_id=new_lease_id(), pool="review")
    extra = review_items(store, project, [li.item for li in lease.items]) if lease.items else []
    return lease, project, extra


def review_answer(store: Store, project_id: str, reviewer: str, size: int | None, *, now: float,
                  renderer: LeaseRenderer) -> dict[str, Any]:
    """A review lease (:func:`lease_review`) answered as the pool's leases are
    (``api.schemas.ReviewLeaseOut``), each item with its answers and why it is there."""
    lease, project, extra = lease_review(store, project_id, reviewer, size, now=now)
    doc = renderer.render(lease, project, store)
    for item, more in zip(doc["items"], extra, strict=True):
        item.update(more)
    return doc


def queue_label_errors(store: Store, project_id: str, table: np.ndarray, k: int, *,
                       items: Sequence[Item], annotations: Sequence[Annotation],
                       now: float) -> list[str]:
    """Send the first ``k`` items of a label-error ranking (``table``, rows of
    :data:`labeling.label_errors.COLUMNS`, most likely wrong first) that no reviewer decided and
    that are not in the review queue already to the review queue.

    ``items``: the pool in ``seq`` order as the caller read it; ``annotations``: the log as the
    caller read it (events appended since, and each candidate's pool, are read here again).
    Returns the ids sent."""
    if k <= 0 or not len(table):
        return []
    since = annotations[-1].seq if annotations else 0
    log = list(annotations) + store.annotations(project_id, since=since)
    reviewed = {a.item_id for a in log if a.kind == "review"}
    answers: dict[str, int] = {}
    for a in log:
        if a.kind in ANSWER_KINDS:
            answers[a.item_id] = answers.get(a.item_id, 0) + 1
    chosen: dict[str, int] = {}
    for seq in table[:, COLUMNS.index("item")].astype(np.int64):
        item_id = items[int(seq)].id
        if item_id in reviewed or store.get_item(project_id, item_id).pool == "review":
            continue
        chosen[item_id] = answers.get(item_id, 0) + 1
        if len(chosen) == k:
            break
    if chosen:
        store.require(project_id, chosen, now=now, pool="review")
    return list(chosen)
