"""LF application as an executor task: LF source travels as text and is loaded where it runs.

Kept apart from the round's compute so a worker that only applies LFs imports only what that
needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from labeling.apply import ApplyResult, apply_lfs
from labeling.errors import LFLoadError, UserCodeFault
from labeling.lf import VoteColumnLF, load_lfs_from_source
from workers.limits import LimitExceeded, Limits, current, limited

__all__ = ["LFSpec", "apply_guarded", "apply_specs", "faulted", "load_lfs", "merge_results"]

LFSpec = tuple[str, str, str]  # (name, kind "source" | "votes", Python source or vote column)


@lru_cache(maxsize=64)
def _load_source(source: str) -> dict[str, Any]:
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    return {lf.name: lf for lf in load_lfs_from_source(source, filename=f"<lfs {digest}>")}


def load_lfs(specs: Sequence[LFSpec]) -> list:
    """LF objects for ``specs`` in order; each source is loaded once per process."""
    out = []
    for name, kind, source in specs:
        if kind == "votes":
            out.append(VoteColumnLF(name, int(source)))
            continue
        by_name = _load_source(source)
        if name not in by_name:
            raise LFLoadError(f"LF {name!r} is no longer defined in its registered source")
        out.append(by_name[name])
    return out


def apply_specs(specs: Sequence[LFSpec], frame: pd.DataFrame, n_classes: int) -> ApplyResult:
    """Load and apply LFs: what every executor runs, on the whole frame or on one shard."""
    return apply_lfs(load_lfs(specs), frame, n_classes)


def faulted(n_lfs: int, frame: pd.DataFrame, message: str) -> ApplyResult:
    """``n_lfs`` LFs that abstain on every row of ``frame``, each row a fault (``message``)."""
    first = frame["id"].iloc[0] if "id" in frame.columns and len(frame) else (
        frame.index[0] if len(frame) else None)
    return ApplyResult(np.full((len(frame), n_lfs), -1, np.int8),
                       np.full(n_lfs, len(frame), np.int64),
                       [f"{message} (item {first})" if len(frame) else None] * n_lfs)


def apply_guarded(specs: Sequence[LFSpec], frame: pd.DataFrame, n_classes: int,
                  limits: Limits | None = None) -> ApplyResult:
    """:func:`apply_specs` with each LF under ``limits`` (default: this worker's); an LF past a
    time limit is faulted on every row of ``frame``, the others are applied as usual."""
    from workers.sandbox import harden_worker

    harden_worker()
    limits = current() if limits is None else limits
    try:
        with limited(limits):
            lfs = load_lfs(specs)
    except LimitExceeded as exc:
        raise UserCodeFault(f"loading the registered LFs: {exc}") from None

    def guard(run) -> str | None:
        try:
            with limited(limits):
                run()
        except LimitExceeded as exc:
            return str(exc)
        return None

    return apply_lfs(lfs, frame, n_classes, guard=guard)


def merge_results(parts: Sequence[ApplyResult], n_lfs: int) -> ApplyResult:
    """The results of consecutive row blocks, in order, as one: votes stacked, faults summed,
    each LF's first error the first block's that has one."""
    if len(parts) == 1:
        return parts[0]
    return ApplyResult(
        votes=np.concatenate([p.votes for p in parts]) if parts else np.zeros((0, n_lfs), np.int8),
        faults=np.sum([p.faults for p in parts], axis=0).astype(np.int64) if parts
        else np.zeros(n_lfs, np.int64),
        first_errors=[next((p.first_errors[j] for p in parts if p.first_errors[j]), None)
                      for j in range(n_lfs)],
    )
