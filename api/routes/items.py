"""Items: add them in a JSON body, import a file (raw body or multipart upload), read one."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePath
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from api.auth import Annotator, Engineer
from api.deps import Now, ServicesDep
from api.schemas import ImportIn, IngestOut, ItemOut, ItemsIn
from api.service.ingest import ingest_items, ingest_upload
from labeling.errors import InvalidInput, SchemaError
from labeling.ingest import Record

router = APIRouter(prefix="/projects/{project_id}", tags=["items"])


def _record(item, class_names: list[str]) -> Record:
    gold = item.label
    if isinstance(gold, str):
        if gold not in class_names:
            raise SchemaError(f"unknown class {gold!r}; classes are {class_names}")
        gold = class_names.index(gold)
    votes = tuple(item.votes) if item.votes is not None else None
    return Record(item.id or "", item.text, item.features, item.meta, gold, votes)


@router.post("/items", status_code=201)
def add_items(project_id: str, body: ItemsIn, s: ServicesDep, now: Now, who: Engineer) -> IngestOut:
    project = s.store.get_project(project_id)
    records = [_record(it, project.class_names) for it in body.items]
    report = ingest_items(s.store, project_id, records, duplicates=body.duplicates,
                          on_conflict=body.on_conflict, rng=s.rng(), now=now)
    return IngestOut(**report.__dict__)


async def _receive(request: Request, folder: Path, filename: str | None) -> tuple[Path, str]:
    """Write the uploaded file into ``folder``: the ``file`` field of a multipart form, else
    the raw body (streamed). Returns (path, the name messages use): the upload's own name,
    whose suffix the stored file keeps so the format can be inferred from it."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("a multipart import needs the file in a field named 'file'")
        name = PurePath(upload.filename or filename or "upload").name
        path = folder / f"upload{PurePath(name).suffix}"
        with path.open("wb") as fh:
            await run_in_threadpool(shutil.copyfileobj, upload.file, fh)
        await form.close()
        return path, name
    name = PurePath(filename or "upload").name
    path = folder / f"upload{PurePath(name).suffix}"
    with path.open("wb") as fh:
        async for chunk in request.stream():
            fh.write(chunk)
    return path, name


@router.post("/import", status_code=201)
async def import_file(
    project_id: str, request: Request, s: ServicesDep, now: Now, who: Engineer,
    params: Annotated[ImportIn, Query()],
) -> IngestOut:
    """Import a whole file: a multipart upload (field ``file``) or the raw request body, with the
    CLI's column mapping (text, id, label, feature and vote columns), separator and header, and
    the choice for ids repeated inside the file (``duplicates``). The format comes from
    ``format``, else the file name's suffix, else the content."""
    s.store.get_project(project_id)
    options = params.model_dump(exclude={"filename", "format"})
    with tempfile.TemporaryDirectory(prefix="labelloop-import-") as tmp:
        path, name = await _receive(request, Path(tmp), params.filename)
        report = await run_in_threadpool(
            ingest_upload, s.store, project_id, path, name=name, fmt=params.format,
            rng=s.rng(), now=now, **options)
    return IngestOut(**report.__dict__)


@router.get("/items/{item_id}")
def get_item(project_id: str, item_id: str, s: ServicesDep, who: Annotator) -> ItemOut:
    it = s.store.get_item(project_id, item_id)
    return ItemOut(id=it.id, seq=it.seq, text=it.text, features=it.features, meta=it.meta)
