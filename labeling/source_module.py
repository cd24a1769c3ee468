"""Registered Python source (LFs, assertions) run as a module of its own.

The module sits in :data:`sys.modules` under a name derived from the source hash and its text in
:mod:`linecache`, so tracebacks and ``inspect.getsource`` work, versions come from the source, and
loading the same source twice in a process is free.
"""

from __future__ import annotations

import hashlib
import inspect
import linecache
import sys
import types
from collections.abc import Callable
from typing import Any, TypeVar

from labeling.errors import InvalidInput, LFLoadError

__all__ = ["function_source", "load_source"]

T = TypeVar("T")


def function_source(obj: Any) -> str:
    """The source of a function, for versioning; its bytecode when it has no source file (defined
    in a REPL), which is stable across processes too."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        return repr(code.co_code) if code is not None else repr(obj)


def load_source(source: str, *, filename: str, prefix: str,
                collect: Callable[[types.ModuleType, str], T]) -> T:
    """Execute ``source`` as a fresh module (or reuse the one already loaded from the same text)
    and return ``collect(module, filename)``.

    Raises
    ------
    LFLoadError
        on a syntax error or an exception at import (naming the line inside ``source``), or
        whatever ``collect`` raises; the module is then forgotten, so a fixed source loads anew.
    """
    if not isinstance(source, str):
        raise InvalidInput(f"source must be a str of Python code, got {type(source).__name__}")
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]
    name = f"{prefix}_{digest}"
    if name in sys.modules:
        return collect(sys.modules[name], filename)
    fname = f"{filename}-{digest}"
    module = types.ModuleType(name)
    module.__file__ = fname
    linecache.cache[fname] = (len(source), None, source.splitlines(True), fname)
    try:
        code = compile(source, fname, "exec")
        sys.modules[name] = module
        exec(code, module.__dict__)  # noqa: S102 - registering code runs it by design (engineer role)
    except SyntaxError as exc:
        _forget(name, fname)
        raise LFLoadError(f"{filename}: syntax error at line {exc.lineno}: {exc.msg}") from exc
    except Exception as exc:  # whatever the registered code raises at import is its author's to fix
        _forget(name, fname)
        line = None
        tb = exc.__traceback__
        while tb is not None:  # the innermost frame inside the registered source
            if tb.tb_frame.f_code.co_filename == fname:
                line = tb.tb_lineno
            tb = tb.tb_next
        raise LFLoadError(f"{filename}: {type(exc).__name__}: {exc} (line {line})") from exc
    try:
        return collect(module, filename)
    except LFLoadError:
        _forget(name, fname)
        raise


def _forget(name: str, fname: str) -> None:
    sys.modules.pop(name, None)
    linecache.cache.pop(fname, None)
