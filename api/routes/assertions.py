"""Model assertions over HTTP: register, list with their latest firing counts, deactivate.

Registering Python source runs code, so every route needs the engineer role, as for LFs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Engineer
from api.deps import Now, ServicesDep
from api.service.assertions import assertion_status, register_assertions

router = APIRouter(prefix="/projects/{project_id}/assertions", tags=["assertions"])


class ConsistencyIn(BaseModel):
    """Items sharing ``id_column`` (within ``window`` of ``time_column``, if given) should agree
    on ``attributes``; ``"label"`` is the model's predicted class. ``max_transitions`` (with a
    time column): fire on more value changes than this in a window, in time order, instead of on
    any disagreement (1 catches A -> B -> A)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    id_column: str = Field(min_length=1, max_length=300)
    attributes: list[str] = Field(default_factory=lambda: ["label"], min_length=1, max_length=50)
    time_column: str | None = Field(None, min_length=1, max_length=300)
    window: float | None = None
    max_transitions: int | None = Field(None, ge=0)


class AssertionIn(BaseModel):
    """Exactly one of: Python ``source``, an importable ``module``, or a ``consistency`` spec."""

    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(None, max_length=1_000_000)
    module: str | None = Field(None, max_length=300)
    consistency: ConsistencyIn | None = None


class AssertionOut(BaseModel):
    name: str
    version: str
    kind: str
    active: bool
    created_at: float
    granularity: str | None = None
    spec: dict[str, Any] | None = None
    latest: dict[str, Any] | None = Field(
        None, description="firing counts in the latest round that ran it: round, items, clusters, "
                          "weak_votes, fault, version")


@router.post("", status_code=201)
def register(project_id: str, body: AssertionIn, s: ServicesDep, now: Now, who: Engineer
             ) -> list[AssertionOut]:
    """Register model assertions (Python source or module: runs code; or a consistency spec)."""
    spec = body.consistency.model_dump() if body.consistency is not None else None
    records = register_assertions(s.store, project_id, source=body.source, module=body.module,
                                  consistency=spec, now=now)
    names = {r.name for r in records}
    return [AssertionOut(**a) for a in assertion_status(s.store, project_id) if a["name"] in names]


@router.get("")
def list_assertions(project_id: str, s: ServicesDep, who: Engineer) -> list[AssertionOut]:
    """Registered assertions with their firing counts in the latest round."""
    return [AssertionOut(**a) for a in assertion_status(s.store, project_id)]


@router.delete("/{name}", status_code=204)
def deactivate(project_id: str, name: str, s: ServicesDep, who: Engineer) -> None:
    s.store.deactivate_assertion(project_id, name)
