"""How records and arrays become bytes and JSON, shared by both backends (no pickle anywhere)."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import Any

import numpy as np

from api.storage.records import ClassSpec, Project, ProjectSettings

__all__ = ["array_to_bytes", "bytes_to_array", "dumps", "from_json", "loads", "to_json"]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(data: bytes | str) -> Any:
    return json.loads(data)


def to_json(record: Any) -> str:  # a record (Project, Round, Job ...); from_json reads it back
    return dumps(asdict(record))


def from_json(cls: type, text: bytes | str) -> Any:
    doc = json.loads(text)
    if cls is Project:
        doc.update(classes=tuple(ClassSpec(**c) for c in doc["classes"]),
                   settings=ProjectSettings(**doc["settings"]))
    return cls(**doc)


def array_to_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def bytes_to_array(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)
