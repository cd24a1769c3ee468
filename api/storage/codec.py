"""How records and arrays become bytes and JSON, shared by both backends (no pickle anywhere)."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import Any

import numpy as np

from api.storage.records import ClassSpec, Job, Project, ProjectSettings, Round

__all__ = [
    "array_to_bytes",
    "bytes_to_array",
    "dumps",
    "job_from_json",
    "job_to_json",
    "loads",
    "project_from_json",
    "project_to_json",
    "round_from_json",
    "round_to_json",
]

def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(data: bytes | str) -> Any:
    return json.loads(data)


def array_to_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def bytes_to_array(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def project_to_json(project: Project) -> str:
    return dumps(asdict(project))


def project_from_json(text: str) -> Project:
    doc = json.loads(text)
    return Project(
        id=doc["id"],
        classes=tuple(ClassSpec(**c) for c in doc["classes"]),
        settings=ProjectSettings(**doc["settings"]),
        guidelines=doc.get("guidelines", ""),
        created_at=doc.get("created_at", 0.0),
    )


def round_to_json(rnd: Round) -> str:
    return dumps(asdict(rnd))


def round_from_json(text: str) -> Round:
    return Round(**json.loads(text))


def job_to_json(job: Job) -> str:
    return dumps(asdict(job))


def job_from_json(text: str) -> Job:
    return Job(**json.loads(text))
