"""How work runs: one executor interface, an in-process executor and (workers.ray_executor) Ray.

Executors receive plain arrays and frames and return arrays; they never touch the store.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from labeling.apply import ApplyResult
from workers.lf_tasks import LFSpec, apply_specs, merge_results

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
    """Runs everything in the calling thread; for tests, simulations and tiny setups."""

    name = "inprocess"

    def apply_lfs(self, specs, frame, n_classes, *, progress=None):
        """In blocks of :data:`APPLY_BLOCK` rows, reporting after each (a job can be cancelled
        between blocks); the votes are those of one pass, as with Ray's shards."""
        if len(frame) <= APPLY_BLOCK:
            parts = [apply_specs(specs, frame, n_classes)]
        else:
            parts = []
            for start in range(0, len(frame), APPLY_BLOCK):
                parts.append(apply_specs(specs, frame.iloc[start : start + APPLY_BLOCK], n_classes))
                if progress is not None:
                    progress(min(start + APPLY_BLOCK, len(frame)), len(frame))
        if progress is not None:
            progress(len(frame), len(frame))
        return merge_results(parts, len(specs))

    def call(self, fn, *args, **kwargs):
        return fn(*args, **kwargs)


def make_executor(kind: str, *, num_cpus: int = 2, address: str | None = None) -> Executor:
    if kind == "inprocess":
        return InProcessExecutor()
    if kind == "ray":
        from workers.ray_executor import RayExecutor

        return RayExecutor(num_cpus=num_cpus, address=address)
    raise ValueError(f"unknown executor {kind!r}; expected 'inprocess' or 'ray'")
