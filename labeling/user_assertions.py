"""User-written model assertions: engineers write them like labeling functions.

An assertion is a plain function over an :class:`AssertionBatch` (the items frame plus what the
models said about it) decorated with :func:`assertion`::

    from labeling.user_assertions import assertion

    @assertion()
    def shouting_but_negative(batch):
        caps = batch.frame["text"].str.isupper().to_numpy()
        return caps * (batch.preds == 0) * batch.probs[:, 0]   # severity per item, 0 = abstain

It returns a severity >= 0 per item (uncalibrated: only the order matters, 0 abstains). With
``granularity="cluster"`` it returns clusters instead: each a sequence of row positions
(severity 1) or a ``(positions, severity)`` pair, and every member carries its cluster's severity
(the largest, when an item sits in several). Either may be wrapped in a :class:`Firing` to add a
weak label per item (-1 abstains); those labels join the label model as one more labeling function
in the next round.

Each assertion gets a version from its name, settings and source (:func:`assertion_version`),
like :func:`labeling.lf.lf_version`; a source file is loaded with
:func:`load_assertions_from_source`, which also collects consistency assertions
(:mod:`labeling.consistency_assertions`) defined in it.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Callable
from typing import Any

from labeling.assertion_types import AssertionBatch, Firing
from labeling.consistency_assertions import ConsistencyAssertion
from labeling.errors import InvalidInput, LFLoadError
from labeling.source_module import function_source, load_source

__all__ = [
    "AssertionBatch",
    "Firing",
    "UserAssertion",
    "assertion",
    "assertion_version",
    "load_assertions_from_source",
]

GRANULARITIES = ("item", "cluster")


class UserAssertion:
    """A registered assertion function: ``f(batch) -> severity (n,) | clusters | Firing``.

    Parameters
    ----------
    name : unique assertion name in its project
    f : the function
    granularity : ``"item"`` (one severity per item) or ``"cluster"`` (a list of clusters)
    model_dependent : False for checks the model cannot change (input validation): the bandit
        then gives them exploration draws only
    """

    def __init__(self, name: str, f: Callable[[AssertionBatch], Any], *, granularity: str = "item",
                 model_dependent: bool = True) -> None:
        if granularity not in GRANULARITIES:
            raise InvalidInput(f"assertion {name!r}: granularity must be one of {list(GRANULARITIES)}, "
                               f"got {granularity!r}")
        self.name, self.f = name, f
        self.granularity, self.model_dependent = granularity, bool(model_dependent)

    def __call__(self, batch: AssertionBatch) -> Any:
        return self.f(batch)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, granularity={self.granularity!r})"


def assertion(name: str | None = None, *, granularity: str = "item",
              model_dependent: bool = True) -> Callable[[Callable[[AssertionBatch], Any]], UserAssertion]:
    """Decorator: ``@assertion()`` over ``def f(batch) -> ...``; named ``name`` or the function's
    name."""

    def wrap(f: Callable[[AssertionBatch], Any]) -> UserAssertion:
        return UserAssertion(name or f.__name__, f, granularity=granularity,
                             model_dependent=model_dependent)

    return wrap


def assertion_version(a: UserAssertion | ConsistencyAssertion) -> str:
    """A 12-hex-character version, stable across processes: from the kind, name and settings and
    the function's source (user assertions) or the canonical spec (consistency assertions)."""
    h = hashlib.sha256()
    if isinstance(a, ConsistencyAssertion):
        h.update(f"consistency|{a.spec_json()}".encode())
    elif isinstance(a, UserAssertion):
        h.update(f"user|{a.name}|{a.granularity}|{a.model_dependent}|{function_source(a.f)}".encode())
    else:
        raise InvalidInput(f"not an assertion: {a!r}")
    return h.hexdigest()[:12]


def _collect(module: types.ModuleType, origin: str) -> list[UserAssertion | ConsistencyAssertion]:
    found: list[UserAssertion | ConsistencyAssertion] = []
    for value in vars(module).values():  # definition order; one bound twice counts once
        if isinstance(value, UserAssertion | ConsistencyAssertion) and not any(value is a for a in found):
            found.append(value)
    if not found:
        raise LFLoadError(f"{origin}: defines no assertion (an @assertion function or a "
                          "consistency_assertion(...)) at module level")
    seen: set[str] = set()
    for a in found:
        if a.name in seen:
            raise LFLoadError(f"{origin}: two assertions are named {a.name!r}")
        seen.add(a.name)
    return found


def load_assertions_from_source(source: str, *, filename: str = "<assertions>"
                                ) -> list[UserAssertion | ConsistencyAssertion]:
    """Execute ``source`` as a fresh module and return its top-level assertions in definition
    order. As for LFs, the module sits in :data:`sys.modules` under a name from the source hash and
    its text in :mod:`linecache`, so versions come from the source and loading twice is free.

    Raises
    ------
    LFLoadError
        on a syntax error or an exception at import (with its line), when no assertion is defined,
        or when two share a name.
    """
    return load_source(source, filename=filename, prefix="labelloop_assertions", collect=_collect)
