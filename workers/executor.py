"""How work runs: one executor interface, a local executor and (workers.ray_executor) Ray.

Executors receive plain arrays and frames and return arrays; they never touch the store. Neither
runs registered code (LFs, assertions) in the coordinator's process: the local executor ships it
to the worker processes of :mod:`workers.sandbox`, the Ray executor to Ray workers.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from labeling.apply import ApplyResult
from labeling.errors import LFLoadError, UserCodeFault
from workers.lf_tasks import LFSpec, apply_guarded, faulted, merge_results
from workers.limits import Limits
from workers.sandbox import GRACE_S, NO_LIMITS, Sandbox, shared

__all__ = ["APPLY_BLOCK", "Executor", "InProcessExecutor", "make_executor"]

APPLY_BLOCK = 20_000  # rows per in-process LF-application block

Progress = Callable[[int, int], None]


class Executor(abc.ABC):
    """Runs the pure functions of ``labeling`` and ``strategies`` somewhere."""

    name: str = "abstract"

    @abc.abstractmethod
    def apply_lfs(
        self, specs: Sequence[LFSpec], frame: pd.DataFrame, n_classes: int, *,
        progress: Progress | None = None,
    ) -> ApplyResult:
        """Apply the LFs ``specs`` describe to every row of ``frame``; the same votes whatever
        the executor (LF source travels as text and is loaded where it runs)."""

    @abc.abstractmethod
    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one pure function and return its result."""

    def shutdown(self) -> None:
        """Free workers."""


class InProcessExecutor(Executor):
    """Runs on this machine, without Ray: for tests, simulations and tiny setups. Each call runs
    in a worker process of a :class:`~workers.sandbox.Sandbox` (this process's shared one unless
    given), so registered code never runs in the caller's process."""

    name = "inprocess"

    def __init__(self, sandbox: Sandbox | None = None) -> None:
        self._sandbox = sandbox

    @property
    def sandbox(self) -> Sandbox:
        return self._sandbox or shared()

    def apply_lfs(self, specs, frame, n_classes, *, progress=None):
        """In blocks of :data:`APPLY_BLOCK` rows, reporting after each (a job can be cancelled
        between blocks); the votes are those of one pass, as with Ray's shards. An LF over its
        limits in one block is faulted there and in every later block (it is not run again)."""
        specs = list(specs)
        over: dict[int, str] = {}
        parts = []
        for start in range(0, max(len(frame), 1), APPLY_BLOCK):
            parts.append(self._apply_block(specs, frame.iloc[start : start + APPLY_BLOCK],
                                           n_classes, over))
            if progress is not None and len(frame) > APPLY_BLOCK:
                progress(min(start + APPLY_BLOCK, len(frame)), len(frame))
        if progress is not None:
            progress(len(frame), len(frame))
        return merge_results(parts, len(specs))

    def _apply_block(self, specs: list[LFSpec], block: pd.DataFrame, n_classes: int,
                     over: dict[int, str]) -> ApplyResult:
        """One block: every LF not yet over its limits in one call; when that call is stopped
        (an LF stuck where a signal cannot reach it, or one that killed the worker), each LF alone,
        to tell which."""
        if len(block) == 0:
            return ApplyResult(np.zeros((0, len(specs)), np.int8), np.zeros(len(specs), np.int64),
                               [None] * len(specs))
        limits: Limits = self.sandbox.limits
        live = [j for j in range(len(specs)) if j not in over]
        cols: dict[int, ApplyResult] = {}
        if live:
            per_lf = (limits.wall_s or 0) + GRACE_S
            try:
                result = self._run_apply([specs[j] for j in live], block, n_classes, limits,
                                         per_lf * len(live) if limits.wall_s else None)
                for c, j in enumerate(live):
                    cols[j] = _column(result, c)
            except UserCodeFault:
                for j in live:
                    try:
                        cols[j] = self._run_apply([specs[j]], block, n_classes, limits,
                                                  per_lf if limits.wall_s else None)
                    except UserCodeFault as exc:
                        over[j] = str(exc)
        for j, message in over.items():
            cols[j] = faulted(1, block, message)
        return ApplyResult(np.concatenate([cols[j].votes for j in range(len(specs))], axis=1),
                           np.concatenate([cols[j].faults for j in range(len(specs))]),
                           [cols[j].first_errors[0] for j in range(len(specs))])

    def _run_apply(self, specs, block, n_classes, limits, timeout):
        result = self.sandbox.run(apply_guarded, specs, block, n_classes, limits,
                                  limits=NO_LIMITS, timeout=timeout)
        if not isinstance(result, ApplyResult):
            raise LFLoadError(f"LF application returned {type(result).__name__}")
        return result

    def call(self, fn, *args, **kwargs):
        """``fn`` in a sandbox worker, without time limits (registered code inside it, such as
        a round's assertions, runs under its own)."""
        return self.sandbox.run(fn, *args, limits=NO_LIMITS, timeout=None, **kwargs)


def _column(result: ApplyResult, c: int) -> ApplyResult:
    return ApplyResult(result.votes[:, c : c + 1], result.faults[c : c + 1], [result.first_errors[c]])


def make_executor(kind: str, *, num_cpus: int = 2, address: str | None = None,
                  limits: Limits | None = None) -> Executor:
    """``limits`` (registered code's, per call) go to the Ray executor; the local one uses
    those of the sandbox it runs in."""
    if kind == "inprocess":
        return InProcessExecutor()
    if kind == "ray":
        from workers.ray_executor import RayExecutor

        return RayExecutor(num_cpus=num_cpus, address=address, limits=limits)
    raise ValueError(f"unknown executor {kind!r}; expected 'inprocess' or 'ray'")
