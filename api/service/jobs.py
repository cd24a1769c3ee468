"""Background jobs: ids, kind, status, progress; one queued or running job of a kind per project.

A job of a kind runs once per project across replicas. Starting one takes the store lock
``job:{project}:{kind}`` (with an expiry and a fencing token) before the job record exists; the
holder's heartbeat renews it every third of ``lock_ttl_s`` while the job runs, and every write the
job makes to its record carries the token, so a holder that lost the lock (it stalled past the
expiry and another replica took over) has its writes refused and stops at its next progress
report. The job's shared outputs carry the token too (:attr:`JobContext.fence`: a round stores
its arrays, queue and round record in one fenced ``commit_round``), so a holder that lost the lock
after its last progress report still cannot overwrite what the new holder stored. A replica that died leaves its lock to expire: the next start of that kind, or any
replica's sweep (:meth:`JobRunner.reap`), takes the lock and marks the orphaned job failed with
the reason. Jobs run on a small thread pool so no request waits for one.

Cancelling works from any replica (and from the CLI): it sets ``cancel_requested`` on the job
record; the replica running the job reads the flag back with its next progress write, and its
heartbeat checks it too, so the job stops at its next progress report wherever it runs.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from api.storage.base import Store
from api.storage.records import ACTIVE_JOB_STATES, Job
from labeling.errors import Conflict, InvalidInput, LabelloopError, StaleToken

__all__ = ["JOB_KINDS", "JobContext", "JobRunner", "LockLost", "lock_name", "request_cancel"]

log = logging.getLogger(__name__)
JOB_KINDS = ("round", "apply_lfs", "pseudo_label")


class Cancelled(Exception):
    """Raised inside a job when cancellation was asked for."""


class LockLost(Exception):
    """Raised inside a job whose coordinator no longer holds the job's lock."""


def lock_name(project_id: str, kind: str) -> str:
    return f"job:{project_id}:{kind}"


class JobContext:
    """Handed to a job function: report progress, check for cancellation and for a lost lock."""

    def __init__(self, store: Store, job_id: str, cancel: threading.Event, *,
                 fence: tuple[str, int] | None = None, lost: threading.Event | None = None) -> None:
        self.store, self.job_id, self._cancel = store, job_id, cancel
        self._fence, self._lost = fence, lost or threading.Event()
        self._last = 0.0

    @property
    def fence(self) -> tuple[str, int] | None:
        """(lock name, token) of the job's lock: pass it to every store write of the job's shared
        outputs (``commit_round(..., fence=ctx.fence)``) so that they are refused with
        ``StaleToken`` once another coordinator has taken the lock over. None without a lock."""
        return self._fence

    def progress(self, done: int, total: int, message: str = "") -> None:
        if self._cancel.is_set():
            raise Cancelled()
        if self._lost.is_set():
            raise LockLost(f"job {self.job_id} lost its lock {self._fence}")
        now = time.monotonic()
        if now - self._last > 0.2 or done >= total:
            try:
                job = self.store.update_job(self.job_id, fence=self._fence, done=done, total=total,
                                            message=message)
            except StaleToken as exc:
                self._lost.set()
                raise LockLost(str(exc)) from exc
            self._last = now
            if job.cancel_requested:  # asked on another replica, or from the CLI
                self._cancel.set()
                raise Cancelled()


