"""Ingest: records from files or request bodies into a project's pool.

Gold labels are stored for evaluation and simulation only; the loop never reads them. File votes
(WRENCH ``weak_labels`` or vote columns) become labeling functions of their own (kind "votes").

The whole input is checked (:func:`check_records`) before the first store call: a bad row, at
any line, fails the import with its line or row and "nothing was stored". A file is read twice
for that (once to check, once to store), so memory stays flat for any size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from api.storage.base import Store
from api.storage.records import Item, LFRecord, Project
from labeling.errors import Conflict, InvalidInput, SchemaError
from labeling.ingest import Delimited, Record, finalize, read_records, unique_ids
from labeling.validation import check_record

__all__ = ["IngestReport", "check_records", "ingest_file", "ingest_items", "ingest_records",
           "ingest_upload"]

CHUNK = 5_000


@dataclass(frozen=True)
class IngestReport:
    inserted: int
    updated: int
    eval_items: int
    vote_lfs: int


def _item(project: Project, rec: Record, is_eval: bool) -> Item:
    if rec.gold is not None and not 0 <= rec.gold < project.n_classes:
        raise SchemaError(
            f"item {rec.id!r}: label {rec.gold} is not a class index 0..{project.n_classes - 1}"
        )
    if rec.votes is not None:
        bad = [v for v in rec.votes if not -1 <= v < project.n_classes]
        if bad:
            raise SchemaError(f"item {rec.id!r}: vote {bad[0]} outside -1..{project.n_classes - 1}")
    return Item(rec.id, -1, rec.text, dict(rec.features), dict(rec.meta), rec.votes, rec.gold, is_eval)


def check_records(project: Project, records: Iterable[Record], *, on_conflict: str) -> int:
    """Check every record as storing it would (text, numbers and ids; labels and votes against
    the project; one vote count; no id twice when ``on_conflict="reject"``) and return how many
    there are. Errors end in "nothing was stored"."""
    seen: set[str] = set()
    n_votes: int | None = None
    k = 0
    try:
        try:
            for k, rec in enumerate(records, 1):
                check_record(rec, f"item {rec.id!r:.60}")
                _item(project, rec, False)
                if rec.votes is not None:
                    n_votes = len(rec.votes) if n_votes is None else n_votes
                    if len(rec.votes) != n_votes:
                        raise InvalidInput(f"item {rec.id!r:.60} has {len(rec.votes)} votes, "
                                           f"earlier items {n_votes}")
                if on_conflict == "reject":
                    if rec.id in seen:
                        raise Conflict(f"item id {rec.id!r:.60} appears twice in the input")
                    seen.add(rec.id)
        except RecursionError:
            raise InvalidInput(f"record {k + 1}: nested too deeply to read") from None
        except (OSError, ValueError) as exc:
            if isinstance(exc, InvalidInput):
                raise
            raise InvalidInput(f"after record {k}: unreadable data ({type(exc).__name__}: "
                               f"{str(exc)[:200]})") from exc
    except (InvalidInput, Conflict) as exc:
        raise type(exc)(f"{exc}; nothing was stored") from exc
    return k


def ingest_records(
    store: Store,
    project_id: str,
    records: Iterable[Record],
    *,
    on_conflict: str = "reject",
    rng: np.random.Generator,
    vote_names: list[str] | None = None,
    now: float,
    checked: bool = False,
) -> IngestReport:
    """Check ``records`` (:func:`check_records`; ``checked``: the caller did) and store them in
    chunks. With ``on_conflict="reject"`` an id the pool already has fails the chunk that holds
    it (earlier chunks stay stored and are reported in the error)."""
    project = store.get_project(project_id)
    if not checked:
        records = records if isinstance(records, Sequence) else list(records)
        check_records(project, records, on_conflict=on_conflict)
    frac = project.settings.eval_fraction
    inserted = updated = n_eval = 0
    n_votes: int | None = None
    batch: list[Item] = []

    def flush() -> None:
        nonlocal inserted, updated
        if not batch:
            return
        try:
            ins, upd = store.add_items(
                project_id, batch, on_conflict=on_conflict, rand_keys=rng.random(len(batch))
            )
        except Conflict as exc:
            if inserted or updated:
                raise Conflict(f"{exc} (the {inserted + updated} items before it were stored)") from exc
            raise
        inserted, updated = inserted + ins, updated + upd
        batch.clear()

    for rec in records:
        if rec.votes is not None:
            if n_votes is None:
                n_votes = len(rec.votes)
            elif len(rec.votes) != n_votes:
                raise InvalidInput(f"item {rec.id!r} has {len(rec.votes)} votes, earlier items {n_votes}")
        is_eval = bool(rng.random() < frac)
        n_eval += is_eval
        batch.append(_item(project, rec, is_eval))
        if len(batch) >= CHUNK:
            flush()
    flush()
    n_vote_lfs = 0
    if n_votes:
        names = vote_names or [f"votes_{j}" for j in range(n_votes)]
        if len(names) != n_votes:
            raise InvalidInput(f"{len(names)} vote names given for {n_votes} vote columns")
        known = {lf.name for lf in store.list_lfs(project_id)}
        new = [
            LFRecord(name, f"votes-{j}", "votes", str(j), True, now)
            for j, name in enumerate(names)
            if name not in known
        ]
        store.put_lfs(project_id, new)
        n_vote_lfs = n_votes
    return IngestReport(inserted, updated, n_eval, n_vote_lfs)


def ingest_file(
    store: Store,
    project_id: str,
    path: str | Path,
    *,
    fmt: str | None = None,
    on_conflict: str = "reject",
    rng: np.random.Generator,
    now: float,
    progress: bool = False,
    layout: Delimited | None = None,
    duplicates: str = "reject",
    name: str | None = None,
    **columns,
) -> IngestReport:
    """Stream one file into the pool. ``layout`` (separator, header) applies to delimited files;
    ``duplicates`` resolves ids repeated inside the file ("reject", "first", "last"); ``name`` is
    what error messages call the file (an upload's own name, never the server's temp path)."""
    project = store.get_project(project_id)

    def records() -> Iterable[Record]:
        return read_records(path, fmt=fmt, class_names=project.class_names, progress=progress,
                            layout=layout, duplicates=duplicates, name=name, **columns)

    try:
        check_records(project, records(), on_conflict=on_conflict)
    except InvalidInput as exc:  # the reader's own errors (a malformed line) say so too
        if str(exc).endswith("nothing was stored"):
            raise
        raise type(exc)(f"{exc}; nothing was stored") from exc
    vote_cols = columns.get("vote_columns")
    return ingest_records(
        store, project_id, records(), on_conflict=on_conflict, rng=rng,
        vote_names=list(vote_cols) if vote_cols else None, now=now, checked=True,
    )


def ingest_items(
    store: Store,
    project_id: str,
    records: list[Record],
    *,
    duplicates: str = "reject",
    on_conflict: str = "reject",
    rng: np.random.Generator,
    now: float,
) -> IngestReport:
    """Store records given in a request body: each is finalized as a file's row would be (the
    same derived ids), and an id repeated in the body is rejected or resolved (``duplicates``)."""

    def pairs():
        for k, rec in enumerate(records, 1):
            where = f"item {k}" + (f" (id {rec.id!r})" if rec.id else "")
            yield finalize(rec, where), where

    unique = list(unique_ids(pairs, duplicates, "items"))
    return ingest_records(store, project_id, unique, on_conflict=on_conflict, rng=rng, now=now)


def ingest_upload(
    store: Store,
    project_id: str,
    path: Path,
    *,
    name: str,
    fmt: str | None = None,
    on_conflict: str = "reject",
    duplicates: str = "reject",
    text_column: str = "text",
    id_column: str = "id",
    label_column: str = "label",
    feature_columns: str | None = None,
    vote_columns: str | None = None,
    sep: str | None = None,
    header: bool = True,
    columns: str | None = None,
    rng: np.random.Generator,
    now: float,
) -> IngestReport:
    """An uploaded file (stored at ``path`` under a server temp name) into the pool, with the
    CLI's column mapping; comma-separated lists as the query string carries them. Messages call
    the file ``name`` and never show ``path``."""

    def split(value: str | None) -> list[str] | None:
        return [c.strip() for c in value.split(",") if c.strip()] if value else None

    names = split(columns)
    layout = Delimited(sep="\t" if sep in ("\\t", "tab") else sep,
                       header=header and not names, columns=names)
    mapping = {"text_column": text_column, "id_column": id_column, "label_column": label_column,
               "feature_columns": split(feature_columns), "vote_columns": split(vote_columns)}
    return ingest_file(store, project_id, path, fmt=fmt, on_conflict=on_conflict, rng=rng,
                       now=now, layout=layout, duplicates=duplicates, name=name,
                       **{k: v for k, v in mapping.items() if v is not None})
