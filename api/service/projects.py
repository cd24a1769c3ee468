"""Project use cases: create, read and change settings, with validation at the entry."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from typing import Any

from api.storage.base import Store
from api.storage.records import ClassSpec, Project, ProjectSettings
from labeling.errors import InvalidInput

__all__ = ["PROJECT_ID", "create_project", "update_settings", "validate_settings"]

PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LABEL_MODELS = ("auto", "snorkel", "majority")


def validate_settings(base: ProjectSettings, changes: dict[str, Any]) -> ProjectSettings:
    known = {f.name for f in fields(ProjectSettings)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise InvalidInput(f"unknown setting(s) {unknown}; allowed: {sorted(known)}")
    s = replace(base, **changes)
    checks = [
        ("batch_size", 1 <= s.batch_size <= 1000, "an integer in 1..1000"),
        ("lease_ttl_s", 0.1 <= s.lease_ttl_s <= 7 * 86400, "seconds in 0.1..604800"),
        ("retrain_every", 1 <= s.retrain_every <= 1_000_000, "an integer >= 1"),
        ("eval_fraction", 0.0 <= s.eval_fraction < 1.0, "a fraction in [0, 1)"),
        ("queue_size", 1 <= s.queue_size <= 1_000_000, "an integer in 1..1000000"),
        ("weak_weight", 0.0 <= s.weak_weight <= 10.0, "a number in [0, 10]"),
        ("label_model", s.label_model in LABEL_MODELS, f"one of {list(LABEL_MODELS)}"),
        ("strategy_params", isinstance(s.strategy_params, dict), "an object"),
        ("redundancy_fraction", isinstance(s.redundancy_fraction, int | float)
         and not isinstance(s.redundancy_fraction, bool) and 0.0 <= s.redundancy_fraction <= 1.0,
         "a fraction in [0, 1]"),
        ("redundancy_k", isinstance(s.redundancy_k, int) and not isinstance(s.redundancy_k, bool)
         and 2 <= s.redundancy_k <= 50, "an integer in 2..50"),
        ("show_suggestions", isinstance(s.show_suggestions, bool), "true or false"),
        ("guidelines_version", isinstance(s.guidelines_version, int)
         and not isinstance(s.guidelines_version, bool) and s.guidelines_version >= 1,
         "an integer >= 1"),
    ]
    for name, ok, allowed in checks:
        if not ok:
            raise InvalidInput(f"setting {name} must be {allowed}, got {getattr(s, name)!r}")
    from strategies.registry import available

    if s.strategy not in available():
        raise InvalidInput(f"setting strategy must be one of {available()}, got {s.strategy!r}")
    return s


def create_project(
    store: Store,
    project_id: str,
    classes: list[str | dict[str, str]],
    *,
    guidelines: str = "",
    settings: dict[str, Any] | None = None,
    now: float,
) -> Project:
    if not isinstance(project_id, str) or not PROJECT_ID.match(project_id):
        raise InvalidInput(
            f"project id must match {PROJECT_ID.pattern} (letters, digits, _ . -), got {project_id!r}"
        )
    specs = tuple(
        ClassSpec(c) if isinstance(c, str) else ClassSpec(c["name"], c.get("description", ""))
        for c in classes
    )
    names = [c.name for c in specs]
    if len(names) < 2:
        raise InvalidInput(f"classes must list at least 2 class names, got {names}")
    if len(set(names)) != len(names) or any(not n.strip() for n in names):
        raise InvalidInput(f"class names must be unique and non-empty, got {names}")
    project = Project(
        project_id, specs, validate_settings(ProjectSettings(), settings or {}), guidelines, now
    )
    return store.create_project(project)


def update_settings(store: Store, project_id: str, changes: dict[str, Any]) -> Project:
    project = store.get_project(project_id)
    return store.update_settings(project_id, validate_settings(project.settings, changes))
