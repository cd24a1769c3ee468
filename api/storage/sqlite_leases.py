"""Leases, annotations and requirements of the SQLite store (a mixin of
:class:`api.storage.sqlite.SQLiteStore`).

The model is the one :mod:`api.storage.base` describes. A lease's row carries the expiry of all
its holds; ``holds`` has a row per live hold, kept by lease (what an annotator holds is found
through their open leases). ``pool`` has a row per item in hand-out order with its answers
(``n_labels``) and live holds (``n_holds``); its partial index ``pool_open`` holds exactly the
open items of each pool, so a writer keeps those two counts right and SQLite keeps the pools.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import replace

from api.storage.records import (
    ANSWER_KINDS,
    Annotation,
    Lease,
    LeasedItem,
    LeaseRequest,
    SubmitResult,
)
from api.storage.rules import (
    check_lease,
    check_required,
    check_submission,
    idem_payload,
    leased,
    mix_gold,
)
from api.storage.sqlite_schema import (
    ANNOTATION_COLS,
    ITEM_COLS,
    ITEMS,
    item_from_row,
)
from labeling.errors import Conflict, LabelloopError, NotFound

__all__ = ["LeaseOps"]

_OPEN = "p.flagged=0 AND p.required>p.n_labels+p.n_holds"  # as ``pool_open`` has it
# not answered by this annotator, nor held in one of their open leases
_NOT_THEIRS = (" AND NOT EXISTS (SELECT 1 FROM answered a WHERE a.project_id=p.project_id"
               " AND a.item_id=p.item_id AND a.annotator=:who) AND p.item_id NOT IN (SELECT"
               " h.item_id FROM leases l JOIN holds h ON h.lease_id=l.id WHERE l.project_id=:p"
               " AND l.annotator=:who AND l.open=1)")
_JOIN = "CROSS JOIN items i ON i.project_id=p.project_id AND i.id=p.item_id"
# what a lease may take, in hand-out order: a pool, or the ranked queue's items open in main
_FROM_POOL = (f"SELECT {ITEM_COLS}, NULL FROM pool p INDEXED BY pool_open {_JOIN} WHERE"
              f" p.project_id=:p AND p.pool=:pool AND {_OPEN}{_NOT_THEIRS} ORDER BY p.pool_key"
              " LIMIT :n")
_FROM_QUEUE = (f"SELECT {ITEM_COLS}, q.reasons FROM queue q INDEXED BY queue_rank CROSS JOIN pool p"
               f" ON p.project_id=q.project_id AND p.item_id=q.item_id {_JOIN} WHERE"
               f" q.project_id=:p AND p.pool='main' AND {_OPEN}{_NOT_THEIRS} ORDER BY q.rank LIMIT :n")
# the open leases whose expiry passed (?1: the lease clock; of one project, ?2, or of all)
_EXPIRED = "SELECT id FROM leases INDEXED BY leases_open WHERE open=1 AND expires_at<=?1"



class LeaseOps:
    """Needs ``self._tx`` and ``self._project`` from the store."""

    @staticmethod
    def _end_holds(db: sqlite3.Connection, where: str, args) -> int:
        """End the holds ``where`` picks (a condition on ``h``, the holds table): each item's pool
        row counts its ended holds off, in one statement per table whatever their number (each
        statement a lease runs lets the event loop's thread take the interpreter lock). Returns
        how many ended."""
        db.execute("UPDATE pool SET n_holds=n_holds-e.n FROM (SELECT project_id, item_id, COUNT(*) n"
                   f" FROM holds h WHERE {where} GROUP BY project_id, item_id) e WHERE"
                   " pool.project_id=e.project_id AND pool.item_id=e.item_id", args)
        return db.execute(f"DELETE FROM holds AS h WHERE {where}", args).rowcount

    @classmethod
    def _reclaim(cls, db: sqlite3.Connection, now: float, project_id: str | None = None,
                 ) -> tuple[float, int]:
        """End the holds of the open leases whose expiry passed (of one project, or all) at the
        lease clock: ``now``, or the latest time a lease or a sweep ran at if that is later
        (callers read their clocks before they wait for the write lock). Returns (that time,
        holds ended)."""
        (now,) = db.execute("UPDATE lease_clock SET now=MAX(now, ?) RETURNING now", (now,)).fetchone()
        expired = _EXPIRED + (" AND project_id=?2" if project_id else "")
        args = (now, project_id) if project_id else (now,)
        ended = cls._end_holds(db, f"h.lease_id IN ({expired})", args)
        db.execute(f"UPDATE leases SET open=0 WHERE id IN ({expired})", args)
        return now, ended

    # -- leases ---------------------------------------------------------------------------
    def lease(self, project_id, annotator, n, *, n_eval, now, ttl, lease_id, n_gold=0,
              pool="main"):
        r = LeaseRequest(project_id, annotator, n, n_eval, ttl, lease_id, n_gold, pool)
        check_lease(n, n_eval, n_gold, pool)
        with self._tx(durable=False) as db:  # a crash may forget a lease harmlessly
            return self._take(db, r, self._reclaim(db, now, project_id)[0])

    def lease_many(self, requests, *, now):
        """One commit; each project's expired holds ended once, then each lease in a savepoint."""
        out: list[Lease | LabelloopError] = []
        with self._tx(durable=False) as db:
            clock = {p: self._reclaim(db, now, p)[0] for p in {r.project_id for r in requests}}
            for r in requests:
                db.execute("SAVEPOINT one")
                try:
                    check_lease(r.n, r.n_eval, r.n_gold, r.pool)
                    out.append(self._take(db, r, clock[r.project_id]))
                except LabelloopError as e:
                    db.execute("ROLLBACK TO one")
                    out.append(e)
                db.execute("RELEASE one")
        return out

    def _take(self, db: sqlite3.Connection, r: LeaseRequest, now: float) -> Lease:
        """The lease ``r`` asks for at the lease clock ``now``, its expired holds already ended."""
        project_id, annotator, n, lease_id = r.project_id, r.annotator, r.n, r.lease_id
        picked: dict[str, tuple] = {}  # item id -> (item row..., reasons JSON or None)

        def take(sql: str, where: str, limit: int) -> list[str]:
            if limit <= 0:
                return []
            args = {"p": project_id, "who": annotator, "pool": where, "n": limit + len(picked)}
            got = [row for row in db.execute(sql, args).fetchall() if row[0] not in picked][:limit]
            picked.update((row[0], row) for row in got)
            return [row[0] for row in got]

        if r.pool == "review":
            order = take(_FROM_POOL, "review", n)
        else:  # gold only beside another item: an annotator with only gold left is done
            gold = take(_FROM_POOL, "gold", min(r.n_gold, n))
            order = take(_FROM_POOL, "eval", min(r.n_eval, n - len(gold)))
            order += take(_FROM_QUEUE, "main", n - len(gold) - len(order))
            start = len(order)
            rest = max(n - len(gold) - len(order), 1 if gold and not order else 0)
            order += take(_FROM_POOL, "main", rest)
            end = len(order)
            order += take(_FROM_POOL, "eval", rest - (end - start))
            order = mix_gold(order[:n - len(gold)], gold, start, min(end, n - len(gold)),
                             lease_id) if order else []
        expires = now + r.ttl
        if order:
            db.execute("INSERT INTO leases (id, project_id, annotator, created_at, expires_at)"
                       " VALUES (?,?,?,?,?)", (lease_id, project_id, annotator, now, expires))
            db.execute("INSERT INTO holds VALUES " + ",".join(["(?,?,?,?)"] * len(order)),
                       [x for i in order for x in (lease_id, i, project_id, picked[i][-1])])
            db.execute("UPDATE pool SET n_holds=n_holds+1 WHERE project_id=?1 AND item_id IN"
                       " (SELECT item_id FROM holds WHERE lease_id=?2)", (project_id, lease_id))
            exhausted = False
        else:  # nothing open is left for them; only a live hold may still come back
            self._project(db, project_id)
            exhausted = db.execute(
                "SELECT 1 FROM leases l JOIN holds h ON h.lease_id=l.id JOIN pool p ON"
                " p.project_id=?1 AND p.item_id=h.item_id WHERE l.project_id=?1 AND l.open=1"
                " AND (p.pool='review')=?3 AND NOT EXISTS (SELECT 1 FROM answered a WHERE"
                " a.project_id=?1 AND a.item_id=h.item_id AND a.annotator=?2) LIMIT 1",
                (project_id, annotator, r.pool == "review")).fetchone() is None
        return Lease(lease_id, project_id, annotator, expires, tuple(order),
                     tuple(leased(item_from_row(picked[i]), picked[i][-1]) for i in order),
                     exhausted=exhausted)

    @staticmethod
    def _lease_row(db: sqlite3.Connection, lease_id: str, annotator: str | None = None) -> tuple:
        """(project, annotator, expiry) of a lease; ``Conflict`` if not ``annotator``'s."""
        row = db.execute("SELECT project_id, annotator, expires_at FROM leases WHERE id=?",
                         (lease_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown lease {lease_id!r}")
        if annotator is not None and row[1] != annotator:
            raise Conflict(f"lease {lease_id!r} belongs to another annotator")
        return row

    def get_lease(self, lease_id: str) -> Lease:
        with self._tx(write=False) as db:
            project_id, annotator, expires = self._lease_row(db, lease_id)
            items = tuple(r[0] for r in db.execute(
                "SELECT h.item_id FROM holds h JOIN items i ON i.project_id=h.project_id AND"
                " i.id=h.item_id WHERE h.lease_id=? ORDER BY i.seq", (lease_id,)))
        return Lease(lease_id, project_id, annotator, expires if items else 0.0, items)

    def leases(self, project_id: str, annotator: str, *, now: float) -> list[Lease]:
        with self._tx(write=False) as db:
            self._project(db, project_id)
            rows = db.execute(
                f"SELECT l.id, l.expires_at, {ITEM_COLS}, h.reasons FROM leases l JOIN holds h ON"
                f" h.lease_id=l.id JOIN {ITEMS} AND i.project_id=h.project_id AND i.id=h.item_id"
                " WHERE l.project_id=? AND l.annotator=? AND l.open=1 AND l.expires_at>?"
                " ORDER BY l.created_at, l.id, i.seq", (project_id, annotator, now)).fetchall()
        by_lease: dict[str, tuple[float, list[LeasedItem]]] = {}
        for lease_id, expires, *row in rows:
            by_lease.setdefault(lease_id, (expires, []))[1].append(leased(item_from_row(row), row[-1]))
        return [Lease(lid, project_id, annotator, exp, tuple(li.item.id for li in items), tuple(items))
                for lid, (exp, items) in by_lease.items()]

    def renew(self, lease_id, annotator, *, now, ttl):
        with self._tx() as db:
            self._lease_row(db, lease_id, annotator)
            cur = db.execute("UPDATE leases SET expires_at=?1 WHERE id=?2 AND open=1 AND"
                             " expires_at>?3 AND EXISTS (SELECT 1 FROM holds WHERE lease_id=?2)",
                             (now + ttl, lease_id, now))
            if cur.rowcount == 0:
                raise Conflict(f"lease {lease_id!r} has expired or holds no open items")
        return self.get_lease(lease_id)

    def release(self, lease_id, annotator, *, item_ids=None, now):
        with self._tx() as db:
            self._lease_row(db, lease_id, annotator)
            if item_ids is None:
                return self._end_holds(db, "h.lease_id=?", (lease_id,))
            ids = list(dict.fromkeys(item_ids))
            return self._end_holds(db, f"h.lease_id=? AND h.item_id IN ({','.join('?' * len(ids))})",
                                   (lease_id, *ids))

    def expire(self, now: float) -> int:
        with self._tx() as db:
            return self._reclaim(db, now)[1]

    def require(self, project_id: str, required: Mapping[str, int], *, now: float,
                pool: str | None = None) -> int:
        check_required(required, pool)
        with self._tx() as db:
            self._project(db, project_id)
            ids = list(required)
            rows = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                rows.update((r[0], r) for r in db.execute(
                    f"SELECT i.id, p.pool, p.pool_key, i.rand_key, i.is_eval FROM {ITEMS} WHERE"
                    f" i.project_id=? AND i.id IN ({','.join('?' * len(chunk))})", (project_id, *chunk)))
            missing = [i for i in ids if i not in rows]
            if missing:
                raise NotFound(f"unknown item {missing[0]!r} in project {project_id!r}")
            last = db.execute("UPDATE projects SET review_seq=review_seq+? WHERE id=? RETURNING"
                              " review_seq", (len(ids), project_id)).fetchone()[0] if pool == "review" else 0
            updates = []
            for n, (item_id, _, key, rand_key, is_eval) in enumerate(rows[i] for i in ids):
                to = rows[item_id][1] if pool is None else (
                    ("eval" if is_eval else "main") if pool == "main" else pool)
                if to != rows[item_id][1]:  # review keeps arrival order, the others rand_key
                    key = last - len(ids) + n + 1 if to == "review" else rand_key
                updates.append((required[item_id], to, key, project_id, item_id))
            db.executemany("UPDATE pool SET required=?, pool=?, pool_key=? WHERE project_id=?"
                           " AND item_id=?", updates)
        return len(required)

    # -- annotations ----------------------------------------------------------------------
    def submit(self, annotations, *, now):
        check_submission(annotations)
        results: list[SubmitResult] = []
        with self._tx() as db:
            for ann in annotations:
                if ann.idempotency_key is not None:
                    row = db.execute(f"SELECT {ANNOTATION_COLS} FROM annotations WHERE project_id=?"
                                     " AND annotator=? AND idem_key=?",
                                     (ann.project_id, ann.annotator, ann.idempotency_key)).fetchone()
                    if row is not None:
                        first = Annotation(*row)
                        if idem_payload(first) != idem_payload(ann):
                            raise Conflict(f"idempotency key {ann.idempotency_key!r} of annotator "
                                           f"{ann.annotator!r} was used for another annotation "
                                           f"(item {first.item_id!r}, {first.kind})")
                        results.append(SubmitResult(first, duplicate=True))
                        continue
                key = (ann.project_id, ann.item_id, ann.annotator)
                if ann.kind == "correct":
                    if db.execute("SELECT 1 FROM answered WHERE project_id=? AND item_id=? AND"
                                  " annotator=?", key).fetchone() is None:
                        raise Conflict(f"item {ann.item_id!r} has no answer of annotator "
                                       f"{ann.annotator!r} to correct")
                elif ann.lease_id is not None and db.execute(  # None: an external tool's answer
                        "DELETE FROM holds WHERE lease_id=?4 AND item_id=?2 AND EXISTS (SELECT 1"
                        " FROM leases l WHERE l.id=?4 AND l.project_id=?1 AND l.annotator=?3 AND"
                        " l.open=1 AND l.expires_at>?5) RETURNING 1",
                        (*key, ann.lease_id, now)).fetchone() is None:
                    raise Conflict(
                        f"item {ann.item_id!r} is not open in lease {ann.lease_id!r} of annotator "
                        f"{ann.annotator!r} (wrong lease, already answered, released or expired)"
                    )
                cur = db.execute(
                    "INSERT INTO annotations (project_id, item_id, annotator, kind, label, comment,"
                    " lease_id, idem_key, time_spent, created_at, guidelines_version)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (ann.project_id, ann.item_id, ann.annotator, ann.kind, ann.label, ann.comment,
                     ann.lease_id, ann.idempotency_key, ann.time_spent_s, now,
                     ann.guidelines_version))
                if ann.kind != "correct":  # a skip leaves the item open for the others
                    db.execute("INSERT OR IGNORE INTO answered VALUES (?,?,?)", key)
                    db.execute("UPDATE pool SET n_labels=n_labels+?, n_holds=n_holds-?,"
                               " flagged=(flagged OR ?) WHERE project_id=? AND item_id=?",
                               (ann.kind in ANSWER_KINDS, ann.lease_id is not None,
                                ann.kind == "flag", ann.project_id, ann.item_id))
                results.append(SubmitResult(replace(ann, seq=cur.lastrowid, created_at=now), duplicate=False))
        return results

    def annotations(self, project_id: str, *, since: int = 0) -> list[Annotation]:
        with self._tx(write=False) as db:
            self._project(db, project_id)
            rows = db.execute(
                f"SELECT {ANNOTATION_COLS} FROM annotations WHERE project_id=? AND seq>? ORDER BY seq",
                (project_id, since),
            ).fetchall()
        return [Annotation(*r) for r in rows]

    def count_labels(self, project_id: str) -> int:
        with self._tx(write=False) as db:
            return db.execute(
                "SELECT COUNT(*) FROM annotations WHERE project_id=? AND kind IN ('label', 'review')",
                (project_id,)
            ).fetchone()[0]
