"""Running registered assertions on a round's batch, fault-tolerantly, from specs that travel.

A registered assertion travels as an :data:`AssertionSpec` ``(name, kind, text)``: kind
``"source"`` carries the Python source that defines it, kind ``"consistency"`` its JSON spec. Like
LF sources they are loaded where the round runs (an executor worker), once per process.

:func:`run_assertions` turns whatever each assertion returns into one severity per item (cluster
severities spread to their members) and optional weak labels. As with LFs, an assertion that
raises or returns something malformed abstains on the whole batch and the fault is reported; it
never fails the round.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from labeling.assertion_types import AssertionBatch, Firing
from labeling.consistency_assertions import ConsistencyAssertion
from labeling.errors import InvalidInput, LFLoadError
from labeling.user_assertions import UserAssertion, load_assertions_from_source

__all__ = ["AssertionRun", "AssertionSpec", "load_assertions", "run_assertions"]

AssertionSpec = tuple[str, str, str]  # (name, kind "source" | "consistency", source or JSON spec)
Assertion = UserAssertion | ConsistencyAssertion


@dataclass(frozen=True)
class AssertionRun:
    """One assertion on one batch: ``severity`` (n,) float >= 0; ``weak_labels`` (n,) int in
    -1..K-1 or None; ``clusters`` the number of firing clusters (cluster granularity) or None;
    ``fault`` the error text when it raised or returned something malformed (then it abstains)."""

    name: str
    granularity: str
    model_dependent: bool
    severity: np.ndarray
    weak_labels: np.ndarray | None
    clusters: int | None
    fault: str | None = None

    def counts(self) -> dict:
        """Firing counts as the round metrics keep them."""
        return {"items": int((self.severity > 0).sum()), "clusters": self.clusters,
                "weak_votes": None if self.weak_labels is None else int((self.weak_labels >= 0).sum()),
                "fault": self.fault}


@lru_cache(maxsize=64)
def _load_source(source: str) -> dict[str, Assertion]:
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    return {a.name: a for a in load_assertions_from_source(source, filename=f"<assertions {digest}>")}


def load_assertions(specs: Sequence[AssertionSpec]) -> list[Assertion]:
    """Assertion objects for ``specs`` in order; each source is loaded once per process."""
    out: list[Assertion] = []
    for name, kind, text in specs:
        if kind == "consistency":
            out.append(ConsistencyAssertion.from_spec(json.loads(text)))
        elif kind == "source":
            by_name = _load_source(text)
            if name not in by_name:
                raise LFLoadError(f"assertion {name!r} is no longer defined in its registered source")
            out.append(by_name[name])
        else:
            raise InvalidInput(f"assertion {name!r}: unknown kind {kind!r} (source or consistency)")
    return out


def run_assertions(assertions: Sequence[Assertion], batch: AssertionBatch) -> list[AssertionRun]:
    """Evaluate each assertion on ``batch``; one :class:`AssertionRun` per assertion, in order."""
    runs = []
    for a in assertions:
        try:
            severity, weak, clusters = _normalise(a, a(batch), batch)
            runs.append(AssertionRun(a.name, a.granularity, a.model_dependent, severity, weak, clusters))
        except Exception as exc:  # noqa: BLE001 - an assertion's bug is its author's: it abstains, the round goes on
            runs.append(AssertionRun(a.name, a.granularity, a.model_dependent,
                                     np.zeros(batch.n), None, None, f"{type(exc).__name__}: {exc}"))
    return runs


def _normalise(a: Assertion, out: object, batch: AssertionBatch):
    n, k = batch.n, len(batch.class_names)
    firing = out if isinstance(out, Firing) else (
        Firing(clusters=out) if a.granularity == "cluster" else Firing(severity=out))
    if a.granularity == "cluster":
        if firing.clusters is None:
            raise InvalidInput("a cluster assertion must return clusters (a list of position lists)")
        severity, clusters = np.zeros(n), 0
        for cluster in firing.clusters:
            members, sev = _cluster(cluster, n)
            severity[members] = np.maximum(severity[members], sev)
            clusters += bool(sev > 0 and members.size)
    else:
        if firing.severity is None:
            raise InvalidInput("an item assertion must return one severity per item")
        severity = np.asarray(firing.severity, dtype=np.float64).reshape(-1)
        clusters = None
    if severity.shape != (n,) or not np.isfinite(severity).all() or (n and severity.min() < 0):
        raise InvalidInput(f"severities must be {n} finite numbers >= 0, got shape {severity.shape}")
    weak = None
    if firing.weak_labels is not None:
        weak = np.asarray(firing.weak_labels).reshape(-1)
        if weak.shape != (n,) or not np.issubdtype(weak.dtype, np.integer) or \
                (n and (weak.min() < -1 or weak.max() >= k)):
            raise InvalidInput(f"weak_labels must be {n} integers in -1..{k - 1}")
        weak = weak.astype(np.int64)
    return severity, weak, clusters


def _cluster(cluster: object, n: int) -> tuple[np.ndarray, float]:
    """``positions`` or ``(positions, severity)`` as (int positions, severity)."""
    if isinstance(cluster, tuple) and len(cluster) == 2 and np.ndim(cluster[1]) == 0:
        positions, sev = cluster
    else:
        positions, sev = cluster, 1.0
    members = np.asarray(positions, dtype=np.int64).reshape(-1)
    sev = float(sev)
    if (members.size and (members.min() < 0 or members.max() >= n)) or not np.isfinite(sev) or sev < 0:
        raise InvalidInput(f"a cluster must hold positions in 0..{n - 1} and a severity >= 0")
    return members, sev
