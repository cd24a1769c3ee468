from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from api.auth import Engineer
from api.deps import ServicesDep
from api.schemas import JobIn, JobOut

router = APIRouter(tags=["jobs"])


@router.post("/projects/{project_id}/jobs", status_code=202)
def start_job(project_id: str, body: JobIn, s: ServicesDep, who: Engineer) -> JobOut:
    """Start a background job (``round``: re-fit, re-score, refresh the queue). 409 if one of the
    same kind is already queued or running for the project."""
    return JobOut(**asdict(s.start_round(project_id)))


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
