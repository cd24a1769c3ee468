"""Applying LFs to a frame of items: fault-tolerant, per-LF fault counts, int8 votes.

The result depends only on the rows, never on how they were split: a worker may apply a shard and
the shards concatenate to the whole (the first error of an LF is the one of its first failing row).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd

from labeling.lf import ABSTAIN, BatchLF

__all__ = ["ApplyResult", "apply_lfs", "row_points"]


@dataclass
class ApplyResult:
    votes: np.ndarray  # (n, m) int8, -1 = abstain
    faults: np.ndarray  # (m,) int64, rows on which the LF raised or returned an invalid vote
    first_errors: list[str | None]  # (m,) first fault message of each LF


def row_points(frame: pd.DataFrame) -> list[SimpleNamespace]:
    """One data point per row with the columns as attributes (what Snorkel row LFs read)."""
    cols = [str(c) for c in frame.columns]
    values = [frame[c].tolist() for c in frame.columns]
    return [SimpleNamespace(**dict(zip(cols, row, strict=True))) for row in zip(*values, strict=True)]


def _check(value, n_classes: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return f"returned {value!r}, expected an int in -1..{n_classes - 1}"
    if not ABSTAIN <= value < n_classes:
        return f"returned {value}, expected -1..{n_classes - 1}"
    return None


class _Column:
    """Votes and faults of one LF, filled row by row."""

    def __init__(self, n: int) -> None:
        self.votes = np.full(n, ABSTAIN, dtype=np.int8)
        self.faults = 0
        self.first: str | None = None

    def fault(self, message: str, item_id) -> None:
        self.faults += 1
        if self.first is None:
            self.first = f"{message} (item {item_id})"

    def put(self, i: int, value, n_classes: int, item_id) -> None:
        """Store a valid vote, or count an invalid one as a fault (it abstains)."""
        problem = _check(value, n_classes)
        if problem is None:
            self.votes[i] = value
        else:
            self.fault(f"ValueError: {problem}", item_id)


def _apply_row_lf(lf, points: list[SimpleNamespace], ids: list, n_classes: int, col: _Column) -> None:
    for i, x in enumerate(points):
        try:
            value = lf(x)
        except Exception as exc:  # an LF that raises abstains on that item; counted per LF
            col.fault(f"{type(exc).__name__}: {exc}", ids[i])
            continue
        col.put(i, value, n_classes, ids[i])


def _apply_batch_lf(lf: BatchLF, frame: pd.DataFrame, ids: list, n_classes: int, col: _Column) -> None:
    try:
        out = np.asarray(lf(frame))
        if out.shape != (len(frame),):
            raise ValueError(f"returned shape {out.shape}, expected ({len(frame)},)")
    except Exception:  # fall back to single rows so only the failing rows abstain
        for i in range(len(frame)):
            try:
                one = np.asarray(lf(frame.iloc[i : i + 1])).reshape(-1)
                if one.shape != (1,):
                    raise ValueError(f"returned {one.size} votes for one row")
                value = one[0].item()
            except Exception as exc:  # counted per LF, like row LFs
                col.fault(f"{type(exc).__name__}: {exc}", ids[i])
                continue
            col.put(i, value, n_classes, ids[i])
        return
    if out.dtype.kind in "iu":
        values = out.astype(np.int64)
        valid = (values >= ABSTAIN) & (values < n_classes)
    elif out.dtype.kind == "f":
        valid = np.isfinite(out) & (out == np.round(out)) & (out >= ABSTAIN) & (out < n_classes)
        values = np.where(valid, out, ABSTAIN).astype(np.int64)
    else:  # bools, strings, objects are not votes
        valid = np.zeros(len(frame), dtype=bool)
        values = np.full(len(frame), ABSTAIN, dtype=np.int64)
    col.votes[valid] = values[valid]
    for i in np.flatnonzero(~valid):
        col.fault(f"ValueError: returned {out[i]!r}, expected an int in -1..{n_classes - 1}", ids[i])


def apply_lfs(lfs: Sequence, frame: pd.DataFrame, n_classes: int, *, progress: bool = False) -> ApplyResult:
    """Apply ``lfs`` to every row of ``frame``.

    Parameters
    ----------
    lfs : m Snorkel LabelingFunctions and/or BatchLFs
    frame : n rows with ``id`` and the item columns
    n_classes : votes must lie in -1..n_classes-1; anything else is a fault (and abstains)

    Returns
    -------
    ApplyResult with votes (n, m) int8.
    """
    n = len(frame)
    ids = frame["id"].tolist() if "id" in frame.columns else list(range(n))
    columns = [_Column(n) for _ in lfs]
    points: list[SimpleNamespace] | None = None
    iterator = enumerate(lfs)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(lfs), unit="lf", leave=False)
    for j, lf in iterator:
        if isinstance(lf, BatchLF):
            _apply_batch_lf(lf, frame, ids, n_classes, columns[j])
        else:
            if points is None:
                points = row_points(frame)
            _apply_row_lf(lf, points, ids, n_classes, columns[j])
    votes = np.stack([c.votes for c in columns], axis=1) if columns else np.zeros((n, 0), np.int8)
    return ApplyResult(votes, np.array([c.faults for c in columns], dtype=np.int64),
                       [c.first for c in columns])
