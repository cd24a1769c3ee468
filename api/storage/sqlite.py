"""Embedded store: one SQLite file in WAL mode, the default for a single coordinator process.

Every public method runs in one transaction (``BEGIN IMMEDIATE`` for writes) under a process
lock, so the lease rules in :mod:`api.storage.base` hold across threads and, through SQLite's own
file locking, across processes sharing the file.

An item is ``open`` (in the partial index a lease walks) only while nobody holds it and it still
needs an answer; a lease takes its items out (``held_until``) and expired holds are put back
first. So a lease reads the rows it returns plus the few the annotator already answered, whatever
the pool size or the number of live leases.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from api.storage.base import Store
from api.storage.codec import (
    array_to_bytes,
    bytes_to_array,
    dumps,
    job_from_json,
    job_to_json,
    project_from_json,
    project_to_json,
    round_from_json,
    round_to_json,
)
from api.storage.records import (
    Annotation,
    Item,
    Job,
    Lease,
    LeasedItem,
    LFRecord,
    Project,
    ProjectSettings,
    Round,
    SubmitResult,
)
from labeling.errors import Conflict, InvalidInput, NotFound

__all__ = ["SQLiteStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    project_id TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    text TEXT, features TEXT NOT NULL, meta TEXT NOT NULL, votes TEXT, gold INTEGER,
    is_eval INTEGER NOT NULL, rand_key REAL NOT NULL,
    required INTEGER NOT NULL DEFAULT 1, n_labels INTEGER NOT NULL DEFAULT 0,
    flagged INTEGER NOT NULL DEFAULT 0, open INTEGER NOT NULL DEFAULT 1, held_until REAL,
    PRIMARY KEY (project_id, id), UNIQUE (project_id, seq));
CREATE INDEX IF NOT EXISTS items_open ON items (project_id, is_eval, rand_key) WHERE open = 1;
CREATE INDEX IF NOT EXISTS items_held ON items (project_id, held_until) WHERE held_until IS NOT NULL;
CREATE TABLE IF NOT EXISTS queue (
    project_id TEXT NOT NULL, item_id TEXT NOT NULL, rank INTEGER NOT NULL,
    score REAL NOT NULL, reasons TEXT NOT NULL, PRIMARY KEY (project_id, item_id));
CREATE INDEX IF NOT EXISTS queue_rank ON queue (project_id, rank);
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, annotator TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS lease_items (
    lease_id TEXT NOT NULL, project_id TEXT NOT NULL, item_id TEXT NOT NULL,
    annotator TEXT NOT NULL, expires_at REAL NOT NULL, state TEXT NOT NULL,
    is_eval INTEGER NOT NULL, reasons TEXT NOT NULL,
    PRIMARY KEY (lease_id, item_id));
CREATE INDEX IF NOT EXISTS lease_items_item ON lease_items (project_id, item_id, state);
CREATE INDEX IF NOT EXISTS lease_items_live ON lease_items (state, expires_at);
CREATE TABLE IF NOT EXISTS answered (
    project_id TEXT NOT NULL, item_id TEXT NOT NULL, annotator TEXT NOT NULL,
    PRIMARY KEY (project_id, item_id, annotator));
CREATE TABLE IF NOT EXISTS annotations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, project_id TEXT NOT NULL, item_id TEXT NOT NULL,
    annotator TEXT NOT NULL, kind TEXT NOT NULL, label INTEGER, comment TEXT NOT NULL,
    lease_id TEXT, idem_key TEXT, time_spent REAL, created_at REAL NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS annotations_idem ON annotations (project_id, idem_key)
    WHERE idem_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS annotations_project ON annotations (project_id, seq);
CREATE TABLE IF NOT EXISTS lfs (
    project_id TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, kind TEXT NOT NULL,
    source TEXT NOT NULL, active INTEGER NOT NULL, created_at REAL NOT NULL, ord INTEGER NOT NULL,
    PRIMARY KEY (project_id, name));
CREATE TABLE IF NOT EXISTS votes (
    project_id TEXT NOT NULL, version TEXT NOT NULL, data BLOB NOT NULL,
    faults INTEGER NOT NULL, first_error TEXT, PRIMARY KEY (project_id, version));
CREATE TABLE IF NOT EXISTS arrays (
    project_id TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (project_id, name));
CREATE TABLE IF NOT EXISTS rounds (
    project_id TEXT NOT NULL, number INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (project_id, number));
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_project ON jobs (project_id, kind, status);
"""

