"""Leases and annotations of the SQLite store (a mixin of :class:`api.storage.sqlite.SQLiteStore`).

An item is ``open`` (in the partial index a lease walks) only while it is not flagged and its
labels plus live holds are short of what it requires (1, or ``redundancy_k`` for the share of
items ``redundancy_fraction`` draws by id hash). ``held_until`` is the latest expiry of its live
holds (NULL when none). A lease first ends the holds that expired, each giving back one slot, so
it reads the rows it returns plus the few the annotator already answered or holds.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from typing import Any

from api.storage.codec import dumps
from api.storage.records import Annotation, Lease, LeasedItem, SubmitResult, required_answers
from api.storage.sqlite_rows import ANNOTATION_COLS, ITEM_COLS, annotation_from_row, item_from_row
from labeling.errors import Conflict, InvalidInput, NotFound, StaleToken

__all__ = ["LeaseOps"]


class LeaseOps:
    """Needs ``self._tx`` and ``self._project`` from the store."""

    # -- leases ---------------------------------------------------------------------------
    # offered only if the annotator has not answered the item and holds no live lease on it (an
    # open item with ``held_until`` set is one still short of its redundant holders)
    _AVAILABLE = (
        " AND NOT EXISTS (SELECT 1 FROM answered a WHERE a.project_id=i.project_id"
        " AND a.item_id=i.id AND a.annotator=:annotator)"
        " AND (i.held_until IS NULL OR NOT EXISTS (SELECT 1 FROM lease_items l"
        " WHERE l.project_id=i.project_id AND l.item_id=i.id AND l.state='open'"
        " AND l.annotator=:annotator))"
    )
    # an item's live holds, and what follows from them: its latest hold expiry and whether it is
    # open (not flagged, and its labels plus live holds short of what it requires)
    _HOLDS = ("(SELECT {what} FROM lease_items l INDEXED BY lease_items_item"
              " WHERE l.project_id=items.project_id"
              " AND l.item_id=items.id AND l.state='open')")

    @staticmethod
    def _redundancy(db: sqlite3.Connection, project_id: str) -> tuple[float, int]:
        row = db.execute(
            "SELECT json_extract(doc, '$.settings.redundancy_fraction'),"
            " json_extract(doc, '$.settings.redundancy_k') FROM projects WHERE id=?", (project_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"unknown project {project_id!r}")
        return float(row[0] or 0.0), int(row[1] or 1)

    @classmethod
    def _reclaim(cls, db: sqlite3.Connection, now: float, project_id: str | None = None) -> int:
        """End the holds whose expiry passed (their lease items become 'expired'); each item gets
        back only the expired holder's slot."""
        sql = ("SELECT lease_id, project_id, item_id FROM lease_items INDEXED BY lease_items_live"
               " WHERE state='open' AND expires_at<=?")  # only live holds, never the history
        params: tuple = (now,)
        if project_id is not None:
            sql += " AND project_id=?"
            params = (now, project_id)
        rows = db.execute(sql, params).fetchall()
        if not rows:
            return 0
        db.executemany("UPDATE lease_items SET state='expired' WHERE lease_id=? AND item_id=?",
                       [(r[0], r[2]) for r in rows])
        by_project: dict[str, set[str]] = {}
        for r in rows:
            by_project.setdefault(r[1], set()).add(r[2])
        for pid, ids in by_project.items():
            cls._refresh(db, pid, sorted(ids))
        return len(rows)

    @staticmethod
    def _refresh(db: sqlite3.Connection, project_id: str, ids: list[str]) -> None:
        """Recompute ``held_until`` and ``open`` of items from their remaining live holds (one
        grouped read, one batch of plain updates)."""
        left: dict[str, tuple[int, float]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            left.update((r[0], (r[1], r[2])) for r in db.execute(
                "SELECT item_id, COUNT(*), MAX(expires_at) FROM lease_items INDEXED BY"
                f" lease_items_item WHERE project_id=? AND item_id IN ({','.join('?' * len(chunk))})"
                " AND state='open' GROUP BY item_id", (project_id, *chunk)))
        db.executemany(
            "UPDATE items SET held_until=?, open=(flagged=0 AND n_labels+?<required)"
            " WHERE project_id=? AND id=?",
            [(left.get(i, (0, None))[1], left.get(i, (0, None))[0], project_id, i) for i in ids],
        )

    def lease(self, project_id, annotator, n, *, n_eval, now, ttl, lease_id):
        if n < 0 or n_eval < 0:
            raise InvalidInput(f"lease size must be >= 0, got n={n}, n_eval={n_eval}")
        args = {"p": project_id, "annotator": annotator, "now": now}
        cols = ", ".join(f"i.{c.strip()}" for c in ITEM_COLS.split(","))
        expires = now + ttl
        with self._tx(durable=False) as db:
            fraction, k = self._redundancy(db, project_id)
            self._reclaim(db, now, project_id)
            picked: dict[str, LeasedItem] = {}
            state: list[tuple] = []  # (required, open after this lease, held_until, project, id)

            def take(sql: str, limit: int, is_eval: bool) -> None:
                added = 0
                if limit <= 0:
                    return
                for row in db.execute(sql, args):  # the cursor streams in index order
                    iid = row[0]
                    if iid in picked:
                        continue
                    n_labels, held_until = row[-3], row[-2]
                    holds = 0 if held_until is None else db.execute(
                        "SELECT COUNT(*) FROM lease_items WHERE project_id=? AND item_id=?"
                        " AND state='open'", (project_id, iid)).fetchone()[0]
                    required = required_answers(iid, fraction, k)
                    if n_labels + holds >= required:  # the settings changed: no room left
                        state.append((required, 0, held_until, project_id, iid))
                        continue
                    reasons = (json.loads(row[-1]) if row[-1] else
                               {"strategy": "evaluation_slice" if is_eval else "pool_order"})
                    picked[iid] = LeasedItem(item_from_row(row), reasons, is_eval)
                    state.append((required, int(n_labels + holds + 1 < required),
                                  max(expires, held_until or expires), project_id, iid))
                    added += 1
                    if added >= limit:
                        break

            tail = ", i.n_labels, i.held_until"
            eval_sql = (
                f"SELECT {cols}{tail}, NULL FROM items i WHERE i.project_id=:p AND i.is_eval=1"
                " AND i.open=1" + self._AVAILABLE + " ORDER BY i.rand_key"
            )
            take(eval_sql, min(n_eval, n), True)
            queue_sql = (
                f"SELECT {cols}{tail}, q.reasons FROM queue q JOIN items i ON"
                " i.project_id=q.project_id AND i.id=q.item_id WHERE q.project_id=:p"
                " AND i.is_eval=0 AND i.open=1" + self._AVAILABLE + " ORDER BY q.rank"
            )
            pool_sql = (
                f"SELECT {cols}{tail}, NULL FROM items i WHERE i.project_id=:p AND i.is_eval=0"
                " AND i.open=1" + self._AVAILABLE + " ORDER BY i.rand_key"
            )
            take(queue_sql, n - len(picked), False)
            take(pool_sql, n - len(picked), False)
            take(eval_sql, n - len(picked), True)  # fill from the slice when the pool is dry
            if state:
                db.executemany(
                    "UPDATE items SET required=?, open=?, held_until=? WHERE project_id=? AND id=?",
                    state,
                )
            exhausted = False
            if picked:
                db.execute(
                    "INSERT INTO leases VALUES (?,?,?,?)", (lease_id, project_id, annotator, now)
                )
                db.executemany(
                    "INSERT INTO lease_items VALUES (?,?,?,?,?,'open',?,?)",
                    [(lease_id, project_id, iid, annotator, expires, int(li.eval), dumps(li.reasons))
                     for iid, li in picked.items()],
                )
            else:  # nothing open is left for them; only a live hold may still come back
                exhausted = db.execute(
                    "SELECT 1 FROM items i WHERE i.project_id=:p AND i.held_until IS NOT NULL"
                    " AND NOT EXISTS (SELECT 1 FROM answered a WHERE a.project_id=i.project_id"
                    " AND a.item_id=i.id AND a.annotator=:annotator) LIMIT 1", args,
                ).fetchone() is None
        return Lease(lease_id, project_id, annotator, expires, tuple(picked), tuple(picked.values()),
                     exhausted=exhausted)

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
            rows = db.execute("SELECT item_id FROM lease_items WHERE lease_id=? AND state='open'",
                              (lease_id,)).fetchall()
            self._refresh(db, project_id, [r[0] for r in rows])
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
            self._refresh(db, project_id, [r[0] for r in rows])
            return len(rows)

    def expire(self, now: float) -> int:
        with self._tx() as db:
            return self._reclaim(db, now)

    # -- locks with fencing tokens ----------------------------------------------------------
    def acquire_lock(self, name: str, owner: str, ttl_s: float, now: float) -> int | None:
        if not ttl_s > 0:
            raise InvalidInput(f"ttl_s must be > 0, got {ttl_s!r}")
        with self._tx() as db:
            row = db.execute("SELECT owner, expires_at, fence FROM locks WHERE name=?", (name,)).fetchone()
            if row is not None and row[0] is not None and row[1] > now:
                return None
            token = (row[2] if row else 0) + 1
            db.execute("INSERT OR REPLACE INTO locks VALUES (?,?,?,?)", (name, owner, now + ttl_s, token))
        return token

    def renew_lock(self, name: str, owner: str, token: int, ttl_s: float, now: float) -> bool:
        with self._tx() as db:
            cur = db.execute("UPDATE locks SET expires_at=? WHERE name=? AND owner=? AND fence=?",
                             (now + ttl_s, name, owner, token))
            return cur.rowcount == 1

    def release_lock(self, name: str, owner: str) -> bool:
        with self._tx() as db:
            cur = db.execute("UPDATE locks SET owner=NULL WHERE name=? AND owner=?", (name, owner))
            return cur.rowcount == 1

    @staticmethod
    def _check_fence(db: sqlite3.Connection, name: str, token: int) -> None:
        row = db.execute("SELECT fence FROM locks WHERE name=?", (name,)).fetchone()
        if row is None or row[0] != token:
            raise StaleToken(f"stale fencing token {token} for lock {name!r} (latest: "
                           f"{row[0] if row else None}): its holder lost the lock, write refused")

    # -- annotations ----------------------------------------------------------------------
    def submit(self, annotations, *, now):
        results: list[SubmitResult] = []
        with self._tx() as db:
            redundancy: dict[str, tuple[float, int]] = {}
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
                if ann.project_id not in redundancy:
                    redundancy[ann.project_id] = self._redundancy(db, ann.project_id)
                required = required_answers(ann.item_id, *redundancy[ann.project_id])
                labels, flag = int(ann.kind == "label"), int(ann.kind == "flag")
                # this hold ends; the item stays open while its labels plus the other live holds
                # are short of what it requires (a skip leaves it open for the others)
                db.execute(
                    "UPDATE items SET n_labels=n_labels+?, flagged=(flagged OR ?), required=?,"
                    " held_until=" + self._HOLDS.format(what="MAX(l.expires_at)") + ","
                    " open=(flagged=0 AND ?=0 AND n_labels+?+" + self._HOLDS.format(what="COUNT(*)")
                    + "<?) WHERE project_id=? AND id=?",
                    (labels, flag, required, flag, labels, required, ann.project_id, ann.item_id),
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
