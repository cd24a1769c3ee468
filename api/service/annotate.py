"""Leases and annotations: what annotation tools call."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from api.service.render import LeaseRenderer
from api.storage.base import Store
from api.storage.records import (
    Annotation,
    Lease,
    LeasedItem,
    LeaseRequest,
    Project,
    SubmitResult,
)
from labeling.errors import InvalidInput, LabelloopError, SchemaError

__all__ = ["MAX_BATCH", "MAX_COMMENT", "AnnotationIn", "get_lease", "lease_answers", "lease_batch",
           "lease_request", "live_leases", "release_lease", "renew_lease", "submit_annotations",
           "submit_external"]

MAX_BATCH = 1000
MAX_COMMENT = 4000


def _annotator(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput(f"annotator must be a non-empty string of at most 200 characters, got {name!r}")
    return name


def _anyone(lease: Lease) -> None:
    """The default ``allowed``: every lease (the CLI and the simulator)."""


def lease_request(project: Project, annotator: str, size: int | None, *,
                  rng: np.random.Generator | Callable[[], np.random.Generator]) -> LeaseRequest:
    """Check a lease request against the project's settings. ``rng``: a generator, or a function
    making one (called only when the evaluation slice or gold items are mixed in, so the hot path
    draws nothing). ``n_gold`` ~ Binomial(n, gold_rate), then ``n_eval`` ~ Binomial(n - n_gold,
    eval_fraction)."""
    n = project.settings.batch_size if size is None else size
    if not isinstance(n, int) or not 1 <= n <= MAX_BATCH:
        raise InvalidInput(f"size must be an integer in 1..{MAX_BATCH}, got {n!r}")
    frac, gold_rate = project.settings.eval_fraction, project.settings.gold_rate
    if (frac or gold_rate) and callable(rng):
        rng = rng()
    n_gold = int(rng.binomial(n, gold_rate)) if gold_rate else 0
    n_eval = int(rng.binomial(n - n_gold, frac)) if frac else 0
    return LeaseRequest(project.id, _annotator(annotator), n, n_eval, project.settings.lease_ttl_s,
                        new_lease_id(), n_gold)


def new_lease_id() -> str:
    """``lease-``, the microsecond it was made at in 14 hex digits, then 64 random bits: ids that
    grow with time keep the stores' lease indexes growing at one end."""
    return f"lease-{time.time_ns() // 1000:014x}{secrets.token_hex(8)}"


def lease_batch(store: Store, project_id: str, annotator: str, size: int | None, *, now: float,
                rng: np.random.Generator | Callable[[], np.random.Generator]) -> Lease:
    """Lease the next batch for one annotator (see :func:`lease_request`)."""
    return _lease(store, store.get_project(project_id), annotator, size, now=now, rng=rng)


def lease_answers(store: Store, asked: Sequence[tuple[str, str, int | None]], *, now: float,
                  rng: np.random.Generator | Callable[[], np.random.Generator],
                  renderer: LeaseRenderer) -> list[dict[str, Any] | LabelloopError]:
    """Leases for ``(project_id, annotator, size)`` requests at ``now`` in one
    :meth:`~api.storage.base.Store.lease_many` (one SQLite commit, one Redis round trip), each
    project read once, each answered as the lease route does (``api.schemas.LeaseOut``). A
    request refused alone comes back as its error, nothing of it written; a failed commit
    raises for all."""
    projects: dict[str, Project] = {}
    out: list[Any] = []  # a request, then its answer; or its error
    for project_id, annotator, size in asked:
        try:
            if project_id not in projects:
                projects[project_id] = store.get_project(project_id)
            out.append(lease_request(projects[project_id], annotator, size, rng=rng))
        except LabelloopError as e:
            out.append(e)
    requests = [r for r in out if isinstance(r, LeaseRequest)]
    leases = iter(store.lease_many(requests, now=now))
    for k, r in enumerate(out):
        if isinstance(r, LeaseRequest):
            out[k] = lease = next(leases)
            if isinstance(lease, Lease):
                try:
                    out[k] = renderer.render(_gold_disguised(lease) if r.n_gold else lease,
                                             projects[r.project_id], store)
                except LabelloopError as e:
                    out[k] = e
    return out


