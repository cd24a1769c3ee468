from __future__ import annotations

import os
import tempfile
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.auth import Engineer
from api.deps import ServicesDep
from api.service.export import export_file

router = APIRouter(tags=["export"])

MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


@router.get("/projects/{project_id}/export")
def export(
    project_id: str, s: ServicesDep, who: Engineer,
    format: Literal["jsonl", "csv", "parquet"] = "jsonl",
    min_confidence: float = Query(0.0, ge=0.0, le=1.0,
                                  description="leave out rows whose confidence is below this"),
    blank_below: float = Query(0.0, ge=0.0, le=1.0, description="keep every row, and blank the "
                               "labels whose confidence is below this (source none)"),
    prefer: Literal["end_model", "label_model"] = "end_model",
    include_text: bool = True,
) -> FileResponse:
    """Every item (or, with ``min_confidence``, those at least that confident) with label, source
    (human / label_model / end_model / none), confidence and versions. CSV cells that a
    spreadsheet would run as formulas are neutralised."""
    fd, path = tempfile.mkstemp(suffix=f".{format}")
    os.close(fd)
    try:
        export_file(s.store, project_id, path, fmt=format, min_confidence=min_confidence,
                    blank_below=blank_below, prefer=prefer, include_text=include_text)
    except BaseException:
        os.unlink(path)
        raise
    return FileResponse(path, media_type=MEDIA[format], filename=f"{project_id}.{format}",
                        background=BackgroundTask(os.unlink, path))