ITEM_COLS = "id, seq, text, features, meta, votes, gold, is_eval"


def _item(row: Sequence[Any]) -> Item:
    return Item(
        id=row[0],
        seq=row[1],
        text=row[2],
        features=json.loads(row[3]),
        meta=json.loads(row[4]),
        votes=tuple(json.loads(row[5])) if row[5] is not None else None,
        gold=row[6],
        is_eval=bool(row[7]),
    )


class SQLiteStore(Store):
    """SQLite backend. ``path`` is a file (created with its folder) or ``":memory:"``."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(SCHEMA)

    @contextmanager
    def _tx(self, write: bool = True, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction. ``durable=False`` skips the fsync at commit (WAL, synchronous=NORMAL):
        for leases, which a crash may forget harmlessly; never for annotations."""
        with self._lock:
            if not durable:
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                if not durable:
                    self._db.execute("PRAGMA synchronous=FULL")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def ping(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1").fetchone() == (1,)

    # -- projects -------------------------------------------------------------------------
    def create_project(self, project: Project) -> Project:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM projects WHERE id=?", (project.id,)).fetchone():
                raise Conflict(f"project {project.id!r} already exists")
            db.execute("INSERT INTO projects VALUES (?, ?)", (project.id, project_to_json(project)))
        return project

    def _project(self, db: sqlite3.Connection, project_id: str) -> Project:
        row = db.execute("SELECT doc FROM projects WHERE id=?", (project_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown project {project_id!r}")
        return project_from_json(row[0])

    def get_project(self, project_id: str) -> Project:
        with self._tx(write=False) as db:
            return self._project(db, project_id)

    def list_projects(self) -> list[Project]:
        with self._tx(write=False) as db:
            rows = db.execute("SELECT doc FROM projects ORDER BY id").fetchall()
        return [project_from_json(r[0]) for r in rows]

    def update_settings(self, project_id: str, settings: ProjectSettings) -> Project:
        with self._tx() as db:
            project = replace(self._project(db, project_id), settings=settings)
            db.execute("UPDATE projects SET doc=? WHERE id=?", (project_to_json(project), project_id))
        return project

    # -- items ----------------------------------------------------------------------------
    def add_items(self, project_id, items, *, on_conflict, rand_keys):
        if on_conflict not in ("reject", "upsert"):
            raise InvalidInput(f"on_conflict must be 'reject' or 'upsert', got {on_conflict!r}")
        ids = [it.id for it in items]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            dup = next(i for i in ids if i in seen or seen.add(i))
            raise Conflict(f"item id {dup!r} appears twice in one upload")
        with self._tx() as db:
            self._project(db, project_id)
            existing: set[str] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                existing.update(
                    r[0]
                    for r in db.execute(
                        f"SELECT id FROM items WHERE project_id=? AND id IN ({marks})",
                        (project_id, *chunk),
                    )
                )
            if existing and on_conflict == "reject":
                first = sorted(existing)[0]
                raise Conflict(
                    f"{len(existing)} item id(s) already exist (first: {first!r}); "
                    "upload with on_conflict='upsert' to replace them"
                )
            (next_seq,) = db.execute(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM items WHERE project_id=?", (project_id,)
            ).fetchone()
            new_rows, upd_rows = [], []
            for it, key in zip(items, rand_keys, strict=True):
                votes = dumps(list(it.votes)) if it.votes is not None else None
                payload = (it.text, dumps(it.features), dumps(it.meta), votes, it.gold)
                if it.id in existing:
                    upd_rows.append((*payload, project_id, it.id))
                else:
                    new_rows.append(
                        (project_id, it.id, next_seq, *payload, int(it.is_eval), float(key))
                    )
                    next_seq += 1
            db.executemany(
                "INSERT INTO items (project_id, id, seq, text, features, meta, votes, gold,"
                " is_eval, rand_key) VALUES (?,?,?,?,?,?,?,?,?,?)",
                new_rows,
            )
            db.executemany(
                "UPDATE items SET text=?, features=?, meta=?, votes=?, gold=?"
                " WHERE project_id=? AND id=?",
                upd_rows,
            )
        return len(new_rows), len(upd_rows)

    def count_items(self, project_id: str) -> int:
        with self._tx(write=False) as db:
            self._project(db, project_id)
            return db.execute("SELECT COUNT(*) FROM items WHERE project_id=?", (project_id,)).fetchone()[0]

    def get_item(self, project_id: str, item_id: str) -> Item:
        with self._tx(write=False) as db:
            row = db.execute(
                f"SELECT {ITEM_COLS} FROM items WHERE project_id=? AND id=?", (project_id, item_id)
            ).fetchone()
            if row is None:
                self._project(db, project_id)
                raise NotFound(f"unknown item {item_id!r} in project {project_id!r}")
        return _item(row)

    def iter_items(self, project_id: str, *, start: int = 0, chunk: int = 10_000):
        self.get_project(project_id)
        seq = start
        while True:
            with self._tx(write=False) as db:
                rows = db.execute(
                    f"SELECT {ITEM_COLS} FROM items WHERE project_id=? AND seq>=? ORDER BY seq LIMIT ?",
                    (project_id, seq, chunk),
                ).fetchall()
            if not rows:
                return
            yield [_item(r) for r in rows]
            seq = rows[-1][1] + 1

    # -- LFs and votes --------------------------------------------------------------------
    def put_lfs(self, project_id: str, lfs: Sequence[LFRecord]) -> None:
        with self._tx() as db:
            self._project(db, project_id)
            (ord_,) = db.execute(
                "SELECT COALESCE(MAX(ord) + 1, 0) FROM lfs WHERE project_id=?", (project_id,)
            ).fetchone()
            for lf in lfs:
                row = db.execute(
                    "SELECT ord FROM lfs WHERE project_id=? AND name=?", (project_id, lf.name)
                ).fetchone()
                db.execute(
                    "INSERT OR REPLACE INTO lfs VALUES (?,?,?,?,?,?,?,?)",
                    (project_id, lf.name, lf.version, lf.kind, lf.source, int(lf.active),
                     lf.created_at, row[0] if row else ord_),
                )
                ord_ += 0 if row else 1

    def list_lfs(self, project_id: str) -> list[LFRecord]:
        with self._tx(write=False) as db:
            self._project(db, project_id)
            rows = db.execute(
                "SELECT name, version, kind, source, active, created_at FROM lfs"
                " WHERE project_id=? ORDER BY ord",
                (project_id,),
            ).fetchall()
        return [LFRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]

    def deactivate_lf(self, project_id: str, name: str) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE lfs SET active=0 WHERE project_id=? AND name=?", (project_id, name)
            )
            if cur.rowcount == 0:
                self._project(db, project_id)
                raise NotFound(f"unknown labeling function {name!r}")

    def get_votes(self, project_id, version):
        with self._tx(write=False) as db:
            row = db.execute(
                "SELECT data, faults, first_error FROM votes WHERE project_id=? AND version=?",
                (project_id, version),
            ).fetchone()
        if row is None:
            return np.empty(0, dtype=np.int8), 0, None
        return bytes_to_array(row[0]), row[1], row[2]

    def put_votes(self, project_id, version, votes, faults, first_error):
        data = array_to_bytes(np.asarray(votes, dtype=np.int8))
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO votes VALUES (?,?,?,?,?)",
                (project_id, version, data, int(faults), first_error),
            )

    # -- arrays ---------------------------------------------------------------------------
    def put_array(self, project_id: str, name: str, array: np.ndarray) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO arrays VALUES (?,?,?)",
                (project_id, name, array_to_bytes(array)),
            )

    def get_array(self, project_id: str, name: str) -> np.ndarray | None:
        with self._tx(write=False) as db:
            row = db.execute(
                "SELECT data FROM arrays WHERE project_id=? AND name=?", (project_id, name)
            ).fetchone()
        return None if row is None else bytes_to_array(row[0])

    # -- queue ----------------------------------------------------------------------------
    def set_queue(self, project_id, item_ids, scores, reasons):
        rows = [
            (project_id, iid, rank, float(s), dumps(r))
            for rank, (iid, s, r) in enumerate(zip(item_ids, scores, reasons, strict=True))
        ]
        with self._tx() as db:
            self._project(db, project_id)
            db.execute("DELETE FROM queue WHERE project_id=?", (project_id,))
            db.executemany("INSERT INTO queue VALUES (?,?,?,?,?)", rows)

    def queue_depth(self, project_id: str, now: float) -> dict[str, int]:
        with self._tx(write=False) as db:
            self._project(db, project_id)
            total, done, flagged, evals = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(n_labels >= required), 0), COALESCE(SUM(flagged), 0),"
                " COALESCE(SUM(is_eval), 0) FROM items WHERE project_id=?",
                (project_id,),
            ).fetchone()
            (leased,) = db.execute(
                "SELECT COUNT(*) FROM items WHERE project_id=? AND held_until>?", (project_id, now)
            ).fetchone()
            open_ = total - done - flagged
        return {
            "total": total, "open": open_, "leased": leased,
            "done": done, "flagged": flagged, "eval": evals,
        }

    # -- leases ---------------------------------------------------------------------------
    _AVAILABLE = (
        " AND NOT EXISTS (SELECT 1 FROM answered a WHERE a.project_id=i.project_id"
        " AND a.item_id=i.id AND a.annotator=:annotator)"
    )

    @staticmethod
    def _reclaim(db: sqlite3.Connection, now: float, project_id: str | None = None) -> int:
        """Put items whose hold expired back in the pool; their lease items become 'expired'."""
        where = "held_until IS NOT NULL AND held_until<=?"
        params: tuple = (now,)
        if project_id is not None:
            where = "project_id=? AND " + where
            params = (project_id, now)
        rows = db.execute(f"SELECT project_id, id FROM items WHERE {where}", params).fetchall()
        if not rows:
            return 0
        db.executemany(
            "UPDATE lease_items SET state='expired' WHERE project_id=? AND item_id=? AND state='open'",
            rows,
        )
        db.execute(f"UPDATE items SET held_until=NULL, open=(flagged=0 AND n_labels<required)"
                   f" WHERE {where}", params)
        return len(rows)

    def lease(self, project_id, annotator, n, *, n_eval, now, ttl, lease_id):
        if n < 0 or n_eval < 0:
            raise InvalidInput(f"lease size must be >= 0, got n={n}, n_eval={n_eval}")
        args = {"p": project_id, "annotator": annotator, "now": now}
        cols = ", ".join(f"i.{c.strip()}" for c in ITEM_COLS.split(","))
        with self._tx(durable=False) as db:
            if db.execute("SELECT 1 FROM projects WHERE id=?", (project_id,)).fetchone() is None:
                raise NotFound(f"unknown project {project_id!r}")
            self._reclaim(db, now, project_id)
            picked: dict[str, LeasedItem] = {}

            def take(sql: str, limit: int, is_eval: bool) -> None:
                added = 0
                if limit <= 0:
                    return
                for row in db.execute(sql, args):  # the cursor streams in index order
                    if row[0] in picked:
                        continue
                    reasons = (json.loads(row[-1]) if row[-1] else
                               {"strategy": "evaluation_slice" if is_eval else "pool_order"})
                    picked[row[0]] = LeasedItem(_item(row), reasons, is_eval)
                    added += 1
                    if added >= limit:
                        break

            eval_sql = (
                f"SELECT {cols}, NULL FROM items i WHERE i.project_id=:p AND i.is_eval=1"
                " AND i.open=1" + self._AVAILABLE + " ORDER BY i.rand_key"
            )
            take(eval_sql, min(n_eval, n), True)
            queue_sql = (
                f"SELECT {cols}, q.reasons FROM queue q JOIN items i ON i.project_id=q.project_id"
                " AND i.id=q.item_id WHERE q.project_id=:p AND i.is_eval=0 AND i.open=1"
                + self._AVAILABLE + " ORDER BY q.rank"
            )
            pool_sql = (
                f"SELECT {cols}, NULL FROM items i WHERE i.project_id=:p AND i.is_eval=0"
                " AND i.open=1" + self._AVAILABLE + " ORDER BY i.rand_key"
            )
            take(queue_sql, n - len(picked), False)
            take(pool_sql, n - len(picked), False)
            take(eval_sql, n - len(picked), True)  # fill from the slice when the pool is dry
            expires = now + ttl
            if picked:
                db.execute(
                    "INSERT INTO leases VALUES (?,?,?,?)", (lease_id, project_id, annotator, now)
                )
                ids = list(picked)
                db.execute(
                    f"UPDATE items SET open=0, held_until=? WHERE project_id=? AND id IN"
                    f" ({','.join('?' * len(ids))})",
                    (expires, project_id, *ids),
                )
                db.executemany(
                    "INSERT INTO lease_items VALUES (?,?,?,?,?,'open',?,?)",
                    [(lease_id, project_id, iid, annotator, expires, int(li.eval), dumps(li.reasons))
                     for iid, li in picked.items()],
                )
        return Lease(lease_id, project_id, annotator, expires, tuple(picked), tuple(picked.values()))

    def _lease_row(self, db: sqlite3.Connection, lease_id: str) -> tuple[str, str]:
        row = db.execute("SELECT project_id, annotator FROM leases WHERE id=?", (lease_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown lease {lease_id!r}")
        return row

    def get_lease(self, lease_id: str) -> Lease:
        with self._tx(write=False) as db:
            project_id, annotator = self._lease_row(db, lease_id)
            rows = db.execute(
                "SELECT item_id, expires_at FROM lease_items WHERE lease_id=? AND state='open'",
                (lease_id,),
            ).fetchall()
        expires = max((r[1] for r in rows), default=0.0)
        return Lease(lease_id, project_id, annotator, expires, tuple(r[0] for r in rows))

    def renew(self, lease_id, annotator, *, now, ttl):
        with self._tx() as db:
            project_id, owner = self._lease_row(db, lease_id)
            if owner != annotator:
                raise Conflict(f"lease {lease_id!r} belongs to another annotator")
            cur = db.execute(
                "UPDATE lease_items SET expires_at=? WHERE lease_id=? AND state='open'"
                " AND expires_at>?",
                (now + ttl, lease_id, now),
            )
            if cur.rowcount == 0:
                raise Conflict(f"lease {lease_id!r} has expired or holds no open items")
            db.execute(
                "UPDATE items SET held_until=? WHERE project_id=? AND id IN (SELECT item_id FROM"
                " lease_items WHERE lease_id=? AND state='open')",
                (now + ttl, project_id, lease_id),
            )
        return self.get_lease(lease_id)

    def release(self, lease_id, annotator, *, item_ids=None, now):
        with self._tx() as db:
            project_id, owner = self._lease_row(db, lease_id)
            if owner != annotator:
                raise Conflict(f"lease {lease_id!r} belongs to another annotator")
            sql = "SELECT item_id FROM lease_items WHERE lease_id=? AND state='open'"
            params: list[Any] = [lease_id]
            if item_ids is not None:
                sql += f" AND item_id IN ({','.join('?' * len(item_ids))})"
                params += list(item_ids)
            rows = db.execute(sql, params).fetchall()
            db.executemany(
                "UPDATE lease_items SET state='released' WHERE lease_id=? AND item_id=?",
                [(lease_id, r[0]) for r in rows],
            )
            db.executemany(
                "UPDATE items SET held_until=NULL, open=(flagged=0 AND n_labels<required)"
                " WHERE project_id=? AND id=?",
                [(project_id, r[0]) for r in rows],
            )
            return len(rows)

    def expire(self, now: float) -> int:
        with self._tx() as db:
            return self._reclaim(db, now)

    # -- annotations ----------------------------------------------------------------------
    def submit(self, annotations, *, now):
        results: list[SubmitResult] = []
        with self._tx() as db:
            for ann in annotations:
                if ann.idempotency_key is not None:
                    row = db.execute(
                        "SELECT seq, project_id, item_id, annotator, kind, label, comment, lease_id,"
                        " idem_key, time_spent, created_at FROM annotations"
                        " WHERE project_id=? AND idem_key=?",
                        (ann.project_id, ann.idempotency_key),
                    ).fetchone()
                    if row is not None:
                        results.append(SubmitResult(_annotation(row), duplicate=True))
                        continue
                live = db.execute(
                    "SELECT annotator, expires_at FROM lease_items WHERE lease_id=? AND item_id=?"
                    " AND project_id=? AND state='open'",
                    (ann.lease_id, ann.item_id, ann.project_id),
                ).fetchone()
                if live is None or live[0] != ann.annotator:
                    raise Conflict(
                        f"item {ann.item_id!r} is not open in lease {ann.lease_id!r} of annotator "
                        f"{ann.annotator!r} (wrong lease, already answered, released or expired)"
                    )
                db.execute(
                    "UPDATE lease_items SET state='done' WHERE lease_id=? AND item_id=?",
                    (ann.lease_id, ann.item_id),
                )
                cur = db.execute(
                    "INSERT INTO annotations (project_id, item_id, annotator, kind, label, comment,"
                    " lease_id, idem_key, time_spent, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (ann.project_id, ann.item_id, ann.annotator, ann.kind, ann.label, ann.comment,
                     ann.lease_id, ann.idempotency_key, ann.time_spent_s, now),
                )
                db.execute(
                    "INSERT OR IGNORE INTO answered VALUES (?,?,?)",
                    (ann.project_id, ann.item_id, ann.annotator),
                )
                labels = int(ann.kind == "label")
                db.execute(  # the hold ends; a skipped item goes back to the pool for others
                    "UPDATE items SET n_labels=n_labels+?, flagged=(flagged OR ?), held_until=NULL,"
                    " open=(n_labels+?<required AND flagged=0 AND ?=0) WHERE project_id=? AND id=?",
                    (labels, int(ann.kind == "flag"), labels, int(ann.kind == "flag"),
                     ann.project_id, ann.item_id),
                )
                results.append(
                    SubmitResult(replace(ann, seq=cur.lastrowid, created_at=now), duplicate=False)
                )
        return results

    def annotations(self, project_id: str, *, since: int = 0) -> list[Annotation]:
        with self._tx(write=False) as db:
            self._project(db, project_id)
            rows = db.execute(
                "SELECT seq, project_id, item_id, annotator, kind, label, comment, lease_id,"
                " idem_key, time_spent, created_at FROM annotations WHERE project_id=? AND seq>?"
                " ORDER BY seq",
                (project_id, since),
            ).fetchall()
        return [_annotation(r) for r in rows]

    def count_labels(self, project_id: str) -> int:
        with self._tx(write=False) as db:
            return db.execute(
                "SELECT COUNT(*) FROM annotations WHERE project_id=? AND kind='label'", (project_id,)
            ).fetchone()[0]

    # -- rounds ---------------------------------------------------------------------------
    def add_round(self, rnd: Round) -> None:
        with self._tx() as db:
            self._project(db, rnd.project_id)
            db.execute(
                "INSERT INTO rounds VALUES (?,?,?)", (rnd.project_id, rnd.number, round_to_json(rnd))
            )

    def list_rounds(self, project_id: str) -> list[Round]:
        with self._tx(write=False) as db:
            self._project(db, project_id)
            rows = db.execute(
                "SELECT doc FROM rounds WHERE project_id=? ORDER BY number", (project_id,)
            ).fetchall()
        return [round_from_json(r[0]) for r in rows]

    # -- jobs -----------------------------------------------------------------------------
    def create_job(self, job: Job) -> Job:
        with self._tx() as db:
            self._project(db, job.project_id)
            row = db.execute(
                "SELECT id FROM jobs WHERE project_id=? AND kind=? AND status IN ('queued','running')",
                (job.project_id, job.kind),
            ).fetchone()
            if row is not None:
                raise Conflict(f"a {job.kind!r} job is already running for this project: {row[0]}")
            db.execute(
                "INSERT INTO jobs VALUES (?,?,?,?,?)",
                (job.id, job.project_id, job.kind, job.status, job_to_json(job)),
            )
        return job

    def update_job(self, job_id: str, **fields: Any) -> Job:
        with self._tx() as db:
            job = replace(self._job(db, job_id), **fields)
            db.execute(
                "UPDATE jobs SET status=?, doc=? WHERE id=?", (job.status, job_to_json(job), job_id)
            )
        return job

    def _job(self, db: sqlite3.Connection, job_id: str) -> Job:
        row = db.execute("SELECT doc FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown job {job_id!r}")
        return job_from_json(row[0])

    def get_job(self, job_id: str) -> Job:
        with self._tx(write=False) as db:
            return self._job(db, job_id)

    def list_jobs(self, project_id: str) -> list[Job]:
        with self._tx(write=False) as db:
            self._project(db, project_id)
            rows = db.execute(
                "SELECT doc FROM jobs WHERE project_id=? ORDER BY rowid", (project_id,)
            ).fetchall()
        return [job_from_json(r[0]) for r in rows]


def _annotation(row: Sequence[Any]) -> Annotation:
    return Annotation(
        seq=row[0], project_id=row[1], item_id=row[2], annotator=row[3], kind=row[4],
        label=row[5], comment=row[6], lease_id=row[7], idempotency_key=row[8],
        time_spent_s=row[9], created_at=row[10],
    )