def _lease(store: Store, project: Project, annotator: str, size: int | None, *, now: float,
           rng: np.random.Generator | Callable[[], np.random.Generator]) -> Lease:
    """One lease, gold items disguised (:func:`_gold_disguised`)."""
    r = lease_request(project, annotator, size, rng=rng)
    lease = store.lease(r.project_id, r.annotator, r.n, n_eval=r.n_eval, now=now, ttl=r.ttl,
                        lease_id=r.lease_id, n_gold=r.n_gold)
    return _gold_disguised(lease) if r.n_gold else lease


def _gold_disguised(lease: Lease) -> Lease:
    """Each gold item with the reasons of another item of the lease, drawn at random, and placed
    just before or after it: once a round has ranked the queue the other items carry the
    strategy's reasons (and come best first), where a gold item would otherwise say "pool order",
    last. The draws are seeded by the lease id, so a lease reads the same each time."""
    others = [li for li in lease.items if li.pool != "gold"]
    if not others or len(others) == len(lease.items):
        return lease
    rng = np.random.default_rng(int(hashlib.sha1(lease.id.encode()).hexdigest()[:16], 16))
    beside: dict[tuple[int, int], list[LeasedItem]] = {}  # (neighbour, 0 before / 1 after)
    for li in lease.items:
        if li.pool == "gold":
            j, side = int(rng.integers(len(others))), int(rng.integers(2))
            beside.setdefault((j, side), []).append(replace(li, reasons=dict(others[j].reasons)))
    items = tuple(x for j, li in enumerate(others)
                  for x in (*beside.get((j, 0), ()), li, *beside.get((j, 1), ())))
    return replace(lease, items=items, item_ids=tuple(li.item.id for li in items))


def get_lease(store: Store, lease_id: str, *, allowed: Callable[[Lease], None] = _anyone) -> Lease:
    """The lease and its open items; ``allowed(lease)`` raises when the caller may not see it."""
    lease = store.get_lease(lease_id)
    allowed(lease)
    return lease


def renew_lease(store: Store, lease_id: str, annotator: str, *, now: float,
                allowed: Callable[[Lease], None] = _anyone) -> Lease:
    """Extend a lease by its project's ``lease_ttl_s`` from ``now``."""
    lease = get_lease(store, lease_id, allowed=allowed)
    ttl = store.get_project(lease.project_id).settings.lease_ttl_s
    return store.renew(lease_id, _annotator(annotator), now=now, ttl=ttl)


def release_lease(store: Store, lease_id: str, annotator: str, item_ids: Sequence[str] | None, *,
                  now: float, allowed: Callable[[Lease], None] = _anyone) -> int:
    """Give back the lease's items (``item_ids``, or all of them); how many were released."""
    get_lease(store, lease_id, allowed=allowed)
    return store.release(lease_id, _annotator(annotator), item_ids=item_ids, now=now)


def live_leases(store: Store, project_id: str, annotator: str, *, now: float,
                renderer: LeaseRenderer) -> list[dict[str, Any]]:
    """The annotator's live leases with their open items, oldest first (resume after a crash),
    each answered as the lease route answers a lease."""
    project = store.get_project(project_id)
    return [renderer.render(x, project, store)
            for x in map(_gold_disguised, store.leases(project_id, _annotator(annotator), now=now))]


@dataclass(frozen=True)
class AnnotationIn:
    item_id: str
    lease_id: str | None  # None only for an external tool's answer (:func:`submit_external`)
    kind: str = "label"
    label: int | str | None = None
    comment: str = ""
    idempotency_key: str | None = None
    time_spent_s: float | None = None


def _label_index(project: Project, label: int | str | None, item_id: str) -> int:
    if label is None:
        raise InvalidInput(f"item {item_id!r}: a label, review or correct annotation needs a "
                           "label")
    if isinstance(label, bool):
        raise SchemaError(f"item {item_id!r}: label must be a class index or name, got {label!r}")
    if isinstance(label, int):
        if not 0 <= label < project.n_classes:
            raise SchemaError(
                f"item {item_id!r}: label {label} is not a class index 0..{project.n_classes - 1}"
            )
        return label
    names = project.class_names
    if label not in names:
        raise SchemaError(f"item {item_id!r}: unknown class {label!r}; classes are {names}")
    return names.index(label)


