from __future__ import annotations

import tempfile
from typing import Literal

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.auth import Annotator, Engineer
from api.deps import Now, ServicesDep
from api.schemas import IngestOut, ItemOut, ItemsIn
from api.service.ingest import ingest_file, ingest_records
from labeling.errors import InvalidInput, SchemaError
from labeling.ingest import Record, derive_id

router = APIRouter(prefix="/projects/{project_id}", tags=["items"])


def _record(item, class_names: list[str]) -> Record:
    gold = item.label
    if isinstance(gold, str):
        if gold not in class_names:
            raise SchemaError(f"unknown class {gold!r}; classes are {class_names}")
        gold = class_names.index(gold)
    if item.text is None and not item.features:
        raise InvalidInput(f"item {item.id!r} has neither text nor features")
    item_id = item.id or derive_id(item.text, item.features)  # the same ids a file would get
    votes = tuple(item.votes) if item.votes is not None else None
    return Record(item_id, item.text, item.features, item.meta, gold, votes)


@router.post("/items", status_code=201)
def add_items(project_id: str, body: ItemsIn, s: ServicesDep, now: Now, who: Engineer) -> IngestOut:
    project = s.store.get_project(project_id)
    records = [_record(it, project.class_names) for it in body.items]
    report = ingest_records(s.store, project_id, records, on_conflict=body.on_conflict,
                            rng=s.rng(), now=now)
    return IngestOut(**report.__dict__)


@router.post("/import", status_code=201)
async def import_file(
    project_id: str, request: Request, s: ServicesDep, now: Now, who: Engineer,
    format: Literal["jsonl", "csv", "parquet", "wrench"] = "jsonl",
    on_conflict: Literal["reject", "upsert"] = "reject",
) -> IngestOut:
    """Upload a whole file as the request body (streamed to disk, then ingested)."""
    s.store.get_project(project_id)
    with tempfile.NamedTemporaryFile(suffix=f".{format}") as fh:
        async for chunk in request.stream():
            fh.write(chunk)
        fh.flush()
        report = await run_in_threadpool(
            ingest_file, s.store, project_id, fh.name, fmt=format, on_conflict=on_conflict,
            rng=s.rng(), now=now,
        )
    return IngestOut(**report.__dict__)


@router.get("/items/{item_id}")
def get_item(project_id: str, item_id: str, s: ServicesDep, who: Annotator) -> ItemOut:
    it = s.store.get_item(project_id, item_id)
    return ItemOut(id=it.id, seq=it.seq, text=it.text, features=it.features, meta=it.meta)
