"""Labeling functions: Snorkel row LFs as they are, batch LFs, and file-vote columns.

* A Snorkel :class:`snorkel.labeling.LabelingFunction` (``@labeling_function()``, preprocessors,
  resources) is a *row LF*: it is called with one data point whose attributes are the item's
  columns (``x.text``, feature names, metadata keys, ``x.id``).
* A :class:`BatchLF` (``@batch_lf()``) receives a whole :class:`pandas.DataFrame` batch and returns
  one vote per row; vectorised LFs run tens of times faster.
* A :class:`VoteColumnLF` replays precomputed votes (WRENCH ``weak_labels``, vote columns).

Every LF has a version from its name, kind and source (:func:`lf_version`); votes are cached per
(version, item), so a changed LF re-runs alone.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from labeling.errors import InvalidInput, LFLoadError
from labeling.source_module import function_source, load_source

__all__ = [
    "ABSTAIN",
    "BatchLF",
    "VoteColumnLF",
    "batch_lf",
    "is_lf",
    "lf_version",
    "load_lfs_from_module",
    "load_lfs_from_source",
]

ABSTAIN = -1


class BatchLF:
    """An LF over a whole batch: ``f(frame) -> array-like of int``, one vote per row.

    Parameters
    ----------
    name : unique LF name
    f : takes an (n rows) :class:`pandas.DataFrame`, returns n ints in -1..K-1
    """

    def __init__(self, name: str, f: Callable[[pd.DataFrame], Any]) -> None:
        self.name, self.f = name, f

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.f(frame))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def batch_lf(name: str | None = None) -> Callable[[Callable[[pd.DataFrame], Any]], BatchLF]:
    """Decorator: ``@batch_lf()`` over ``def f(frame: pd.DataFrame) -> array of int``; the LF is
    named ``name`` or the function's name."""

    def wrap(f: Callable[[pd.DataFrame], Any]) -> BatchLF:
        return BatchLF(name or f.__name__, f)

    return wrap


class VoteColumnLF(BatchLF):
    """Column ``index`` of the precomputed votes in the frame's ``weak_labels`` column (a tuple or
    list per row). A row without votes, or too short a tuple, abstains."""

    def __init__(self, name: str, index: int) -> None:
        super().__init__(name, self._votes)
        self.index = index

    def _votes(self, frame: pd.DataFrame) -> np.ndarray:
        if "weak_labels" not in frame.columns:
            return np.full(len(frame), ABSTAIN, dtype=np.int64)
        j = self.index

        def one(v: Any) -> int:
            if v is None or (isinstance(v, float) and math.isnan(v)) or j >= len(v):
                return ABSTAIN
            return v[j]

        return np.fromiter((one(v) for v in frame["weak_labels"]), dtype=np.int64, count=len(frame))


def is_lf(obj: Any) -> bool:
    """True for the LF kinds :func:`labeling.apply.apply_lfs` runs."""
    return isinstance(obj, BatchLF) or _is_snorkel_lf(obj)


def _is_snorkel_lf(obj: Any) -> bool:
    """A Snorkel LabelingFunction; snorkel is never imported here (an object can only be one
    when snorkel is loaded already), so importing labelloop stays fast."""
    snorkel = sys.modules.get("snorkel.labeling")
    return snorkel is not None and isinstance(obj, snorkel.LabelingFunction)


def _stable_repr(value: Any) -> str:
    """``repr`` with dict keys and set members sorted, so it is the same in every process (set
    order follows string hashing, which changes between interpreters)."""
    if isinstance(value, dict):
        items = sorted((_stable_repr(k), _stable_repr(v)) for k, v in value.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(value, set | frozenset):
        return f"{type(value).__name__}({sorted(_stable_repr(v) for v in value)})"
    if isinstance(value, list | tuple):
        return f"{type(value).__name__}({[_stable_repr(v) for v in value]})"
    return repr(value)


def lf_version(lf: Any) -> str:
    """A 12-hex-character version, stable across processes.

    From the LF's name and kind, and: the source of the wrapped function, of its preprocessors'
    functions and the resources (sorted by key) for Snorkel LFs; the function source for batch LFs;
    the column index for :class:`VoteColumnLF`.
    """
    h = hashlib.sha256()
    if isinstance(lf, VoteColumnLF):
        h.update(f"votes|{lf.name}|{lf.index}".encode())
    elif isinstance(lf, BatchLF):
        h.update(f"batch|{lf.name}|{function_source(lf.f)}".encode())
    elif _is_snorkel_lf(lf):
        h.update(f"row|{lf.name}|{function_source(lf._f)}".encode())
        for pre in lf._pre:
            h.update(f"|pre|{function_source(getattr(pre, '_f', pre))}".encode())
        h.update(f"|res|{_stable_repr(dict(lf._resources or {}))}".encode())
    else:
        raise InvalidInput(f"lf must be a Snorkel LabelingFunction or a BatchLF, got {lf!r}")
    return h.hexdigest()[:12]


def _collect(module: types.ModuleType, origin: str) -> list:
    lfs: list = []
    for value in vars(module).values():  # definition order; an LF bound twice counts once
        if is_lf(value) and not any(value is lf for lf in lfs):
            lfs.append(value)
    if not lfs:
        raise LFLoadError(f"{origin}: defines no labeling function (a Snorkel LabelingFunction "
                          "or a @batch_lf function) at module level")
    seen: set[str] = set()
    for lf in lfs:
        if lf.name in seen:
            raise LFLoadError(f"{origin}: two labeling functions are named {lf.name!r}")
        seen.add(lf.name)
    return lfs


def load_lfs_from_source(source: str, *, filename: str = "<lfs>") -> list:
    """Execute ``source`` as a fresh module and return its top-level LFs in definition order.

    The module is registered in :data:`sys.modules` under a name derived from the source hash and
    its text is put in :mod:`linecache`, so :func:`inspect.getsource` (and :func:`lf_version`)
    works; loading the same source again returns the same LF objects.

    Raises
    ------
    LFLoadError
        on a syntax error or an exception at import (with its line), when no LF is defined, or
        when two LFs share a name.
    """
    return load_source(source, filename=filename, prefix="labelloop_lfs", collect=_collect)


def load_lfs_from_module(name: str) -> list:
    """Import module ``name`` and return its top-level LFs in definition order (same rule as
    :func:`load_lfs_from_source`)."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise LFLoadError(f"cannot import module {name!r}: {exc}") from exc
    except Exception as exc:  # an error in the module's own code at import
        raise LFLoadError(f"module {name!r}: {type(exc).__name__}: {exc}") from exc
    return _collect(module, name)
