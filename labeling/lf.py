"""Labeling functions: Snorkel row LFs as they are, batch LFs, and file-vote columns.

* A Snorkel :class:`snorkel.labeling.LabelingFunction` (``@labeling_function()``, preprocessors,
  resources) is a *row LF*: it is called with one data point whose attributes are the item's
  columns (``x.text``, feature names, metadata keys, ``x.id``).
* A :class:`BatchLF` (``@batch_lf()``) receives a whole :class:`pandas.DataFrame` batch and returns
  one vote per row: vectorised LFs run tens of times faster.
* A :class:`VoteColumnLF` replays precomputed votes (WRENCH ``weak_labels``, vote columns).

Every LF gets a version from its source; votes are cached per (version, item).
"""

from __future__ import annotations

import hashlib
import inspect
import linecache
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from snorkel.labeling import LabelingFunction

from labeling.errors import LFLoadError

__all__ = ["ABSTAIN", "BatchLF", "batch_lf", "VoteColumnLF", "lf_version", "load_lfs_from_source",
           "load_lfs_from_module", "is_lf"]

ABSTAIN = -1


class BatchLF:
    """An LF over a whole batch: ``f(frame) -> array-like of int``, one vote per row."""

    def __init__(self, name: str, f: Callable[[pd.DataFrame], Any]) -> None:
        self.name, self.f = name, f

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.f(frame))

    def __repr__(self) -> str:
        return f"BatchLF({self.name!r})"


def batch_lf(name: str | None = None) -> Callable[[Callable], BatchLF]:
    """Decorator: ``@batch_lf()`` over ``def f(frame: pd.DataFrame) -> array of int``."""

    def wrap(f: Callable) -> BatchLF:
        return BatchLF(name or f.__name__, f)

    return wrap


class VoteColumnLF(BatchLF):
    """Column ``index`` of the precomputed votes in the frame's ``weak_labels`` column."""

    def __init__(self, name: str, index: int) -> None:
        super().__init__(name, self._votes)
        self.index = index

    def _votes(self, frame: pd.DataFrame) -> np.ndarray:
        j = self.index
        return np.fromiter(
            (v[j] if v is not None and j < len(v) else ABSTAIN for v in frame["weak_labels"]),
            dtype=np.int64, count=len(frame),
        )


def is_lf(obj: Any) -> bool:
    return isinstance(obj, LabelingFunction | BatchLF)


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        return repr(code.co_code) if code is not None else repr(obj)


def lf_version(lf: Any) -> str:
    """12 hex characters from the LF's name, kind and source (function, preprocessors, resources)."""
    h = hashlib.sha256()
    if isinstance(lf, VoteColumnLF):
        h.update(f"votes|{lf.name}|{lf.index}".encode())
    elif isinstance(lf, BatchLF):
        h.update(f"batch|{lf.name}|".encode() + _source(lf.f).encode())
    elif isinstance(lf, LabelingFunction):
        h.update(f"row|{lf.name}|".encode() + _source(lf._f).encode())
        for pre in lf._pre:
            h.update(b"|pre|" + _source(getattr(pre, "_f", pre)).encode())
        resources = lf._resources or {}
        h.update(b"|res|" + repr(sorted((k, repr(v)) for k, v in resources.items())).encode())
    else:
        raise LFLoadError(f"not a labeling function: {lf!r}")
    return h.hexdigest()[:12]


def _collect(module: types.ModuleType, origin: str) -> list:
    lfs = [v for v in vars(module).values() if is_lf(v)]
    if not lfs:
        raise LFLoadError(f"{origin}: defines no labeling function (Snorkel LabelingFunction or batch_lf)")
    seen: set[str] = set()
    for lf in lfs:
        if lf.name in seen:
            raise LFLoadError(f"{origin}: two labeling functions are named {lf.name!r}")
        seen.add(lf.name)
    return lfs


def load_lfs_from_source(source: str, *, filename: str = "<lfs>") -> list:
    """Execute ``source`` as a fresh module and return its top-level LFs in definition order.

    The module is registered under a name derived from the source hash, and its text is put in
    :mod:`linecache`, so :func:`inspect.getsource` (and so :func:`lf_version`) works on it.
    """
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]
    name = f"labelloop_lfs_{digest}"
    fname = f"{filename}-{digest}"
    if name in sys.modules:
        return _collect(sys.modules[name], filename)
    module = types.ModuleType(name)
    module.__file__ = fname
    linecache.cache[fname] = (len(source), None, source.splitlines(True), fname)
    try:
        code = compile(source, fname, "exec")
        sys.modules[name] = module
        exec(code, module.__dict__)  # registering LFs is code execution by design (engineer role)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise LFLoadError(f"{filename}: syntax error at line {exc.lineno}: {exc.msg}") from exc
    except Exception as exc:  # any error at import time is the LF author's to fix
        sys.modules.pop(name, None)
        tb = exc.__traceback__
        line = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == fname:
                line = tb.tb_lineno
            tb = tb.tb_next
        raise LFLoadError(f"{filename}: {type(exc).__name__}: {exc} (line {line})") from exc
    return _collect(module, filename)


def load_lfs_from_module(name: str) -> list:
    import importlib

    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise LFLoadError(f"cannot import module {name!r}: {exc}") from exc
    return _collect(module, name)
