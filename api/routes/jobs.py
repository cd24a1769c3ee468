from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.auth import Engineer
from api.deps import ServicesDep
from api.routes.export import MEDIA
from api.schemas import JobIn, JobOut
from labeling.errors import Conflict, NotFound

router = APIRouter(tags=["jobs"])


@router.post("/projects/{project_id}/jobs", status_code=202)
def start_job(project_id: str, body: JobIn, s: ServicesDep, who: Engineer) -> JobOut:
    """Start a background job: ``round`` (re-fit, re-score, refresh the queue), ``apply_lfs``
    (votes of the active LFs, incrementally) or ``pseudo_label`` (confident labels with provenance
    to a file, fetched from ``GET /jobs/{id}/file``). 409 if one of the same kind is already
    queued or running for the project."""
    who.check_project(project_id)
    if body.kind == "apply_lfs":
        job = s.start_apply_lfs(project_id)
    elif body.kind == "pseudo_label":
        job = s.start_pseudo_label(project_id, min_confidence=body.min_confidence,
                                   fmt=body.format, prefer=body.prefer)
    else:
        job = s.start_round(project_id)
    return JobOut(**asdict(job))


@router.get("/jobs/{job_id}/file")
def job_file(job_id: str, s: ServicesDep, who: Engineer) -> FileResponse:
    """The file a finished ``pseudo_label`` job wrote. It lives on the replica that ran the job
    (give replicas a shared data volume to fetch it from any of them)."""
    job = s.store.get_job(job_id)
    who.check_project(job.project_id)
    if job.kind != "pseudo_label" or job.status != "succeeded":
        raise Conflict(f"job {job_id} is a {job.kind!r} job with status {job.status!r}; only a "
                       "succeeded pseudo_label job has a file")
    path = Path(job.result["path"])
    if not path.is_file():
        raise NotFound(f"job {job_id}'s file {path} is not on this replica")
    fmt = job.result["format"]
    return FileResponse(path, media_type=MEDIA[fmt], filename=f"{job.project_id}-pseudo.{fmt}")


@router.get("/projects/{project_id}/jobs")
def list_jobs(project_id: str, s: ServicesDep, who: Engineer) -> list[JobOut]:
    return [JobOut(**asdict(j)) for j in s.store.list_jobs(project_id)]


@router.get("/jobs/{job_id}")
def get_job(job_id: str, s: ServicesDep, who: Engineer) -> JobOut:
    job = s.store.get_job(job_id)
    who.check_project(job.project_id)
    return JobOut(**asdict(job))


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: str, s: ServicesDep, who: Engineer) -> JobOut:
    who.check_project(s.store.get_job(job_id).project_id)
    return JobOut(**asdict(s.jobs.cancel(job_id)))
