from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response

from api.auth import Annotator, Engineer, authorize
from api.deps import HotPathDep, Now, ServicesDep, hot_path
from api.routes.lean import LeanRoute
from api.schemas import (
    AnnotationOut,
    LeaseActionIn,
    LeaseIn,
    LeaseOut,
    SubmitIn,
    SubmitOut,
)
from api.service import annotate as svc
from api.storage.records import Job

router = APIRouter(tags=["annotation"])


# The lease and submit routes are coroutines. Leases go through the replica's batcher (see
# ``api.deps.LeaseBatcher``): the requests of one event-loop turn share one store call. The lease
# route, the hottest, is a ``LeanRoute``: it parses its body and looks up its token, services and
# hot path itself (bench.lease_load).
async def lease(project_id: str, body: LeaseIn, request: Request) -> Response:
    """Lease the next batch picked for this annotator. ``exhausted`` is true only when no item is
    left for them (not merely all leased to others right now). Needs the ``annotator`` role."""
    who = authorize(request, "annotator")
    who.check_annotator(body.annotator)
    s, hot = request.app.state.services, hot_path(request)
    project = await hot.project(project_id, s.clock())
    got = await hot.leases.lease(svc.lease_request(project, body.annotator, body.size, rng=s.rng))
    return Response(got, 201, media_type="application/json")


def add_lease_route(app: FastAPI) -> None:
    """Put the lease route on the app itself, first in its route table. Starlette tries routes
    in order, and a route of an included router is matched twice (the router, then its route):
    14 us of matching a lease, against about 2 here."""
    app.router.add_api_route("/projects/{project_id}/leases", lease, methods=["POST"], status_code=201,
                             response_model=LeaseOut, route_class_override=LeanRoute, tags=["annotation"])
    app.router.routes.insert(0, app.router.routes.pop())


@router.get("/leases/{lease_id}")
def get_lease(lease_id: str, s: ServicesDep, who: Annotator) -> dict:
    got = s.store.get_lease(lease_id)
    who.check_project(got.project_id)
    who.check_annotator(got.annotator)
    return {"lease_id": got.id, "project_id": got.project_id, "annotator": got.annotator,
            "expires_at": got.expires_at, "item_ids": list(got.item_ids)}


@router.post("/leases/{lease_id}/renew")
def renew(lease_id: str, body: LeaseActionIn, s: ServicesDep, now: Now, who: Annotator) -> dict:
    who.check_annotator(body.annotator)
    lease_rec = s.store.get_lease(lease_id)
    who.check_project(lease_rec.project_id)
    ttl = s.store.get_project(lease_rec.project_id).settings.lease_ttl_s
    got = s.store.renew(lease_id, body.annotator, now=now, ttl=ttl)
    return {"lease_id": got.id, "expires_at": got.expires_at, "item_ids": list(got.item_ids)}


@router.post("/leases/{lease_id}/release")
def release(lease_id: str, body: LeaseActionIn, s: ServicesDep, now: Now, who: Annotator) -> dict:
    who.check_annotator(body.annotator)
    who.check_project(s.store.get_lease(lease_id).project_id)
    n = s.store.release(lease_id, body.annotator, item_ids=body.item_ids, now=now)
    return {"lease_id": lease_id, "released": n}


@router.post("/projects/{project_id}/annotations")
async def submit(project_id: str, body: SubmitIn, s: ServicesDep, now: Now, who: Annotator,
                 hot: HotPathDep) -> SubmitOut:
    """Append annotations (label, skip or flag). A repeated idempotency key has no second effect.
    The response is sent only after the annotations are durably stored."""
    who.check_annotator(body.annotator)
    annotations = [svc.AnnotationIn(**a.model_dump()) for a in body.annotations]

    def call() -> tuple[list, Job | None]:
        got = svc.submit_annotations(s.store, project_id, body.annotator, annotations, now=now)
        return got, s.maybe_retrain(project_id)

    results, job = await hot.call(call)
    return SubmitOut(
        results=[
            AnnotationOut(seq=r.annotation.seq, item_id=r.annotation.item_id,
                          annotator=r.annotation.annotator, kind=r.annotation.kind,
                          label=r.annotation.label, comment=r.annotation.comment,
                          lease_id=r.annotation.lease_id,
                          idempotency_key=r.annotation.idempotency_key,
                          created_at=r.annotation.created_at, duplicate=r.duplicate)
            for r in results
        ],
        retrain_job=job.id if job else None,
    )


@router.get("/projects/{project_id}/annotations")
def list_annotations(project_id: str, s: ServicesDep, who: Engineer,
                     since: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0) -> list[dict]:
    return [a.__dict__ for a in s.store.annotations(project_id, since=since)]
