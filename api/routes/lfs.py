from __future__ import annotations

from fastapi import APIRouter

from api.auth import Engineer
from api.deps import Now, ServicesDep
from api.schemas import LFIn, LFOut
from api.service.lfs import lf_report, register_and_check

router = APIRouter(prefix="/projects/{project_id}/lfs", tags=["labeling functions"])


@router.post("", status_code=201)
def register(project_id: str, body: LFIn, s: ServicesDep, now: Now, who: Engineer) -> list[LFOut]:
    """Register labeling functions from Python source or an importable module (runs code). Each
    LF comes back with its ``checks`` on a pool sample: an error when it faults on every sampled
    item (or votes outside -1..K-1 on all), warnings for some faults or invalid votes, or none."""
    records, checks = register_and_check(s.store, project_id, s.executor, source=body.source,
                                         module=body.module, now=now)
    return [LFOut(name=r.name, version=r.version, kind=r.kind, active=r.active,
                  created_at=r.created_at, checks=checks.get(r.name, [])) for r in records]


@router.get("")
def list_lfs(project_id: str, s: ServicesDep, who: Engineer) -> list[LFOut]:
    return [LFOut(name=r.name, version=r.version, kind=r.kind, active=r.active,
                  created_at=r.created_at) for r in s.store.list_lfs(project_id)]


@router.delete("/{name}", status_code=204)
def deactivate(project_id: str, name: str, s: ServicesDep, who: Engineer) -> None:
    s.store.deactivate_lf(project_id, name)


@router.get("/analysis")
def analysis(project_id: str, s: ServicesDep, who: Engineer) -> dict:
    """``lfs``: coverage, overlaps, conflicts, polarity, empirical accuracy against human labels
    and fault counts per active LF (and ``gold_accuracy`` against the gold labels items came
    with); ``gold``: the label model's accuracy on those gold labels, or null without any
    (applies whatever the vote cache lacks first)."""
    return lf_report(s.store, project_id, s.executor)