class JobRunner:
    def __init__(self, store: Store, *, workers: int = 2, clock: Callable[[], float] = time.time,
                 lock_ttl_s: float = 30.0, owner: str | None = None):
        if not lock_ttl_s > 0:
            raise InvalidInput(f"lock_ttl_s must be > 0, got {lock_ttl_s!r}")
        self.store, self.clock, self.lock_ttl_s = store, clock, lock_ttl_s
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="labelloop-job")
        self._cancel: dict[str, threading.Event] = {}
        self._futures: dict[str, Future] = {}
        self._held: dict[str, tuple[str, int, threading.Event]] = {}  # job id -> lock, token, lost
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="labelloop-job-lock", daemon=True)
        self._beat.start()

    def submit(self, project_id: str, kind: str, fn: Callable[[JobContext], dict[str, Any]],
               *, then: Callable[[], None] | None = None) -> Job:
        """Take the kind's lock, create the job record (``Conflict`` if one of this kind runs on
        any replica) and start it; ``then`` runs once the job has ended and its lock is free."""
        if kind not in JOB_KINDS:
            raise InvalidInput(f"job kind must be one of {list(JOB_KINDS)}, got {kind!r}")
        name = lock_name(project_id, kind)
        token = self.store.acquire_lock(name, self.owner, self.lock_ttl_s, self.clock())
        if token is None:
            raise Conflict(f"a {kind!r} job is already queued or running for project "
                           f"{project_id!r} (its coordinator holds the lock {name!r})")
        try:
            self._fail_orphans(project_id, kind, (name, token))
            job = self.store.create_job(
                Job(f"job-{secrets.token_hex(6)}", project_id, kind, "queued", self.clock())
            )
        except BaseException:
            self.store.release_lock(name, self.owner)
            raise
        cancel, lost = threading.Event(), threading.Event()
        self._cancel[job.id] = cancel
        self._held[job.id] = (name, token, lost)
        self._futures[job.id] = self._pool.submit(self._run, job, fn, cancel, then)
        return job

    def try_submit(self, project_id: str, kind: str, fn) -> Job | None:
        try:
            return self.submit(project_id, kind, fn)
        except Conflict:
            return None

    def _fail_orphans(self, project_id: str, kind: str, fence: tuple[str, int]) -> int:
        """With the kind's lock in hand, any queued or running job of that kind is an orphan: its
        coordinator stopped renewing the lock (it died, stalled or lost the store)."""
        n = 0
        for job in self.store.list_jobs(project_id):
            if job.kind == kind and job.status in ACTIVE_JOB_STATES and job.id not in self._held:
                log.warning("job %s (%s) lost its coordinator; marking it failed", job.id, kind)
                self.store.update_job(
                    job.id, fence=fence, status="failed", finished_at=self.clock(),
                    error=(f"LockExpired: the coordinator running this job stopped renewing its "
                           f"lock {fence[0]!r} (it died or lost contact with the store); "
                           f"{self.owner} took the lock over"),
                )
                n += 1
        return n

    def reap(self) -> int:
        """Mark failed the queued or running jobs whose lock expired (their coordinator died);
        called by every replica's sweep. Returns how many."""
        n = 0
        for project in self.store.list_projects():
            kinds = {j.kind for j in self.store.list_jobs(project.id)
                     if j.status in ACTIVE_JOB_STATES and j.id not in self._held}
            for kind in sorted(kinds):
                name = lock_name(project.id, kind)
                token = self.store.acquire_lock(name, self.owner, self.lock_ttl_s, self.clock())
                if token is None:  # a live coordinator holds it
                    continue
                try:
                    n += self._fail_orphans(project.id, kind, (name, token))
                finally:
                    self.store.release_lock(name, self.owner)
        return n

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lock_ttl_s / 3):
            for job_id, (name, token, lost) in list(self._held.items()):
                if lost.is_set():
                    continue
                self._pick_up_cancel(job_id)
                try:
                    alive = self.store.renew_lock(name, self.owner, token, self.lock_ttl_s,
                                                  self.clock())
                except LabelloopError:  # the store did not answer: try again next beat
                    log.exception("renewing the lock of job %s failed", job_id)
                    continue
                if not alive:
                    log.warning("job %s lost its lock %s (token %s); it stops at its next "
                                "progress report and its writes are refused", job_id, name, token)
                    lost.set()

    def _run(self, job: Job, fn, cancel: threading.Event, then=None) -> None:
        name, token, lost = self._held[job.id]
        fence = (name, token)
        final: dict[str, Any] | None = None
        try:
            self.store.update_job(job.id, fence=fence, status="running", started_at=self.clock())
            result = fn(JobContext(self.store, job.id, cancel, fence=fence, lost=lost))
        except Cancelled:
            final = {"status": "cancelled"}
        except (LockLost, StaleToken) as exc:  # another coordinator owns the job now
            log.warning("job %s (%s) stopped: it lost its lock: %s", job.id, job.kind, exc)
        except Exception as exc:  # the job boundary: report every failure on the job record
            log.exception("job %s (%s) failed", job.id, job.kind)
            final = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        else:
            final = {"status": "succeeded", "result": result or {}}
        try:
            if final is not None:
                self.store.update_job(job.id, fence=fence, finished_at=self.clock(), **final)
        except StaleToken as exc:
            log.warning("job %s (%s): final write refused: %s", job.id, job.kind, exc)
        except LabelloopError:
            log.exception("job %s (%s): final write failed", job.id, job.kind)
        finally:
            self._cancel.pop(job.id, None)
            self._held.pop(job.id, None)
            try:
                self.store.release_lock(name, self.owner)
            except LabelloopError:
                log.exception("releasing the lock of job %s failed (it expires by itself)", job.id)
            if then is not None and not self._stop.is_set():
                try:
                    then()
                except LabelloopError:
                    log.exception("what follows job %s (%s) failed", job.id, job.kind)

    def _pick_up_cancel(self, job_id: str) -> None:
        event = self._cancel.get(job_id)
        try:
            if event is not None and self.store.get_job(job_id).cancel_requested:
                event.set()
        except LabelloopError:
            log.exception("reading job %s for a cancel request failed", job_id)

    def cancel(self, job_id: str) -> Job:
        """Ask for the job to stop, wherever it runs (see :func:`request_cancel`)."""
        job = request_cancel(self.store, job_id)
        event = self._cancel.get(job_id)
        if event is not None:  # it runs here: no need to wait for the flag to be read back
            event.set()
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        fut = self._futures.get(job_id)
        if fut is not None:
            fut.result(timeout=timeout)
        return self.store.get_job(job_id)

    def shutdown(self) -> None:
        for event in self._cancel.values():
            event.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._stop.set()
        self._beat.join(timeout=5)


def request_cancel(store: Store, job_id: str) -> Job:
    """Flag a queued or running job for cancellation on the shared record; the replica running
    it stops it at its next progress report. ``Conflict`` if it already ended."""
    job = store.get_job(job_id)
    if job.status not in ACTIVE_JOB_STATES:
        raise Conflict(f"job {job_id} already ended ({job.status})")
    return store.update_job(job_id, cancel_requested=True)
