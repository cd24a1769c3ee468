"""Applying LFs to a frame of items: fault-tolerant, per-LF fault counts, int8 votes.

An LF that raises on an item abstains there; the fault is counted per LF with its first message.
A vote that is not an int in -1..K-1 is a fault too. A batch LF that raises falls back to single
rows, so only the failing rows abstain. Each vote depends on its row alone, never on how the rows
were split: a worker may apply a shard and the shards concatenate to the whole.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from labeling.errors import InvalidInput
from labeling.lf import ABSTAIN, BatchLF, is_lf

__all__ = ["ApplyResult", "Row", "apply_lfs", "row_points"]


@dataclass
class ApplyResult:
    """Votes and faults of m LFs on n items."""

    votes: np.ndarray  # (n, m) int8, -1 = abstain
    faults: np.ndarray  # (m,) int64: items on which the LF raised or returned an invalid vote
    first_errors: list[str | None]  # (m,) "ExcType: message (item <id>)" of each LF's first fault


def _column_values(column: pd.Series) -> list:
    """A column as a Python list; a missing string (NaN in pandas' string dtype) becomes None, as
    LF authors expect from ``x.text``."""
    values = column.tolist()
    if pd.api.types.is_string_dtype(column) or column.dtype == object:
        values = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    return values


class Row(SimpleNamespace):
    """One item as a row LF sees it: columns as attributes (``x.text``) and as keys
    (``x["text"]``, ``x.get("lang")``, ``"lang" in x``), as on the pandas Series Snorkel passes,
    so LFs written for Snorkel run unchanged. Preprocessors may copy it and set attributes."""

    def __getitem__(self, key: str) -> Any:
        try:
            return self.__dict__[key]
        except KeyError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        self.__dict__[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__

    def get(self, key: str, default: Any = None) -> Any:
        return self.__dict__.get(key, default)

    def keys(self):
        return self.__dict__.keys()


def row_points(frame: pd.DataFrame) -> list[Row]:
    """One data point per row, the columns as attributes and keys (:class:`Row`: what Snorkel
    row LFs and their preprocessors read, copy and extend). Built column-wise from Python lists.

    Parameters
    ----------
    frame : n rows

    Returns
    -------
    n :class:`Row`, attributes named after the columns.
    """
    cols = [str(c) for c in frame.columns]
    values = [_column_values(frame[c]) for c in frame.columns]
    return [Row(**dict(zip(cols, row, strict=True))) for row in zip(*values, strict=True)]


def _scalar_vote(value: Any, n_classes: int) -> int | None:
    """The vote ``value`` stands for, or None when it is not an int (or integral float) in range."""
    if isinstance(value, bool | np.bool_):
        return None
    integral = isinstance(value, numbers.Integral) or (
        isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer())
    return int(value) if integral and ABSTAIN <= int(value) < n_classes else None


def _bad_vote(value: Any, n_classes: int) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return (f"InvalidVote: returned {value!r} ({type(value).__name__}); a vote is an int "
            f"in -1..{n_classes - 1}")


def _array_votes(out: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(votes int64, valid bool) for a 1-d output, element by element as :func:`_scalar_vote`."""
    kind = out.dtype.kind
    if kind in "iuf":
        a = out.astype(np.float64)
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(a) & (a == np.round(a)) & (a >= ABSTAIN) & (a < n_classes)
        return np.where(valid, a, ABSTAIN).astype(np.int64), valid
    if kind == "O":
        votes = [_scalar_vote(v, n_classes) for v in out.tolist()]
        valid = np.array([v is not None for v in votes], dtype=bool)
        return np.array([ABSTAIN if v is None else v for v in votes], dtype=np.int64), valid
    return np.full(len(out), ABSTAIN, dtype=np.int64), np.zeros(len(out), dtype=bool)  # bool, str


class _Column:
    """Votes and faults of one LF."""

    def __init__(self, n: int) -> None:
        self.votes = np.full(n, ABSTAIN, dtype=np.int8)
        self.faults = 0
        self.first: str | None = None

    def fault(self, message: str, item_id: Any) -> None:
        self.faults += 1
        if self.first is None:
            self.first = f"{message} (item {item_id})"


def _apply_row_lf(lf, points: list[Row], ids: list, n_classes: int,
                  col: _Column) -> None:
    votes = [ABSTAIN] * len(points)
    for i, x in enumerate(points):
        try:
            value = lf(x)
        except Exception as exc:  # noqa: BLE001 - LF code may raise anything; it abstains and is counted
            col.fault(f"{type(exc).__name__}: {exc}", ids[i])
            continue
        if type(value) is int and ABSTAIN <= value < n_classes:  # the common case, fast
            votes[i] = value
            continue
        vote = _scalar_vote(value, n_classes)
        if vote is None:
            col.fault(_bad_vote(value, n_classes), ids[i])
        else:
            votes[i] = vote
    col.votes[:] = votes


def _batch_output(lf: BatchLF, frame: pd.DataFrame) -> np.ndarray:
    out = np.asarray(lf(frame.copy(deep=False)))  # a shallow copy: new columns stay in the LF
    if out.shape == (len(frame), 1):
        out = out.reshape(-1)
    if out.shape != (len(frame),):
        raise ValueError(f"returned shape {out.shape} for {len(frame)} rows")
    return out


def _apply_batch_lf(lf: BatchLF, frame: pd.DataFrame, ids: list, n_classes: int,
                    col: _Column) -> None:
    try:
        out = _batch_output(lf, frame)
    except Exception:  # noqa: BLE001 - some row broke the batch: rerun row by row
        for i in range(len(frame)):
            try:
                one = _batch_output(lf, frame.iloc[i : i + 1])
            except Exception as exc:  # noqa: BLE001 - counted per LF, like row LFs
                col.fault(f"{type(exc).__name__}: {exc}", ids[i])
                continue
            vote, valid = _array_votes(one, n_classes)
            if valid[0]:
                col.votes[i] = vote[0]
            else:
                col.fault(_bad_vote(one[0], n_classes), ids[i])
        return
    votes, valid = _array_votes(out, n_classes)
    col.votes[:] = votes
    for i in np.flatnonzero(~valid):
        col.fault(_bad_vote(out[i], n_classes), ids[i])


def apply_lfs(lfs: Sequence, frame: pd.DataFrame, n_classes: int, *,
              progress: bool = False,
              guard: Callable[[Callable[[], None]], str | None] | None = None) -> ApplyResult:
    """Apply ``lfs`` to every row of ``frame``.

    Parameters
    ----------
    lfs : m Snorkel LabelingFunctions and/or BatchLFs (VoteColumnLF included)
    frame : n rows: ``id`` (else the index names items in messages), ``text`` if any, feature and
        metadata columns, optional ``weak_labels``
    n_classes : K; votes must lie in -1..K-1, anything else is a fault and abstains
    progress : a tqdm bar over the LFs, on stderr
    guard : runs each LF's application (a thunk) and returns None, or the reason it stopped it
        (a limit); such an LF abstains on every row, each a fault with that reason

    Returns
    -------
    ApplyResult with votes (n, m) int8, faults (m,) int64 and first_errors (m,).
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) \
            or not 2 <= n_classes <= 127:
        raise InvalidInput(f"n_classes must be an int in 2..127 (votes are int8), "
                           f"got {n_classes!r}")
    lfs = list(lfs)
    bad = [lf for lf in lfs if not is_lf(lf)]
    if bad:
        raise InvalidInput(f"lfs must be Snorkel LabelingFunctions or BatchLFs, got {bad[0]!r}")
    n = len(frame)
    ids = frame["id"].tolist() if "id" in frame.columns else frame.index.tolist()
    columns = [_Column(n) for _ in lfs]
    points: list[Row] | None = None
    if n:
        from tqdm import tqdm

        for lf, col in tqdm(zip(lfs, columns, strict=True), total=len(lfs), unit="lf",
                            leave=False, disable=not progress):
            if not isinstance(lf, BatchLF) and points is None:  # once, for every row LF
                points = row_points(frame)

            def run(lf=lf, col=col, points=points) -> None:
                if isinstance(lf, BatchLF):
                    _apply_batch_lf(lf, frame, ids, n_classes, col)
                else:
                    _apply_row_lf(lf, points, ids, n_classes, col)

            stopped = run() if guard is None else guard(run)
            if stopped is not None:
                col.votes[:] = ABSTAIN
                col.faults, col.first = n, f"{stopped} (item {ids[0]})"
    votes = np.stack([c.votes for c in columns], axis=1) if columns else np.zeros((n, 0), np.int8)
    return ApplyResult(votes, np.array([c.faults for c in columns], dtype=np.int64),
                       [c.first for c in columns])
