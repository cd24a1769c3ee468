"""The store interface: domain operations, not a key-value API.

Two backends implement it (embedded SQLite, Redis for replicas) and one contract suite
(``tests/store_contract.py``) runs against both. Time (``now``) is always a parameter; a store never
reads the clock, so tests can expire leases without sleeping.

The lease model, the same in both stores:

* every item is in one *pool* (:data:`~api.storage.records.POOLS`): ``main``, ``eval`` (the
  evaluation slice), ``gold`` (honeypot items with known answers) or ``review`` (the adjudication
  and label-error queue). A pool keeps its order: ``rand_key`` for the first three, arrival for
  ``review`` (first in, first out);
* every item has ``required``: how many distinct annotators must answer it. It is set when the item
  is added (or the redundancy settings change) by :func:`~api.storage.records.required_answers`,
  and changed afterwards by :meth:`Store.require`, which can also move the item to another pool;
* a *hold* is (item, annotator, lease); a lease has one expiry for all its holds and is indexed by
  it for the sweep. An annotator holds an item at most once, and never one they answered;
* an item is *open* while it is not flagged and its answers (``label`` and ``review`` events) plus
  live holds are short of ``required``. A lease from the main pools takes open gold items (as many
  as asked, only beside another item, mixed in among the pool-order items and given their
  reasons), then the evaluation items it asks for, then the ranked queue, then ``main`` in order,
  then ``eval``; a lease from ``review`` takes that pool only, oldest first;
* a hold ends on submit, release or expiry; the item is then open again if it still needs
  answers. A late holder's submission is refused;
* a ``correct`` event supersedes its annotator's earlier answer and changes no count;
* an idempotency key belongs to (project, annotator): seen before with the same payload, the
  first annotation comes back and nothing changes; with another payload it is a ``Conflict``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from api.storage.codec import array_to_bytes, bytes_to_array, dumps, from_json, loads, to_json
from api.storage.records import (
    ACTIVE_JOB_STATES,
    Annotation,
    AssertionRecord,
    Item,
    Job,
    Lease,
    LeaseRequest,
    LFRecord,
    Project,
    ProjectSettings,
    Round,
    SubmitResult,
)
from api.storage.rules import LOCK, check_fence, check_ttl
from labeling.errors import Conflict, LabelloopError, NotFound


class StoreUnavailable(LabelloopError):
    """The store cannot answer now: the Redis server cannot be reached, is loading, is a
    read-only replica or is out of memory."""


__all__ = ["Store", "StoreUnavailable"]


class Store(abc.ABC):
    """Everything the coordinator keeps. Every method is atomic on its own. A write with
    ``fence=(lock name, token)`` happens only while ``token`` is still the latest token handed out
    for that lock; otherwise ``StaleToken`` (a ``Conflict``) and nothing is written, so a job that
    lost its lock cannot overwrite the outputs of the job that took it over."""

    # -- projects -------------------------------------------------------------------------
    @abc.abstractmethod
    def create_project(self, project: Project) -> Project:
        """Store a new project; ``Conflict`` if the id exists."""

    @abc.abstractmethod
    def get_project(self, project_id: str) -> Project:
        """``NotFound`` if absent."""

    @abc.abstractmethod
    def list_projects(self) -> list[Project]: ...

    @abc.abstractmethod
    def update_settings(self, project_id: str, settings: ProjectSettings, *,
                        guidelines: str | None = None) -> Project:
        """Replace the settings (and the guidelines text, unless ``guidelines`` is None); a
        change of redundancy draws every item's ``required`` again."""

    # -- items ----------------------------------------------------------------------------
    @abc.abstractmethod
    def add_items(self, project_id: str, items: Sequence[Item], *, on_conflict: str,
                  rand_keys: np.ndarray) -> tuple[int, int]:
        """Append items (``seq`` assigned by the store, in order), all of them or none (also for
        a million rows, also when the process is killed midway); returns (inserted, updated).
        ``on_conflict="reject"``: an id already stored, or repeated within ``items``, is a
        ``Conflict`` naming it. ``"upsert"``: a known id keeps its seq, its answers and its
        evaluation flag, and gets the new text, features, meta, votes and gold. ``rand_keys``
        (len(items),) orders the pool before any strategy has run."""

    @abc.abstractmethod
    def count_items(self, project_id: str) -> int: ...

    @abc.abstractmethod
    def get_item(self, project_id: str, item_id: str) -> Item: ...

    def iter_items(self, project_id: str, *, start: int = 0, chunk: int = 10_000):
        """Yield lists of items in ``seq`` order from ``start``."""
        self.get_project(project_id)
        while items := self._item_chunk(project_id, start, chunk):
            yield items
            start += len(items)

    @abc.abstractmethod
    def _item_chunk(self, project_id: str, start: int, n: int) -> list[Item]:
        """The items of ``seq`` start .. start + n - 1."""

    # -- labeling functions and model assertions: kept by name in first-registration order --
    def put_lfs(self, project_id: str, lfs: Sequence[LFRecord]) -> None:
        """Register LFs; a name already present gets the new version and source."""
        self._register("lfs", project_id, lfs)

    def list_lfs(self, project_id: str) -> list[LFRecord]:
        return self._registered("lfs", project_id, LFRecord)

    def deactivate_lf(self, project_id: str, name: str) -> None:
        self._deactivate("lfs", project_id, name, "labeling function")

    def put_assertions(self, project_id: str, assertions: Sequence[AssertionRecord]) -> None:
        """Register assertions atomically (all or none); a name already present gets the new
        version and source and becomes active again."""
        self._register("assertions", project_id, assertions)

    def list_assertions(self, project_id: str) -> list[AssertionRecord]:
        return self._registered("assertions", project_id, AssertionRecord)

    def deactivate_assertion(self, project_id: str, name: str) -> None:
        """``NotFound`` for a name never registered."""
        self._deactivate("assertions", project_id, name, "assertion")

    def _register(self, kind: str, project_id: str, records: Sequence[Any]) -> None:
        def change(docs: list) -> tuple[dict[str, str], None]:
            current = {d["name"]: d for d in loads(docs[0] or "[]")}  # a new version keeps its place
            current.update((r.name, asdict(r)) for r in records)
            return {f"{kind}:{project_id}": dumps(list(current.values()))}, None

        self.get_project(project_id)
        self._swap([f"{kind}:{project_id}"], change)

    def _registered(self, kind: str, project_id: str, cls: type) -> list:
        self.get_project(project_id)
        return [cls(**d) for d in loads(self._records([f"{kind}:{project_id}"])[0] or "[]")]

    def _deactivate(self, kind: str, project_id: str, name: str, noun: str) -> None:
        def change(docs: list) -> tuple[dict[str, str], None]:
            current = loads(docs[0] or "[]")
            if name not in {d["name"] for d in current}:
                raise NotFound(f"unknown {noun} {name!r}")
            return {f"{kind}:{project_id}": dumps(
                [{**d, "active": d["active"] and d["name"] != name} for d in current])}, None

        self.get_project(project_id)
        self._swap([f"{kind}:{project_id}"], change)

    # small records by name: ``lfs:P`` and ``assertions:P`` (JSON lists), ``votes:P:VERSION``
    # (npy bytes), ``votes-info:P:VERSION`` (JSON [faults, first error]), the jobs and locks below
    @abc.abstractmethod
    def _records(self, names: Sequence[str]) -> list[str | bytes | None]:
        """The records ``names``, None where absent."""

    @abc.abstractmethod
    def _swap(self, names: Sequence[str],
              change: Callable[[list[str | bytes | None]], tuple[dict, Any]]) -> Any:
        """``writes, result = change(records names)``, then store ``writes`` (name -> value), in
        one atomic step; returns ``result``. If ``change`` raises, nothing is written."""

    def get_votes(self, project_id: str, version: str) -> tuple[np.ndarray, int, str | None]:
        """Cached votes of one LF version for items ``seq`` 0..len-1, with (faults, first_error).
        An LF version never applied returns an empty int8 array."""
        data, info = self._records([f"votes:{project_id}:{version}", f"votes-info:{project_id}:{version}"])
        if data is None:
            return np.empty(0, dtype=np.int8), 0, None
        return bytes_to_array(data), *loads(info)

    def put_votes(self, project_id: str, version: str, votes: np.ndarray, faults: int,
                  first_error: str | None, *, fence: tuple[str, int] | None = None) -> None:
        """Replace the cached votes of ``version`` (covering ``seq`` 0..len(votes)-1)."""
        writes = {f"votes:{project_id}:{version}": array_to_bytes(np.asarray(votes, dtype=np.int8)),
                  f"votes-info:{project_id}:{version}": dumps([int(faults), first_error])}

        def change(docs: list) -> tuple[dict[str, str | bytes], None]:
            check_fence(fence, lambda _: docs[0])
            return writes, None

        self._swap([] if fence is None else [LOCK + fence[0]], change)

    # -- jobs: records ``job:ID``, ``jobs:P`` (the project's job ids, in order) and
    # ``job-active:P:KIND`` (the id of its queued or running job of a kind, or null)
    def create_job(self, job: Job) -> Job:
        """``Conflict`` if a job of the same kind is queued or running for the project."""
        self.get_project(job.project_id)
        names = [f"job-active:{job.project_id}:{job.kind}", f"jobs:{job.project_id}", f"job:{job.id}"]

        def change(docs: list) -> tuple[dict[str, str], Job]:
            if loads(docs[0] or "null") is not None:
                raise Conflict(f"a {job.kind!r} job is already running for this project: "
                               f"{loads(docs[0])}")
            if docs[2] is not None:
                raise Conflict(f"job {job.id!r} already exists")
            return dict(zip(names, (dumps(job.id), dumps([*loads(docs[1] or "[]"), job.id]),
                                    to_json(job)), strict=True)), job

        return self._swap(names, change)

    def update_job(self, job_id: str, *, fence: tuple[str, int] | None = None, **fields: Any) -> Job:
        """Change fields of a job (under ``fence``, see :class:`Store`)."""
        old = self.get_job(job_id)  # its project and kind never change
        names = [f"job:{job_id}", f"job-active:{old.project_id}:{old.kind}",
                 *([] if fence is None else [LOCK + fence[0]])]

        def change(docs: list) -> tuple[dict[str, str], Job]:
            check_fence(fence, lambda _: docs[2])
            job = replace(from_json(Job, docs[0]), **fields)
            ended = job.status not in ACTIVE_JOB_STATES and loads(docs[1] or "null") == job_id
            return {names[0]: to_json(job), **({names[1]: "null"} if ended else {})}, job

        return self._swap(names, change)

    def get_job(self, job_id: str) -> Job:
        (doc,) = self._records([f"job:{job_id}"])
        if doc is None:
            raise NotFound(f"unknown job {job_id!r}")
        return from_json(Job, doc)

    def list_jobs(self, project_id: str) -> list[Job]:
        self.get_project(project_id)
        ids = loads(self._records([f"jobs:{project_id}"])[0] or "[]")
        return [from_json(Job, doc) for doc in self._records([f"job:{i}" for i in ids])]

    # -- locks with fencing tokens (one job of a kind per project, across replicas) -------
    def acquire_lock(self, name: str, owner: str, ttl_s: float, now: float) -> int | None:
        """Take lock ``name`` for ``owner`` until ``now + ttl_s``: a fencing token larger than
        every token handed out for ``name`` before, or None while anyone (``owner`` included)
        holds it. A lock is free again once a caller's ``now`` passes its expiry."""
        check_ttl(ttl_s)

        def change(docs: list) -> tuple[dict[str, str], int | None]:
            lock = loads(docs[0] or '{"owner": null, "token": 0}')
            if lock["owner"] is not None and lock["expires_at"] > now:
                return {}, None
            token = lock["token"] + 1
            return {LOCK + name: dumps({"owner": owner, "expires_at": now + ttl_s,
                                        "token": token})}, token

        return self._swap([LOCK + name], change)

    def renew_lock(self, name: str, owner: str, token: int, ttl_s: float, now: float) -> bool:
        """Extend ``owner``'s hold to ``now + ttl_s`` while ``token`` is still the latest token of
        ``name`` (so no one took the lock since); False otherwise, and nothing changes."""
        check_ttl(ttl_s)
        return self._edit_lock(name, lambda lock: (lock.get("owner"), lock.get("token")) == (
            owner, token), expires_at=now + ttl_s)

    def release_lock(self, name: str, owner: str) -> bool:
        """Drop lock ``name`` if ``owner`` holds it; False otherwise."""
        return self._edit_lock(name, lambda lock: lock.get("owner") == owner, owner=None)

    def _edit_lock(self, name: str, held: Callable[[dict], bool], **fields: Any) -> bool:
        """Change ``fields`` of lock ``name`` if ``held(its record)``; returns whether it did."""

        def change(docs: list) -> tuple[dict[str, str], bool]:
            lock = loads(docs[0] or "{}")
            return ({LOCK + name: dumps({**lock, **fields})}, True) if held(lock) else ({}, False)

        return self._swap([LOCK + name], change)

    # -- arrays (probabilities, model artifacts) ------------------------------------------
    @abc.abstractmethod
    def get_array(self, project_id: str, name: str) -> np.ndarray | None: ...

    @abc.abstractmethod
    def put_array(self, project_id: str, name: str, array: np.ndarray) -> None:
        """Store one array outside a round (project state such as gold answers or a connected
        tool's settings); a round's outputs go through :meth:`commit_round`."""

    # -- queue ----------------------------------------------------------------------------
    @abc.abstractmethod
    def queue_depth(self, project_id: str, now: float) -> dict[str, int]:
        """Counts: total, open (main and eval items still needing answers), leased (live holds; an
        item that needs several annotators may be held several times), done, flagged, eval (the
        evaluation slice), gold and review (their items still needing answers)."""

    # -- leases ---------------------------------------------------------------------------
    @abc.abstractmethod
    def lease(self, project_id: str, annotator: str, n: int, *, n_eval: int, now: float,
              ttl: float, lease_id: str, n_gold: int = 0, pool: str = "main") -> Lease:
        """Atomically lease up to ``n`` items (``n_gold`` gold and ``n_eval`` evaluation items at
        most) of ``pool`` (``"main"`` or ``"review"``), in the order of the model above. An empty
        lease means nothing is available to this annotator right now; its ``exhausted`` is true
        only when nothing will be (no item of those pools still needs their answer, held or not).

        Leases and sweeps (:meth:`expire`) run at ``now`` or at the latest time one of them ran
        at, whichever is later (callers' clocks differ, and a call may wait after reading its
        clock): a lease never starts before the end of a hold that was ended before it ran."""

    @abc.abstractmethod
    def lease_many(self, requests: Sequence[LeaseRequest], *, now: float,
                   ) -> list[Lease | LabelloopError]:
        """:meth:`lease` for each request at ``now``, in order, each atomic on its own: a refused
        one comes back as its error and leaves nothing. Cheaper than a call each (SQLite: one
        commit; Redis: one round trip)."""

    @abc.abstractmethod
    def get_lease(self, lease_id: str) -> Lease:
        """The lease with its open items (ids only); ``NotFound`` if unknown."""

    @abc.abstractmethod
    def leases(self, project_id: str, annotator: str, *, now: float) -> list[Lease]:
        """``annotator``'s live leases in ``project_id`` with their open items (records and
        reasons), oldest first: what a tool that restarted carries on with."""

    @abc.abstractmethod
    def renew(self, lease_id: str, annotator: str, *, now: float, ttl: float) -> Lease:
        """Extend the live items of a lease; ``Conflict`` if it is not the annotator's or expired."""

    @abc.abstractmethod
    def release(self, lease_id: str, annotator: str, *, item_ids: Sequence[str] | None = None,
                now: float) -> int:
        """Give items back to the queue at once; returns how many were released."""

    @abc.abstractmethod
    def expire(self, now: float) -> int:
        """End the holds of expired leases; returns how many. Correctness never depends on this
        sweep (a lease ends its project's expired holds first)."""

    @abc.abstractmethod
    def require(self, project_id: str, required: Mapping[str, int], *, now: float,
                pool: str | None = None) -> int:
        """Set how many distinct answers each item of ``required`` (item id -> k >= 1) needs,
        atomically with leases and submissions: raised, an answered item is open again for
        annotators who have not answered it; lowered, an item whose answers suffice closes (its
        live holds may still be answered). With ``pool``, each item also moves to that pool
        (``"main"``: back to main, or to eval for an item of the evaluation slice; an item
        entering ``review`` joins the end of its queue, one already there keeps its place).
        All or nothing: ``NotFound`` for an unknown item, ``InvalidInput`` for a bad k or pool.
        Returns how many items it changed."""

    # -- annotations ----------------------------------------------------------------------
    @abc.abstractmethod
    def submit(self, annotations: Sequence[Annotation], *, now: float) -> list[SubmitResult]:
        """Append annotations of one project atomically (all or none). Each needs a live hold of
        its annotator in the lease it names, or a known idempotency key (see the model above).
        ``lease_id=None``: an answer from an external tool (Label Studio), with no hold to end,
        or a ``correct`` event, which needs an earlier answer of its annotator (else
        ``Conflict``)."""

    @abc.abstractmethod
    def annotations(self, project_id: str, *, since: int = 0) -> list[Annotation]:
        """The log in order, from log position ``since``."""

    @abc.abstractmethod
    def count_labels(self, project_id: str) -> int:
        """Number of answers (``label`` and ``review`` events) in the log."""

    # -- rounds ---------------------------------------------------------------------------
    @abc.abstractmethod
    def list_rounds(self, project_id: str) -> list[Round]: ...

    @abc.abstractmethod
    def commit_round(self, project_id: str, *, arrays: Mapping[str, np.ndarray],
                     queue: tuple[Sequence[str], Sequence[float], Sequence[dict]], rnd: Round,
                     fence: tuple[str, int] | None = None) -> None:
        """Store a round's outputs in one atomic step: each of ``arrays`` (name -> array; an
        array not named keeps its value), the ranked ``queue`` (item ids best first, scores,
        reasons: it replaces the queue; items not in it follow in pool order) and the round
        record ``rnd``. Readers see all of them or none of them. ``fence=None``: no check (one
        process without locks: the CLI, the simulator). ``InvalidInput`` if ``rnd`` belongs to
        another project or the queue's three sequences differ in length."""

    # -- lifecycle ------------------------------------------------------------------------
    @abc.abstractmethod
    def ping(self) -> bool:
        """True when the backing store answers (health checks)."""

    def close(self) -> None:
        """Release connections."""

    def latest_round(self, project_id: str) -> Round | None:
        rounds = self.list_rounds(project_id)
        return rounds[-1] if rounds else None
