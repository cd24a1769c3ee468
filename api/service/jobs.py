"""Background jobs: ids, kind, status, progress; one queued or running job of a kind per project.

The store enforces "one of a kind"; this runner executes jobs on a small thread pool so no request
ever waits for one, and records progress and failures in the store so any replica can report them.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from api.storage.base import Store
from api.storage.records import Job
from labeling.errors import Conflict, InvalidInput, NotFound

__all__ = ["JobRunner", "JobContext", "JOB_KINDS"]

log = logging.getLogger(__name__)
JOB_KINDS = ("round", "apply_lfs", "pseudo_label")


class Cancelled(Exception):
    """Raised inside a job when cancellation was asked for."""


class JobContext:
    """Handed to a job function: report progress, check for cancellation."""

    def __init__(self, store: Store, job_id: str, cancel: threading.Event) -> None:
        self.store, self.job_id, self._cancel = store, job_id, cancel
        self._last = 0.0

    def progress(self, done: int, total: int, message: str = "") -> None:
        if self._cancel.is_set():
            raise Cancelled()
        now = time.monotonic()
        if now - self._last > 0.2 or done >= total:
            self.store.update_job(self.job_id, done=done, total=total, message=message)
            self._last = now


class JobRunner:
    def __init__(self, store: Store, *, workers: int = 2, clock: Callable[[], float] = time.time):
        self.store, self.clock = store, clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="labelloop-job")
        self._cancel: dict[str, threading.Event] = {}
        self._futures: dict[str, Future] = {}

    def submit(self, project_id: str, kind: str, fn: Callable[[JobContext], dict[str, Any]]) -> Job:
        """Create the job record (``Conflict`` if one of this kind runs) and start it."""
        if kind not in JOB_KINDS:
            raise InvalidInput(f"job kind must be one of {list(JOB_KINDS)}, got {kind!r}")
        job = self.store.create_job(
            Job(f"job-{secrets.token_hex(6)}", project_id, kind, "queued", self.clock())
        )
        cancel = threading.Event()
        self._cancel[job.id] = cancel
        self._futures[job.id] = self._pool.submit(self._run, job, fn, cancel)
        return job

    def try_submit(self, project_id: str, kind: str, fn) -> Job | None:
        try:
            return self.submit(project_id, kind, fn)
        except Conflict:
            return None

    def _run(self, job: Job, fn, cancel: threading.Event) -> None:
        self.store.update_job(job.id, status="running", started_at=self.clock())
        try:
            result = fn(JobContext(self.store, job.id, cancel))
        except Cancelled:
            self.store.update_job(job.id, status="cancelled", finished_at=self.clock())
        except Exception as exc:  # the job boundary: report every failure on the job record
            log.exception("job %s (%s) failed", job.id, job.kind)
            self.store.update_job(
                job.id, status="failed", finished_at=self.clock(),
                error=f"{type(exc).__name__}: {exc}",
            )
        else:
            self.store.update_job(
                job.id, status="succeeded", finished_at=self.clock(), result=result or {}
            )
        finally:
            self._cancel.pop(job.id, None)

    def cancel(self, job_id: str) -> Job:
        job = self.store.get_job(job_id)
        event = self._cancel.get(job_id)
        if job.status not in ("queued", "running"):
            raise Conflict(f"job {job_id} already ended ({job.status})")
        if event is None:
            raise NotFound(f"job {job_id} is not running in this process")
        event.set()
        return self.store.get_job(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        fut = self._futures.get(job_id)
        if fut is not None:
            fut.result(timeout=timeout)
        return self.store.get_job(job_id)

    def shutdown(self) -> None:
        for event in self._cancel.values():
            event.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
