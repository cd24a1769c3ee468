"""Project use cases: create, read and change settings, with validation at the entry."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from pydantic import ValidationError

from api.service.gold import keep_gold
from api.storage.base import Store
from api.storage.records import ClassSpec, Project, ProjectSettings
from labeling.errors import InvalidInput
from labeling.validation import PROJECT_ID, check_project_id, check_text, quote

__all__ = ["PROJECT_ID", "create_project", "update_project", "update_settings", "validate_settings"]

def validate_settings(base: ProjectSettings, changes: dict[str, Any]) -> ProjectSettings:
    """``base`` with ``changes``, checked by the one typed model of settings
    (:class:`api.schemas.SettingsIn`: types and ranges); ``InvalidInput`` names the setting."""
    from api.schemas import SettingsIn

    if not isinstance(changes, dict):
        raise InvalidInput(f"settings must be an object, got {type(changes).__name__}")
    try:
        checked = SettingsIn.model_validate(changes)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        if err["type"] == "extra_forbidden":
            known = sorted(f.name for f in fields(ProjectSettings))
            raise InvalidInput(f"unknown setting {quote(name)}; allowed: {known}") from None
        raise InvalidInput(f"setting {name}: {err['msg']}, got {quote(err.get('input'))}") from None
    s = replace(base, **checked.model_dump(exclude_unset=True))
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
    check_project_id(project_id)
    specs = tuple(
        ClassSpec(c) if isinstance(c, str) else ClassSpec(c["name"], c.get("description", ""))
        for c in classes
    )
    names = [check_text(c.name, "class name") for c in specs]
    for c in specs:
        check_text(c.description, f"class {c.name!r} description")
    check_text(guidelines, "guidelines")
    if len(names) < 2:
        raise InvalidInput(f"classes must list at least 2 class names, got {names}")
    if len(set(names)) != len(names) or any(not n.strip() for n in names):
        raise InvalidInput(f"class names must be unique and non-empty, got {names}")
    project = Project(
        project_id, specs, validate_settings(ProjectSettings(), settings or {}), guidelines, now
    )
    return store.create_project(project)


def update_settings(store: Store, project_id: str, changes: dict[str, Any], *,
                    now: float) -> Project:
    return update_project(store, project_id, settings=changes, now=now)


def update_project(store: Store, project_id: str, *, guidelines: str | None = None,
                   settings: dict[str, Any] | None = None, now: float) -> Project:
    """Change the guidelines text and/or settings together. New guidelines text raises
    ``guidelines_version`` by one unless ``settings`` sets it: answers record the version they
    were given under, so agreement per version shows what the change did."""
    project = store.get_project(project_id)
    changes = dict(settings or {})
    if guidelines is not None:
        check_text(guidelines, "guidelines")
        if guidelines != project.guidelines:
            changes.setdefault("guidelines_version", project.settings.guidelines_version + 1)
    new = validate_settings(project.settings, changes)
    out = store.update_settings(project_id, new, guidelines=guidelines)
    old = project.settings
    if (new.redundancy_fraction, new.redundancy_k) != (old.redundancy_fraction, old.redundancy_k):
        keep_gold(store, project_id, now=now)  # the store drew every item's answers again
    return out