def submit_annotations(
    store: Store, project_id: str, annotator: str, annotations: Sequence[AnnotationIn], *, now: float
) -> list[SubmitResult]:
    """Validate every annotation first, then append them all atomically (or none)."""
    return _append(store, project_id, [(annotator, a) for a in annotations], now=now, external=False)


def submit_external(
    store: Store, project_id: str, answers: Sequence[tuple[str, AnnotationIn]], *, now: float
) -> list[SubmitResult]:
    """Append answers made in an external tool (Label Studio), ``(annotator, annotation)`` pairs
    whose ``lease_id`` is None: no lease was held, so each item must exist. Kinds: label, skip,
    and ``retract`` (the annotator's earlier answer was deleted there). Validated first, then
    appended atomically (or none); an idempotency key seen before has no second effect."""
    for _, a in answers:
        store.get_item(project_id, a.item_id)  # NotFound names it
    return _append(store, project_id, answers, now=now, external=True)


# what a lease holder submits ("review": a reviewer's decision on an item of the review queue);
# "correct" (an annotator's new label for an item they answered) comes without a lease;
# "retract" is external only
NATIVE_KINDS = ("label", "skip", "flag", "review", "correct")
LABELED_KINDS = ("label", "review", "correct")  # the kinds that carry a label
NO_LEASE = ("correct",)  # native kinds submitted without a lease
EXTERNAL_KINDS = ("label", "skip", "flag", "retract")  # what an external tool's answer may be


def _append(store: Store, project_id: str, answers: Sequence[tuple[str, AnnotationIn]], *,
            now: float, external: bool) -> list[SubmitResult]:
    project = store.get_project(project_id)
    if not 1 <= len(answers) <= MAX_BATCH:
        raise InvalidInput(f"submit 1..{MAX_BATCH} annotations at a time, got {len(answers)}")
    kinds = EXTERNAL_KINDS if external else NATIVE_KINDS
    events = []
    for annotator, a in answers:
        annotator = _annotator(annotator)
        if a.kind not in kinds:
            raise InvalidInput(f"item {a.item_id!r}: kind must be one of {list(kinds)}, got {a.kind!r}")
        leaseless = external or a.kind in NO_LEASE
        if leaseless != (a.lease_id is None):
            what = ("None for an external answer" if external else
                    f"None for a {a.kind!r} annotation" if leaseless else "a lease id")
            raise InvalidInput(f"item {a.item_id!r}: lease_id must be {what}, got {a.lease_id!r}")
        if a.kind == "review" and not a.comment.strip():
            raise InvalidInput(f"item {a.item_id!r}: a 'review' decision needs a comment saying why")
        if a.kind == "review" and store.get_item(project_id, a.item_id).pool != "review":
            # a reviewer's hold on a pool item is an annotator's: their answer is one vote
            raise InvalidInput(f"item {a.item_id!r} is not in the review queue: a 'review' "
                               "decision is for items leased from it")
        if len(a.comment) > MAX_COMMENT:
            raise InvalidInput(f"item {a.item_id!r}: comment longer than {MAX_COMMENT} characters")
        if a.time_spent_s is not None and not 0 <= a.time_spent_s < 86400:
            raise InvalidInput(f"item {a.item_id!r}: time_spent_s must be in [0, 86400), got {a.time_spent_s}")
        label = _label_index(project, a.label, a.item_id) if a.kind in LABELED_KINDS else None
        if a.kind not in LABELED_KINDS and a.label is not None:
            raise InvalidInput(f"item {a.item_id!r}: a {a.kind!r} annotation carries no label")
        events.append(
            Annotation(project_id, a.item_id, annotator, a.kind, label, a.comment, a.lease_id,
                       a.idempotency_key, a.time_spent_s,
                       guidelines_version=project.settings.guidelines_version)
        )
    keys = [e.idempotency_key for e in events if e.idempotency_key is not None]
    if len(set(keys)) != len(keys):
        raise InvalidInput("idempotency keys must be unique within one submission")
    return store.submit(events, now=now)
