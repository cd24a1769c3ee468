"""Model-assertion use cases: register (Python source, a module, or a consistency spec), list with
the latest firing counts, and the specs a round ships to where it runs.

Registration validates everything before it stores anything (loading a source runs it, in a
sandbox worker, never here): the source must load and define at
least one assertion, names must not shadow a built-in assertion, and a consistency spec must read
columns the project's items have (checked when the pool holds items; otherwise the first round
reports the missing column as the assertion's fault).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from api.storage.base import Store
from api.storage.records import AssertionRecord
from labeling.assertion_runs import AssertionSpec
from labeling.assertions import ASSERTION_NAMES
from labeling.consistency_assertions import ConsistencyAssertion
from labeling.errors import InvalidInput
from labeling.frame import RESERVED
from labeling.user_assertions import assertion_version
from labeling.validation import check_item_id
from workers import sandbox, user_code

__all__ = ["assertion_specs", "assertion_status", "register_assertions"]


def register_assertions(
    store: Store, project_id: str, *, source: str | None = None, module: str | None = None,
    consistency: dict[str, Any] | None = None, now: float,
) -> list[AssertionRecord]:
    """Load assertions from exactly one of Python ``source``, an importable ``module`` or a
    ``consistency`` spec, check them, and register them all (or none)."""
    store.get_project(project_id)
    if sum(x is not None for x in (source, module, consistency)) != 1:
        raise InvalidInput("give exactly one of source (Python text), module (an importable name) "
                           "or consistency (a spec object)")
    if consistency is not None:  # a declarative spec: checked here, it runs no user code
        spec = ConsistencyAssertion.from_spec(consistency)
        described = [(spec.name, assertion_version(spec), "consistency", spec.spec_json())]
    else:
        if module is not None:
            source = _module_source(module)
        if not isinstance(source, str):
            raise InvalidInput(f"source must be a str of Python code, got {type(source).__name__}")
        described = sandbox.shared().run(user_code.describe_assertions, source)
    _check(store, project_id, described)
    records = [AssertionRecord(name, version, kind, text, True, now)
               for name, version, kind, text in described]
    store.put_assertions(project_id, records)
    return records


def _module_source(module: str) -> str:
    return sandbox.shared().run(user_code.module_source, module)


def _check(store: Store, project_id: str, described: Sequence[tuple[str, str, str, str]]) -> None:
    for name, _, _, _ in described:
        check_item_id(name, "assertion name")
        if name in ASSERTION_NAMES:
            raise InvalidInput(f"assertion name {name!r} is taken by a built-in assertion "
                               f"({', '.join(ASSERTION_NAMES)})")
    specs = [ConsistencyAssertion.from_spec(json.loads(text))
             for _, _, kind, text in described if kind == "consistency"]
    if not specs or store.count_items(project_id) == 0:
        return
    columns = _pool_columns(store, project_id)
    for a in specs:
        missing = a.missing_columns(columns)
        if missing:
            raise InvalidInput(f"consistency assertion {a.name!r}: no item has a column "
                               f"{missing[0]!r} (columns: {sorted(columns)})")


def _pool_columns(store: Store, project_id: str) -> set[str]:
    """The columns of the project's items frame (:func:`labeling.frame.items_frame`)."""
    columns = set(RESERVED)
    for chunk in store.iter_items(project_id):
        for it in chunk:
            columns.update(it.features)
            columns.update(it.meta)
    return columns


def assertion_specs(records: Sequence[AssertionRecord]) -> list[AssertionSpec]:
    """What a round needs to load the assertions of ``records`` wherever it runs."""
    return [(r.name, r.kind, r.source) for r in records]


def assertion_status(store: Store, project_id: str) -> list[dict[str, Any]]:
    """Every registered assertion with its firing counts in the latest round that ran it
    (``latest``: round, items, clusters, weak_votes, fault, version; None before any)."""
    latest: dict[str, dict] = {}
    for rnd in store.list_rounds(project_id):
        for name, counts in rnd.metrics.get("assertion_runs", {}).items():
            latest[name] = {"round": rnd.number, **counts}
    out = []
    for r in store.list_assertions(project_id):
        seen = latest.get(r.name)
        out.append({
            "name": r.name, "version": r.version, "kind": r.kind, "active": r.active,
            "created_at": r.created_at,
            "spec": json.loads(r.source) if r.kind == "consistency" else None,
            "granularity": "cluster" if r.kind == "consistency" else (seen or {}).get("granularity"),
            "latest": seen,
        })
    return out
