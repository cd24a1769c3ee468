"""Ray executor: the same pure functions as the in-process executor, shipped to Ray workers.

LF application is sharded by rows; shards are concatenated in order, so the vote matrix equals the
in-process one exactly. Tasks are retried when a worker dies (``max_retries``); a task that keeps
failing raises, and the job that ran it ends as failed with the reason.

Registered code runs in Ray workers under :mod:`workers.limits` (each LF, each assertion), after
:func:`workers.sandbox.harden_worker`. A local instance this executor starts gets a scrubbed
environment (no labelloop secret reaches a Ray process) and no dashboard, and it is shut down
with the executor; a cluster joined through ``address`` is left alone.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labeling.apply import ApplyResult
from workers.executor import Executor
from workers.lf_tasks import apply_guarded, merge_results
from workers.limits import ENV_VAR, Limits
from workers.sandbox import protect_process, scrubbed_environ

__all__ = ["RayExecutor"]

log = logging.getLogger(__name__)

SHARD_MAX = 50_000  # rows per LF-application task, at most


def _shards(n: int, parts: int, min_rows: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, n // max(min_rows, 1)))
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


def _no_failure_signal_handler() -> None:
    """Keep Ray's C++ failure-signal handler out of this process: it also takes SIGTERM and, on
    ``labelloop serve``'s shutdown, ended the process (SIGABRT) before Ray was shut down, which
    left Ray's agents running. Ray reads the switch once, from its constants."""
    os.environ["RAY_DISABLE_FAILURE_SIGNAL_HANDLER"] = "1"
    with contextlib.suppress(ImportError, AttributeError):
        from ray._private import ray_constants

        ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True


def _ray_descendants() -> dict[int, str]:
    """This process's descendants that are Ray processes: pid -> start time (``/proc`` stat),
    which tells a process from a later one given the same pid."""
    found: dict[int, str] = {}
    todo = [os.getpid()]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                if child not in found:
                    found[child] = _cmdline(child)
                    todo.append(child)
    return {pid: _started(pid) for pid, cmd in found.items() if "ray" in cmd and _started(pid)}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _started(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    return "" if stat[0] == "Z" else stat[19]


def _end(procs: dict[int, str], grace_s: float = 5.0) -> int:
    """SIGTERM those of ``procs`` still running (same pid, same start time), then SIGKILL
    after ``grace_s``; returns how many were still running."""
    def running() -> list[int]:
        return [pid for pid, t in procs.items() if _started(pid) == t]

    left = len(running())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in running():
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while running() and time.monotonic() < deadline:
            time.sleep(0.1)
    return left


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, *, num_cpus: int = 2, address: str | None = None, shard_rows: int = 5_000,
                 max_retries: int = 3, limits: Limits | None = None) -> None:
        self.requested_cpus, self.address = num_cpus, address
        self.shard_rows, self._max_retries = shard_rows, max_retries
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._ray = None
        self._started_here = False
        self._procs: dict[int, str] = {}

    def _connect(self):
        """Start (or join, through ``address`` / RAY_ADDRESS) Ray on first use, not at start-up."""
        with self._lock:
            if self._ray is None:
                import ray

                protect_process()
                _no_failure_signal_handler()
                runtime_env = {"env_vars": {ENV_VAR: self.limits.encode()}}
                if not ray.is_initialized():
                    if self.address:
                        ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False,
                                 include_dashboard=False, runtime_env=runtime_env)
                    else:
                        # what Ray's processes inherit; without usage stats Ray starts no
                        # dashboard process at all (include_dashboard=False alone still does)
                        with scrubbed_environ(RAY_USAGE_STATS_ENABLED="0"):
                            ray.init(num_cpus=self.requested_cpus, ignore_reinit_error=True,
                                     include_dashboard=False, log_to_driver=False,
                                     runtime_env=runtime_env)
                        self._started_here = True
                        self._procs = _ray_descendants()
                self.num_cpus = int(ray.cluster_resources().get("CPU", self.requested_cpus))
                self._apply = ray.remote(max_retries=self._max_retries,
                                         retry_exceptions=False)(apply_guarded)
                self._ray = ray
        return self._ray

    def apply_lfs(self, specs, frame: pd.DataFrame, n_classes: int, *, progress=None) -> ApplyResult:
        ray = self._connect()
        # a few shards per CPU balance the load; at most SHARD_MAX rows each keeps progress moving
        parts = max(4 * self.num_cpus, -(-len(frame) // SHARD_MAX))
        bounds = _shards(len(frame), parts, self.shard_rows) or [(0, 0)]
        specs_ref = ray.put(list(specs))
        refs = [self._apply.remote(specs_ref, frame.iloc[a:b], n_classes, self.limits)
                for a, b in bounds]
        results: dict[int, ApplyResult] = {}
        pending = {ref: k for k, ref in enumerate(refs)}
        done_rows = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            k = pending.pop(ready[0])
            results[k] = ray.get(ready[0])
            done_rows += bounds[k][1] - bounds[k][0]
            if progress is not None:
                progress(done_rows, len(frame))
        return merge_results([results[k] for k in range(len(bounds))], len(specs))

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        ray = self._connect()
        remote = ray.remote(max_retries=self._max_retries)(fn)
        return ray.get(remote.remote(*args, **kwargs))

    def shutdown(self) -> None:
        """Leave a shared cluster alone; stop only a local instance this executor started (Ray's
        own agents with it)."""
        with self._lock:
            if self._ray is not None and self._started_here:
                started = {**self._procs, **_ray_descendants()}
                self._ray.shutdown()
                left = _end(started)  # what outlived it (Ray's agents can)
                log.info("ray shut down; %d of its %d processes ended after", left, len(started))
            self._ray, self._started_here = None, False
