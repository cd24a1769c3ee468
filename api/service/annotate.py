"""Leases and annotations: what annotation tools call."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from api.service.render import LeaseRenderer
from api.storage.base import Store
from api.storage.records import (
    ANNOTATION_KINDS,
    Annotation,
    Lease,
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
    making one (called only when the evaluation slice is mixed in, so the hot path draws
    nothing)."""
    n = project.settings.batch_size if size is None else size
    if not isinstance(n, int) or not 1 <= n <= MAX_BATCH:
        raise InvalidInput(f"size must be an integer in 1..{MAX_BATCH}, got {n!r}")
    frac = project.settings.eval_fraction
    if frac and callable(rng):
        rng = rng()
    n_eval = int(rng.binomial(n, frac)) if frac else 0
    return LeaseRequest(project.id, _annotator(annotator), n, n_eval, project.settings.lease_ttl_s,
                        new_lease_id())


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
    :meth:`~api.storage.base.Store.batch` (one SQLite commit), each project read once, each
    answered as the lease route does (``api.schemas.LeaseOut``). A request refused alone comes
    back as its error, nothing of it written; a failed commit raises for all."""
    projects: dict[str, Project] = {}
    out: list[dict[str, Any] | LabelloopError] = []
    with store.batch():
        for project_id, annotator, size in asked:
            try:
                project = projects.get(project_id) or store.get_project(project_id)
                projects[project_id] = project
                lease = _lease(store, project, annotator, size, now=now, rng=rng)
                out.append(renderer.render(lease, project, store))
            except LabelloopError as e:
                out.append(e)
    return out


def _lease(store: Store, project: Project, annotator: str, size: int | None, *, now: float,
           rng: np.random.Generator | Callable[[], np.random.Generator]) -> Lease:
    r = lease_request(project, annotator, size, rng=rng)
    return store.lease(r.project_id, r.annotator, r.n, n_eval=r.n_eval, now=now, ttl=r.ttl,
                       lease_id=r.lease_id)


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
            for x in store.leases(project_id, _annotator(annotator), now=now)]


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
        raise InvalidInput(f"item {item_id!r}: a 'label' annotation needs a label")
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


NATIVE_KINDS = ("label", "skip", "flag")  # what a lease holder submits; "retract" is external only


def _append(store: Store, project_id: str, answers: Sequence[tuple[str, AnnotationIn]], *,
            now: float, external: bool) -> list[SubmitResult]:
    project = store.get_project(project_id)
    if not 1 <= len(answers) <= MAX_BATCH:
        raise InvalidInput(f"submit 1..{MAX_BATCH} annotations at a time, got {len(answers)}")
    kinds = ANNOTATION_KINDS if external else NATIVE_KINDS
    events = []
    for annotator, a in answers:
        annotator = _annotator(annotator)
        if a.kind not in kinds:
            raise InvalidInput(f"item {a.item_id!r}: kind must be one of {list(kinds)}, got {a.kind!r}")
        if external != (a.lease_id is None):
            raise InvalidInput(f"item {a.item_id!r}: lease_id must be "
                               f"{'None for an external answer' if external else 'a lease id'}, "
                               f"got {a.lease_id!r}")
        if len(a.comment) > MAX_COMMENT:
            raise InvalidInput(f"item {a.item_id!r}: comment longer than {MAX_COMMENT} characters")
        if a.time_spent_s is not None and not 0 <= a.time_spent_s < 86400:
            raise InvalidInput(f"item {a.item_id!r}: time_spent_s must be in [0, 86400), got {a.time_spent_s}")
        label = _label_index(project, a.label, a.item_id) if a.kind == "label" else None
        if a.kind != "label" and a.label is not None:
            raise InvalidInput(f"item {a.item_id!r}: a {a.kind!r} annotation carries no label")
        events.append(
            Annotation(project_id, a.item_id, annotator, a.kind, label, a.comment, a.lease_id,
                       a.idempotency_key, a.time_spent_s)
        )
    keys = [e.idempotency_key for e in events if e.idempotency_key is not None]
    if len(set(keys)) != len(keys):
        raise InvalidInput("idempotency keys must be unique within one submission")
    return store.submit(events, now=now)
