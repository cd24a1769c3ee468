"""Embedded store: one SQLite file in WAL mode, the default for a single coordinator process.

Every public method runs in one transaction (``BEGIN IMMEDIATE`` for writes) under a process lock,
so the model of :mod:`api.storage.base` holds across threads and, through SQLite's file locking,
across processes. Leases and annotations: :mod:`api.storage.sqlite_leases`; the schema:
:mod:`api.storage.sqlite_schema`."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from api.storage.base import Store
from api.storage.codec import array_to_bytes, bytes_to_array, dumps, from_json, to_json
from api.storage.records import Item, Project, ProjectSettings, Round, required_answers
from api.storage.rules import check_fence, check_upload, encode_round
from api.storage.sqlite_leases import LeaseOps
from api.storage.sqlite_schema import ITEM_COLS, ITEMS, item_from_row, migrate
from labeling.errors import Conflict, NotFound

__all__ = ["SQLiteStore"]


class SQLiteStore(LeaseOps, Store):
    """SQLite backend. ``path`` is a file (created with its folder) or ``":memory:"``."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
        # a 1M-item pool's hot pages in a 64 MiB cache; mmap: a large pool is read through the
        # page cache of the OS
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000",
                       "temp_store=MEMORY", "cache_size=-65536", "mmap_size=2147418112"):
            self._db.execute(f"PRAGMA {pragma}")
        self._durable = True
        self.schema_version = migrate(self._db)

    @contextmanager
    def _tx(self, write: bool = True, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction. ``durable=False`` skips the fsync at commit (WAL, synchronous=NORMAL):
        for leases, which a crash may forget harmlessly; never for annotations."""
        with self._lock:
            if write and durable != self._durable:
                self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def ping(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1").fetchone() == (1,)

    # -- projects -------------------------------------------------------------------------
    def create_project(self, project: Project) -> Project:
        with self._tx() as db:
            if not db.execute("INSERT OR IGNORE INTO projects (id, doc) VALUES (?, ?)",
                              (project.id, to_json(project))).rowcount:
                raise Conflict(f"project {project.id!r} already exists")
        return project

    def _project(self, db: sqlite3.Connection, project_id: str) -> Project:
        row = db.execute("SELECT doc FROM projects WHERE id=?", (project_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown project {project_id!r}")
        return from_json(Project, row[0])

    def get_project(self, project_id: str) -> Project:
        with self._lock:  # one statement: its own transaction
            return self._project(self._db, project_id)

    def list_projects(self) -> list[Project]:
        with self._tx(write=False) as db:
            rows = db.execute("SELECT doc FROM projects ORDER BY id").fetchall()
        return [from_json(Project, r[0]) for r in rows]

    def update_settings(self, project_id: str, settings: ProjectSettings, *,
                        guidelines: str | None = None) -> Project:
        with self._tx() as db:
            before = self._project(db, project_id)
            project = replace(before, settings=settings, guidelines=before.guidelines
                              if guidelines is None else guidelines)
            db.execute("UPDATE projects SET doc=? WHERE id=?", (to_json(project), project_id))
            old, new = before.settings, settings
            if (new.redundancy_fraction, new.redundancy_k) != (old.redundancy_fraction, old.redundancy_k):
                ids = [r[0] for r in db.execute("SELECT id FROM items WHERE project_id=?", (project_id,))]
                db.executemany("UPDATE pool SET required=? WHERE project_id=? AND item_id=?",
                               [(required_answers(i, new.redundancy_fraction, new.redundancy_k),
                                 project_id, i) for i in ids])
        return project

    # -- items ----------------------------------------------------------------------------
    def add_items(self, project_id, items, *, on_conflict, rand_keys):
        pools = check_upload(items, on_conflict, rand_keys)
        ids = [it.id for it in items]
        with self._tx() as db:  # one transaction: all of the upload or none of it
            redundancy = self._project(db, project_id).settings
            existing: set[str] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                existing.update(r[0] for r in db.execute(
                    f"SELECT id FROM items WHERE project_id=? AND id IN ({','.join('?' * len(chunk))})",
                    (project_id, *chunk)))
            if existing and on_conflict == "reject":
                raise Conflict(f"{len(existing)} item id(s) already exist (first: "
                               f"{min(existing)!r}); upload with on_conflict='upsert' to replace them")
            (seq,) = db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM items WHERE project_id=?",
                                (project_id,)).fetchone()
            new_rows, pool_rows, upd_rows = [], [], []
            for it, pool, key in zip(items, pools, rand_keys, strict=True):
                votes = dumps(list(it.votes)) if it.votes is not None else None
                payload = (it.text, dumps(it.features), dumps(it.meta), votes, it.gold)
                if it.id in existing:
                    upd_rows.append((*payload, project_id, it.id))
                    continue
                new_rows.append((project_id, it.id, seq, *payload, int(it.is_eval or pool == "eval"),
                                 float(key)))
                pool_rows.append((project_id, pool, float(key), it.id, required_answers(
                    it.id, redundancy.redundancy_fraction, redundancy.redundancy_k)))
                seq += 1
            db.executemany("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?,?)", new_rows)
            db.executemany("INSERT INTO pool (project_id, pool, pool_key, item_id, required)"
                           " VALUES (?,?,?,?,?)", pool_rows)
            db.executemany("UPDATE items SET text=?, features=?, meta=?, votes=?, gold=?"
                           " WHERE project_id=? AND id=?", upd_rows)
        return len(new_rows), len(upd_rows)

    def count_items(self, project_id: str) -> int:
        with self._tx(write=False) as db:
            self._project(db, project_id)
            return db.execute("SELECT COUNT(*) FROM items WHERE project_id=?", (project_id,)).fetchone()[0]

    def get_item(self, project_id: str, item_id: str) -> Item:
        with self._tx(write=False) as db:
            row = db.execute(f"SELECT {ITEM_COLS} FROM {ITEMS} WHERE i.project_id=? AND i.id=?",
                             (project_id, item_id)).fetchone()
            if row is None:
                self._project(db, project_id)
                raise NotFound(f"unknown item {item_id!r} in project {project_id!r}")
        return item_from_row(row)

    def _item_chunk(self, project_id: str, start: int, n: int) -> list[Item]:
        with self._lock:
            rows = self._db.execute(f"SELECT {ITEM_COLS} FROM {ITEMS} WHERE i.project_id=? AND"
                                    " i.seq>=? ORDER BY i.seq LIMIT ?", (project_id, start, n))
            return [item_from_row(r) for r in rows]

    # -- small records (see Store._records) -----------------------------------------------
    @staticmethod
    def _record(db: sqlite3.Connection, name: str) -> str | bytes | None:
        row = db.execute("SELECT value FROM records WHERE name=?", (name,)).fetchone()
        return row and row[0]

    def _records(self, names: Sequence[str]) -> list[str | bytes | None]:
        with self._tx(write=False) as db:
            return [self._record(db, name) for name in names]

    def _swap(self, names, change):
        with self._tx() as db:
            writes, result = change([self._record(db, name) for name in names])
            db.executemany("INSERT OR REPLACE INTO records VALUES (?,?)", writes.items())
        return result

    # -- arrays ---------------------------------------------------------------------------
    def put_array(self, project_id: str, name: str, array: np.ndarray) -> None:
        with self._tx() as db:
            self._project(db, project_id)
            db.execute("INSERT OR REPLACE INTO arrays VALUES (?,?,?)",
                       (project_id, name, array_to_bytes(array)))

    def get_array(self, project_id: str, name: str) -> np.ndarray | None:
        with self._tx(write=False) as db:
            row = db.execute("SELECT data FROM arrays WHERE project_id=? AND name=?",
                             (project_id, name)).fetchone()
        return None if row is None else bytes_to_array(row[0])

    # -- queue ----------------------------------------------------------------------------
    def queue_depth(self, project_id: str, now: float) -> dict[str, int]:
        open_ = "flagged=0 AND n_labels<required AND pool"
        with self._tx(write=False) as db:
            self._project(db, project_id)
            row = db.execute(
                "SELECT COUNT(*), TOTAL(flagged), TOTAL(flagged=0 AND"
                f" n_labels>=required), TOTAL({open_} IN ('main','eval')),"
                f" TOTAL({open_}='gold'), TOTAL({open_}='review') FROM pool WHERE project_id=?",
                (project_id,)).fetchone()
            (evals,) = db.execute("SELECT TOTAL(is_eval) FROM items WHERE project_id=?",
                                  (project_id,)).fetchone()
            (leased,) = db.execute(  # live holds (a redundant item may have several)
                "SELECT COUNT(*) FROM leases l JOIN holds h ON h.lease_id=l.id WHERE l.open=1"
                " AND l.expires_at>? AND l.project_id=?", (now, project_id)).fetchone()
        names = ("total", "flagged", "done", "open", "gold", "review")
        return {"leased": leased, "eval": int(evals),
                **{k: int(v) for k, v in zip(names, row, strict=True)}}

    # -- rounds ---------------------------------------------------------------------------
    def commit_round(self, project_id, *, arrays, queue, rnd, fence=None):
        enc = encode_round(project_id, arrays, queue, rnd)
        with self._tx() as db:
            check_fence(fence, lambda name: self._record(db, name))
            self._project(db, project_id)
            db.executemany("INSERT OR REPLACE INTO arrays VALUES (?,?,?)",
                           [(project_id, name, data) for name, data in enc.arrays.items()])
            db.execute("DELETE FROM queue WHERE project_id=?", (project_id,))
            db.executemany("INSERT INTO queue VALUES (?,?,?,?,?)",
                           [(project_id, iid, rank, score, why)
                            for rank, (iid, score, why) in enumerate(enc.queue)])
            db.execute("INSERT INTO rounds VALUES (?,?,?)", (project_id, rnd.number, enc.round_json))

    def list_rounds(self, project_id: str) -> list[Round]:
        with self._tx(write=False) as db:
            self._project(db, project_id)
            rows = db.execute("SELECT doc FROM rounds WHERE project_id=? ORDER BY number",
                              (project_id,)).fetchall()
        return [from_json(Round, r[0]) for r in rows]
