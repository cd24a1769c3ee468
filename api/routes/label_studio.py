"""Label Studio's ML-backend protocol under ``/label-studio/{project_id}``, and Label Studio task
files under ``/projects/{project_id}/label-studio``.

Label Studio is given the backend URL ``http://HOST:PORT/label-studio/P``. Every route takes
labelloop's own token with the ``engineer`` role (webhooks append other people's labels and start
rounds): as ``Authorization: Bearer <token>``, or as HTTP basic auth with the token as the
password (any user name), which is what Label Studio's "Basic Authentication" of an ML backend
sends; webhooks can carry the bearer header (their ``headers`` field).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import PlainTextResponse

from api.auth import Principal, authorize
from api.deps import ServicesDep
from api.service import label_studio as svc
from api.service import label_studio_sync as sync

__all__ = ["router"]

router = APIRouter(tags=["label-studio"])


def _principal(request: Request) -> Principal:
    """As :func:`api.auth.authorize` with role ``engineer`` (basic auth included)."""
    return authorize(request, "engineer")


Backend = Annotated[Principal, Depends(_principal)]
JsonBody = Annotated[dict[str, Any], Body()]
BASE = "/label-studio/{project_id}"


@router.get(BASE + "/health")
def health(project_id: str, s: ServicesDep, who: Backend) -> dict:
    """Status for Label Studio (1 s), and whether it has handed over an access token."""
    return svc.health(s.store, project_id)


@router.post(BASE + "/setup")
def setup(project_id: str, body: JsonBody, s: ServicesDep, who: Backend) -> dict:
    """Check the label config against the project's classes and keep the connection (3 s)."""
    return svc.setup(s.store, project_id, body)


@router.post(BASE + "/predict")
def predict(project_id: str, body: JsonBody, s: ServicesDep, who: Backend) -> dict:
    """The end model's choice and a queue-order score per task."""
    return svc.predict(s, project_id, body)


@router.post(BASE + "/webhook")
def webhook(project_id: str, body: JsonBody, s: ServicesDep, who: Backend) -> dict:
    """ANNOTATION_CREATED / _UPDATED, ANNOTATIONS_DELETED, START_TRAINING (1 s)."""
    return svc.webhook(s, project_id, body)


@router.get(BASE + "/versions")
def versions(project_id: str, s: ServicesDep, who: Backend) -> dict:
    return svc.versions(s.store, project_id)


@router.get("/projects/{project_id}/label-studio/config", response_class=PlainTextResponse)
def label_config(project_id: str, s: ServicesDep, who: Backend, text_key: str | None = None) -> str:
    """A label config over the project's classes, for creating its Label Studio project."""
    return sync.label_config(s.store, project_id, text_key=text_key)


@router.get("/projects/{project_id}/label-studio/tasks")
def export_tasks(project_id: str, s: ServicesDep, who: Backend,
                 text_key: str | None = None) -> list[dict]:
    """Every item as a Label Studio task with labelloop's prediction as a pre-annotation."""
    return sync.export_tasks(s.store, project_id, text_key=text_key)


@router.post("/projects/{project_id}/label-studio/tasks")
def import_tasks(project_id: str, s: ServicesDep, who: Backend,
                 tasks: Annotated[list[dict[str, Any]], Body()],
                 text_key: str | None = None) -> dict:
    """A Label Studio JSON export (tasks with annotations): items and human labels."""
    return sync.import_tasks(s, project_id, tasks, text_key=text_key)
