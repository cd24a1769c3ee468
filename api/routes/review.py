"""The review queue: a reviewer leases items that need a decision (renew, release and submit go
through the pool's lease routes; a decision is an annotation of kind ``review``)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from api.auth import Reviewer
from api.deps import Now, ServicesDep
from api.schemas import LeaseIn, ReviewLeaseOut
from api.service import review as svc

router = APIRouter(prefix="/projects/{project_id}", tags=["annotation"])


@router.post("/review/leases", status_code=201, response_model=ReviewLeaseOut,
             response_model_exclude_unset=True)
async def review_lease(project_id: str, body: LeaseIn, request: Request, s: ServicesDep,
                       now: Now, who: Reviewer) -> ReviewLeaseOut:
    """Lease items of the review queue for this reviewer (never one they answered), each with its
    earlier answers and why it is there. Needs the ``reviewer`` role."""
    who.check_annotator(body.annotator)
    doc = await asyncio.to_thread(svc.review_answer, s.store, project_id, body.annotator,
                                  body.size, now=now, renderer=request.app.state.renderer)
    return ReviewLeaseOut.model_validate(doc)
