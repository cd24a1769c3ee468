"""The review queue: a reviewer leases items that need a decision (renew, release and submit go
through the pool's lease routes; a decision is an annotation of kind ``review``)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from api.auth import Reviewer
from api.deps import Now, ServicesDep
from api.schemas import LeaseIn, ReviewLeaseOut, lease_body
from api.service import review as svc

router = APIRouter(prefix="/projects/{project_id}", tags=["annotation"])


@router.post("/review/leases", status_code=201, response_model=ReviewLeaseOut)
async def review_lease(project_id: str, body: LeaseIn, request: Request, s: ServicesDep,
                       now: Now, who: Reviewer) -> Response:
    """Lease items of the review queue for this reviewer (never one they answered), each with its
    earlier answers and why it is there. Needs the ``reviewer`` role."""
    who.check_annotator(body.annotator)
    lease, project, extra = await asyncio.to_thread(
        svc.lease_review, s.store, project_id, body.annotator, body.size, now=now)
    items = [{"id": li.item.id, "text": li.item.text, "features": li.item.features,
              "meta": li.item.meta, "reasons": li.reasons, **more}
             for li, more in zip(lease.items, extra, strict=True)]
    out = lease_body(lease.id, lease.project_id, lease.annotator, lease.expires_at,
                     lease.exhausted, items)
    out = await request.app.state.renderer.render(out, project, s.store, asyncio.to_thread)
    return Response(out, 201, media_type="application/json")
