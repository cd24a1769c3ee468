"""Leases and annotations of the SQLite store (a mixin of :class:`api.storage.sqlite.SQLiteStore`).

An item is ``open`` (in the partial index a lease walks) only while nobody holds it and it still
needs an answer; a lease takes its items out (``held_until``) and expired holds are put back
first, so a lease reads the rows it returns plus the few the annotator already answered.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from typing import Any

from api.storage.codec import dumps
from api.storage.records import Annotation, Lease, LeasedItem, SubmitResult
from api.storage.sqlite_rows import ANNOTATION_COLS, ITEM_COLS, annotation_from_row, item_from_row
from labeling.errors import Conflict, InvalidInput, NotFound

__all__ = ["LeaseOps"]


class LeaseOps:
    """Needs ``self._tx`` and ``self._project`` from the store."""

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
                    picked[row[0]] = LeasedItem(item_from_row(row), reasons, is_eval)
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
                        f"SELECT {ANNOTATION_COLS} FROM annotations WHERE project_id=? AND idem_key=?",
                        (ann.project_id, ann.idempotency_key),
                    ).fetchone()
                    if row is not None:
                        results.append(SubmitResult(annotation_from_row(row), duplicate=True))
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
                f"SELECT {ANNOTATION_COLS} FROM annotations WHERE project_id=? AND seq>? ORDER BY seq",
                (project_id, since),
            ).fetchall()
        return [annotation_from_row(r) for r in rows]

    def count_labels(self, project_id: str) -> int:
        with self._tx(write=False) as db:
            return db.execute(
                "SELECT COUNT(*) FROM annotations WHERE project_id=? AND kind='label'", (project_id,)
            ).fetchone()[0]
