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

import itertools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from labeling.apply import ApplyResult
from workers.executor import Executor
from workers.lf_tasks import apply_guarded, merge_results
from workers.limits import ENV_VAR, Limits
from workers.sandbox import protect_process, scrubbed_environ

__all__ = ["RayExecutor"]

SHARD_MAX = 50_000  # rows per LF-application task, at most


def _shards(n: int, parts: int, min_rows: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, n // max(min_rows, 1)))
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


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

    def _connect(self):
        """Start (or join, through ``address`` / RAY_ADDRESS) Ray on first use, not at start-up."""
        with self._lock:
            if self._ray is None:
                import ray

                protect_process()
                runtime_env = {"env_vars": {ENV_VAR: self.limits.encode()}}
                if not ray.is_initialized():
                    if self.address:
                        ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False,
                                 include_dashboard=False, runtime_env=runtime_env)
                    else:
                        with scrubbed_environ():  # what Ray's processes inherit
                            ray.init(num_cpus=self.requested_cpus, ignore_reinit_error=True,
                                     include_dashboard=False, log_to_driver=False,
                                     runtime_env=runtime_env)
                        self._started_here = True
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
                self._ray.shutdown()
            self._ray, self._started_here = None, False
