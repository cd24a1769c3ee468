from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from api.auth import Admin, Annotator, Engineer
from api.deps import Now, ServicesDep
from api.schemas import ProjectIn, ProjectOut, ProjectPatchIn, RoundOut, SettingsIn
from api.service import projects as svc
from api.storage.records import Project

router = APIRouter(prefix="/projects", tags=["projects"])


def project_out(p: Project) -> ProjectOut:
    return ProjectOut(
        id=p.id, classes=[asdict(c) for c in p.classes], guidelines=p.guidelines,
        settings=asdict(p.settings), created_at=p.created_at,
    )


@router.post("", status_code=201)
def create_project(body: ProjectIn, s: ServicesDep, now: Now, who: Admin) -> ProjectOut:
    classes = [c if isinstance(c, str) else c.model_dump() for c in body.classes]
    p = svc.create_project(s.store, body.id, classes, guidelines=body.guidelines,
                           settings=body.settings.model_dump(exclude_unset=True), now=now)
    return project_out(p)


@router.get("")
def list_projects(s: ServicesDep, who: Annotator) -> list[ProjectOut]:
    return [project_out(p) for p in s.store.list_projects()
            if who.projects is None or p.id in who.projects]


@router.get("/{project_id}")
def get_project(project_id: str, s: ServicesDep, who: Annotator) -> ProjectOut:
    return project_out(s.store.get_project(project_id))


@router.patch("/{project_id}/settings")
def update_settings(project_id: str, body: SettingsIn, s: ServicesDep, now: Now,
                    who: Admin) -> ProjectOut:
    return project_out(svc.update_settings(s.store, project_id, body.model_dump(exclude_unset=True),
                                           now=now))


@router.patch("/{project_id}")
def update_project(project_id: str, body: ProjectPatchIn, s: ServicesDep, now: Now,
                   who: Admin) -> ProjectOut:
    """Change the guidelines (their version goes up by one unless ``settings`` sets it) and/or
    settings; answers record the version in force when they were given."""
    return project_out(svc.update_project(s.store, project_id, guidelines=body.guidelines,
                                          settings=body.settings.model_dump(exclude_unset=True),
                                          now=now))


@router.get("/{project_id}/stats")
def stats(project_id: str, s: ServicesDep, now: Now, who: Annotator) -> dict[str, Any]:
    latest = s.store.latest_round(project_id)
    return {
        "queue": s.store.queue_depth(project_id, now),
        "labels": s.store.count_labels(project_id),
        "round": latest.number if latest else 0,
        "model_version": latest.model_version if latest else None,
        "metrics": latest.metrics if latest else {},
    }


@router.get("/{project_id}/rounds")
def rounds(project_id: str, s: ServicesDep, who: Engineer) -> list[RoundOut]:
    return [
        RoundOut(number=r.number, model_version=r.model_version, created_at=r.created_at,
                 n_labels=r.n_labels, metrics=r.metrics, label_model=r.label_model,
                 strategy=r.strategy)
        for r in s.store.list_rounds(project_id)
    ]
