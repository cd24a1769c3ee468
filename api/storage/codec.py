"""How records and arrays become bytes and JSON, shared by both backends (no pickle anywhere)."""

from __future__ import annotations

import io
import json
import re
from dataclasses import asdict
from typing import Any

import numpy as np
import orjson

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

_LONG_DIGITS = re.compile(r"[0-9]{20}")
# bytes: every digit made "0", then a search for twenty of them (a third of the regex's time)
_DIGITS_TO_ZERO, _TWENTY_ZEROS = bytes.maketrans(b"123456789", b"000000000"), b"0" * 20


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(data: bytes | str) -> Any:
    """JSON to Python, by orjson (the read side of the lease path). What orjson refuses or reads
    differently goes through the standard library: NaN and Infinity (which :func:`dumps` writes),
    and integers past 64 bits (which orjson reads as floats; a run of 20 digits sends the text
    there)."""
    if isinstance(data, bytes):
        long_run = _TWENTY_ZEROS in data.translate(_DIGITS_TO_ZERO)
    else:
        long_run = _LONG_DIGITS.search(data) is not None
    if not long_run:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
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
