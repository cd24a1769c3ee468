"""Jobs and the locks with fencing tokens that keep one job of a kind per project across
replicas: the same in both stores, over their small records (:meth:`Store._records`,
:meth:`Store._swap`). The records: ``job:ID`` (the job), ``jobs:P`` (the project's job ids, in
order), ``job-active:P:KIND`` (the id of its queued or running job of a kind, or null) and
``lock:NAME`` (:data:`~api.storage.rules.LOCK`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from api.storage.codec import dumps, from_json, loads, to_json
from api.storage.records import ACTIVE_JOB_STATES, Job
from api.storage.rules import LOCK, check_fence, check_ttl
from labeling.errors import Conflict, NotFound

__all__ = ["JobsAndLocks"]


class JobsAndLocks:
    """Part of :class:`~api.storage.base.Store`."""

    # -- jobs -----------------------------------------------------------------------------
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
