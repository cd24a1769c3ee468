"""Leases and annotations: parse the request, call one service function, answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from api.auth import Annotator, Engineer, Principal, authorize
from api.deps import Now, ServicesDep, lease_batcher
from api.schemas import (
    AnnotationOut,
    LeaseActionIn,
    LeaseIn,
    LeaseOut,
    LeaseStateOut,
    ReleaseOut,
    SubmitIn,
    SubmitOut,
    lease_json,
)
from api.service import annotate as svc
from api.service import routing
from api.storage.records import Lease
from labeling.errors import LabelloopError

router = APIRouter(tags=["annotation"])


def _theirs(who: Principal):
    """The check that a lease is one this token may act on."""
    def check(lease: Lease) -> None:
        who.check_project(lease.project_id)
        who.check_annotator(lease.annotator)

    return check


@router.post("/projects/{project_id}/leases", status_code=201, response_model=LeaseOut)
async def lease(project_id: str, body: LeaseIn, request: Request) -> Response:
    """Lease the next batch picked for this annotator. ``exhausted`` is true only when no item is
    left for them (not merely all leased to others right now). Needs the ``annotator`` role.
    (No dependencies, and orjson rather than the model for the answer: the two cost about 70 us
    a lease, a quarter of what the server spends on one outside the store; bench.lease_load.)"""
    authorize(request, "annotator").check_annotator(body.annotator)
    got = await lease_batcher(request).submit((project_id, body.annotator, body.size))
    if got["items"]:
        request.app.state.services.metrics.lease_granted(project_id)
    return Response(lease_json(got), 201, media_type="application/json")


@router.get("/projects/{project_id}/leases", response_model=list[LeaseOut])
def live_leases(project_id: str, annotator: str, request: Request, s: ServicesDep, now: Now,
                who: Annotator) -> Response:
    """The annotator's live leases with their open items, oldest first: a tool that restarted
    carries on with these."""
    who.check_annotator(annotator)
    got = svc.live_leases(s.store, project_id, annotator, now=now,
                          renderer=request.app.state.renderer)
    return Response(lease_json(got), media_type="application/json")


@router.get("/leases/{lease_id}")
def get_lease(lease_id: str, s: ServicesDep, who: Annotator) -> LeaseStateOut:
    return LeaseStateOut.of(svc.get_lease(s.store, lease_id, allowed=_theirs(who)))


@router.post("/leases/{lease_id}/renew")
def renew(lease_id: str, body: LeaseActionIn, s: ServicesDep, now: Now,
          who: Annotator) -> LeaseStateOut:
    who.check_annotator(body.annotator)
    return LeaseStateOut.of(svc.renew_lease(s.store, lease_id, body.annotator, now=now,
                                            allowed=_theirs(who)))


@router.post("/leases/{lease_id}/release")
def release(lease_id: str, body: LeaseActionIn, s: ServicesDep, now: Now,
            who: Annotator) -> ReleaseOut:
    who.check_annotator(body.annotator)
    return ReleaseOut(lease_id=lease_id, released=svc.release_lease(
        s.store, lease_id, body.annotator, body.item_ids, now=now, allowed=_theirs(who)))


@router.post("/projects/{project_id}/annotations")
def submit(project_id: str, body: SubmitIn, s: ServicesDep, now: Now, who: Annotator) -> SubmitOut:
    """Append annotations (label, skip or flag; ``review``: a reviewer's decision, which needs
    the ``reviewer`` role; ``correct``: a new label for an item this annotator answered, with no
    lease). A repeated idempotency key of this annotator with the same payload has no second
    effect; with another payload it is a 409 naming the key. The response is sent only after the
    annotations are durably stored; items whose answers now disagree are routed to more
    annotators or to the review queue (:mod:`api.service.routing`)."""
    who.check_annotator(body.annotator)
    if not who.can("reviewer") and any(a.kind == "review" for a in body.annotations):
        raise HTTPException(403, f"a 'review' annotation needs the 'reviewer' role; token "
                                 f"{who.name!r} is {who.role!r}")
    annotations = [svc.AnnotationIn(**a.model_dump()) for a in body.annotations]
    try:
        results = svc.submit_annotations(s.store, project_id, body.annotator, annotations, now=now)
    except LabelloopError:
        s.metrics.rejected(project_id, len(body.annotations))
        raise
    s.metrics.submitted(project_id, results)
    routing.route_submitted(s.store, s.answers, project_id, results, now=now)
    job = s.maybe_retrain(project_id)
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
