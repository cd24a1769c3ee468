"""Leases and annotations of the SQLite store (a mixin of :class:`api.storage.sqlite.SQLiteStore`).

An item is in ``pool`` (what a lease walks, in hand-out order) only while it is not flagged and
its labels plus live holds are short of what it requires (1, or ``redundancy_k`` for the share of
items ``redundancy_fraction`` draws by id hash). A live sole hold (its item needed one answer
and had none, nor any other hold) is an entry of its lease's ``held`` list; each other live hold
is a row of ``holds``. A lease first ends the holds that expired, each giving back one slot, then
takes rows from the front of the pool: it writes a few hot pages of these narrow tables and none
of the wide item rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import replace
from itertools import chain
from typing import Any

import orjson

from api.storage.codec import loads
from api.storage.records import (
    Annotation,
    Lease,
    LeasedItem,
    LeaseRequest,
    SubmitResult,
    leased_item,
    required_answers,
)
from api.storage.sqlite_rows import ANNOTATION_COLS, ITEM_COLS, annotation_from_row, item_from_row
from labeling.errors import Conflict, InvalidInput, LabelloopError, NotFound, StaleToken

__all__ = ["LeaseOps"]

_COLS = ", ".join(f"i.{c.strip()}" for c in ITEM_COLS.split(","))


def _candidates(source: str, where: str, order: str, reasons: str, *, shared: bool) -> str:
    """Pool rows the annotator may take, in hand-out order, with the item, its rand_key, labels
    and live holds: never one they answered. ``shared`` (items that may need several annotators):
    an item stays in the pool while some hold it, so also never one they hold, and its holds are
    counted. Otherwise no pool row has a live hold (see ``LeaseOps.close_full``)."""
    holds = ("(SELECT COUNT(*) FROM holds h WHERE h.project_id=p.project_id AND h.rand_key=p.rand_key"
             " AND h.item_id=p.item_id)") if shared else "0"
    sql = (f"SELECT {_COLS}, p.rand_key, i.n_labels, {holds}, {reasons} FROM {source} WHERE {where}"
           " AND NOT EXISTS (SELECT 1 FROM answered a WHERE a.project_id=p.project_id"
           " AND a.item_id=p.item_id AND a.annotator=:annotator)")
    if shared:
        sql += (" AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.project_id=p.project_id"
                " AND h.rand_key=p.rand_key AND h.item_id=p.item_id AND h.annotator=:annotator)")
    return f"{sql} ORDER BY {order}"


_FROM_POOL = "pool p CROSS JOIN items i ON i.project_id=p.project_id AND i.id=p.item_id"
_FROM_QUEUE = ("queue q INDEXED BY queue_rank CROSS JOIN items i ON i.project_id=q.project_id"
               " AND i.id=q.item_id CROSS JOIN pool p ON p.project_id=i.project_id AND p.is_eval=0"
               " AND p.rand_key=i.rand_key AND p.item_id=i.id")
# (pool query, queue query), by whether items may need several annotators (see ``_shared``)
_SQL = {shared: (_candidates(_FROM_POOL, "p.project_id=:p AND p.is_eval=:eval", "p.rand_key", "NULL",
                             shared=shared),
                 _candidates(_FROM_QUEUE, "q.project_id=:p AND i.is_eval=0", "q.rank", "q.reasons",
                             shared=shared))
        for shared in (False, True)}
_LIVE_HOLDS = ("(SELECT COUNT(*) FROM holds h WHERE h.project_id=i.project_id AND h.rand_key=i.rand_key"
               " AND h.item_id=i.id)")
# put items back in the pool, or take them out, after their labels or holds changed; ``_REOPEN``
# takes many items at once, ``{rows}`` being (item id, required answers) pairs
_REOPEN = ("INSERT OR IGNORE INTO pool SELECT i.project_id, i.is_eval, i.rand_key, i.id FROM (VALUES {rows}) v"
           " CROSS JOIN items i ON i.project_id=?1 AND i.id=v.column1"
           f" WHERE i.flagged=0 AND i.n_labels+{_LIVE_HOLDS}<v.column2")
_CLOSE = ("DELETE FROM pool WHERE (project_id, is_eval, rand_key, item_id) IN (SELECT i.project_id,"
          " i.is_eval, i.rand_key, i.id FROM items i WHERE i.project_id=?1 AND i.id=?2"
          f" AND (i.flagged=1 OR i.n_labels+{_LIVE_HOLDS}>=?3))")


# the items of the project's open sole holds (``item_id``), from its leases whose holds no sweep
# has ended; a lease reads it after ``_reclaim`` ended the expired ones
_SOLE_HELD = ("SELECT j.value->>2 AS item_id FROM leases l INDEXED BY leases_expiry, json_each(l.held) j"
              " WHERE l.expires_at IS NOT NULL AND l.project_id=?1 AND l.held IS NOT NULL")


def _held_json(entries: list) -> str | None:
    """A lease's ``held`` column: its open sole holds, NULL for none."""
    return orjson.dumps(entries).decode() if entries else None


def _end_sole(db: sqlite3.Connection, lease_id: str, held: str | None,
              item_ids: Iterable[str] | None = None) -> list[str]:
    """End the lease's sole holds of ``item_ids`` (all when None), as ``held`` lists them now:
    their items."""
    if held is None:
        return []
    entries, wanted = orjson.loads(held), None if item_ids is None else set(item_ids)
    ended = [entry[2] for entry in entries if wanted is None or entry[2] in wanted]
    if ended:
        kept = [] if wanted is None else [entry for entry in entries if entry[2] not in wanted]
        db.execute("UPDATE leases SET held=? WHERE id=?", (_held_json(kept), lease_id))
    return ended


def _shared(fraction: float, k: int) -> bool:
    """Whether some items of a project with these redundancy settings need several annotators."""
    return fraction > 0 and k != 1


class LeaseOps:
    """Needs ``self._tx`` and ``self._project`` from the store."""

    # -- leases ---------------------------------------------------------------------------
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
    def close_full(cls, db: sqlite3.Connection, project_id: str) -> None:
        """Take out of the pool the items whose labels plus live holds reach what they require
        now, after a change of redundancy: so no pool row of a project whose items need one
        annotator each has a live hold. Their rows' count of required answers, which ``done``
        is counted against, follows the settings too."""
        ids = [r[0] for r in db.execute("SELECT item_id FROM holds WHERE project_id=?1 UNION"
                                        " SELECT item_id FROM answered WHERE project_id=?1", (project_id,))]
        fraction, k = cls._redundancy(db, project_id)
        rows = [(project_id, i, required_answers(i, fraction, k)) for i in ids]
        db.executemany("UPDATE items SET required=?3 WHERE project_id=?1 AND id=?2", rows)
        db.executemany(_CLOSE, rows)

    @classmethod
    def _settle(cls, db: sqlite3.Connection, project_id: str, ids: Iterable[str], *,
                may_close: bool, redundancy: tuple[float, int] | None = None) -> None:
        """Bring the pool rows of ``ids`` in line with their labels and remaining holds: back in
        when short of answers, and (``may_close``) out when not."""
        fraction, k = redundancy or cls._redundancy(db, project_id)
        rows = [(i, required_answers(i, fraction, k)) for i in ids]
        if may_close:
            db.executemany(_CLOSE, [(project_id, *row) for row in rows])
        for start in range(0, len(rows), 100):
            chunk = rows[start:start + 100]
            marks = ",".join(f"(?{2 * j + 2},?{2 * j + 3})" for j in range(len(chunk)))
            db.execute(_REOPEN.format(rows=marks), [project_id, *chain.from_iterable(chunk)])

    @staticmethod
    def _lease_clock(db: sqlite3.Connection, now: float) -> float:
        """The time a lease or a sweep runs at: ``now``, or the latest time one ran at if that
        is later. Callers read their clocks before they wait for the write lock (other threads,
        other processes on the file), so without this a hold ended by a sweep could go to a
        lease stamped before that hold's end."""
        row = db.execute("SELECT now FROM lease_clock").fetchone()
        if row is not None and row[0] >= now:
            return row[0]
        db.execute("INSERT OR REPLACE INTO lease_clock VALUES (0, ?)", (now,))
        return now

    @classmethod
    def _reclaim(cls, db: sqlite3.Connection, now: float, project_id: str | None = None,
                 redundancy: tuple[float, int] | None = None) -> int:
        """End the holds of the leases whose expiry passed (of one project, or all); each item
        gets back only the expired holder's slot."""
        where, params = ("expires_at<=?1", (now,)) if project_id is None else (
            "expires_at<=?1 AND project_id=?2", (now, project_id))
        ended = db.execute("DELETE FROM holds WHERE lease_id IN (SELECT id FROM leases INDEXED BY"
                           f" leases_expiry WHERE {where}) RETURNING project_id, is_eval, rand_key,"
                           " item_id, sole", params).fetchall()
        expired = db.execute(f"SELECT project_id, held FROM leases INDEXED BY leases_expiry WHERE {where}"
                             " AND held IS NOT NULL", params).fetchall()  # RETURNING gives the new held
        db.execute(f"UPDATE leases INDEXED BY leases_expiry SET expires_at=NULL, held=NULL WHERE {where}", params)
        # sole holds: their items go back as they were
        from_leases = [(pid, *entry) for pid, held in expired for entry in orjson.loads(held)]
        back = [row[:4] for row in ended if row[4]] + from_leases
        for start in range(0, len(back), 100):
            rows = back[start:start + 100]
            db.execute(f"INSERT OR IGNORE INTO pool VALUES {','.join(['(?,?,?,?)'] * len(rows))}",
                       list(chain.from_iterable(rows)))
        by_project: dict[str, set[str]] = {}
        for pid, _, _, iid, sole in ended:
            if not sole:
                by_project.setdefault(pid, set()).add(iid)
        for pid, ids in by_project.items():
            cls._settle(db, pid, sorted(ids), may_close=False, redundancy=redundancy)
        return len(ended) + len(from_leases)

    def lease(self, project_id, annotator, n, *, n_eval, now, ttl, lease_id):
        got = self.lease_many([LeaseRequest(project_id, annotator, n, n_eval, ttl, lease_id)], now=now)[0]
        if isinstance(got, Exception):
            raise got
        return got

    def lease_many(self, requests, *, now):
        """All in one transaction (one commit for the lot). A request is refused before it writes
        anything, so a refused one leaves nothing behind."""
        out: list[Lease | LabelloopError] = []
        with self._tx(durable=False) as db:
            now = self._lease_clock(db, now)
            redundancy: dict[str, tuple[float, int]] = {}  # of the projects whose holds were reclaimed
            queued: dict[str, bool] = {}  # whether their queues have items
            for req in requests:
                try:
                    if req.n < 0 or req.n_eval < 0:
                        raise InvalidInput(f"lease size must be >= 0, got n={req.n}, n_eval={req.n_eval}")
                    if req.project_id not in redundancy:  # once per project and transaction
                        redundancy[req.project_id] = self._redundancy(db, req.project_id)
                        self._reclaim(db, now, req.project_id, redundancy[req.project_id])
                        queued[req.project_id] = db.execute(
                            "SELECT EXISTS (SELECT 1 FROM queue WHERE project_id=?)", (req.project_id,)
                        ).fetchone()[0] == 1
                except LabelloopError as e:
                    out.append(e)
                    continue
                out.append(self._lease_in(db, req, now, redundancy[req.project_id], queued[req.project_id]))
        return out

    def _lease_in(self, db: sqlite3.Connection, req: LeaseRequest, now: float,
                  redundancy: tuple[float, int], queued: bool) -> Lease:
        project_id, n = req.project_id, req.n
        fraction, k = redundancy
        args = {"p": project_id, "annotator": req.annotator}
        expires = now + req.ttl
        picked: dict[str, LeasedItem] = {}
        held: list[tuple] = []  # the picked items' holds of ``holds``: (item, rand_key, is_eval)
        sole: list[list] = []  # and their sole holds, the lease's ``held``: [is_eval, rand_key, item]
        closed: list[tuple] = []  # pool rows that leave the pool: (project, is_eval, rand_key, id)

        shared = _shared(fraction, k)

        def take(sql: str, limit: int, is_eval: bool) -> None:
            added, ev = 0, int(is_eval)
            if limit <= 0:
                return
            strategy = "evaluation_slice" if is_eval else "pool_order"
            for row in db.execute(sql, {**args, "eval": ev}):  # streams in hand-out order
                iid = row[0]
                if iid in picked:
                    continue
                rand_key, n_labels, holds = row[-4], row[-3], row[-2]
                required = required_answers(iid, fraction, k) if shared else 1
                if n_labels + holds >= required:  # the settings changed: no room left
                    closed.append((project_id, ev, rand_key, iid))
                    continue
                reasons = loads(row[-1]) if row[-1] else {"strategy": strategy}
                picked[iid] = leased_item(item_from_row(row), reasons, is_eval)
                if required == 1:  # sole: picked with no labels and no holds, it leaves the pool
                    sole.append([ev, rand_key, iid])
                else:
                    held.append((iid, rand_key, ev))
                if n_labels + holds + 1 >= required:
                    closed.append((project_id, ev, rand_key, iid))
                added += 1
                if added >= limit:
                    break

        pool_sql, queue_sql = _SQL[shared]
        take(pool_sql, min(req.n_eval, n), True)
        if queued:  # an empty queue still costs its query a few cursors
            take(queue_sql, n - len(picked), False)
        take(pool_sql, n - len(picked), False)
        take(pool_sql, n - len(picked), True)  # fill from the slice when the pool is dry
        db.executemany("DELETE FROM pool WHERE project_id=? AND is_eval=? AND rand_key=? AND item_id=?",
                       closed)
        exhausted = False
        if picked:
            db.execute("INSERT INTO leases (id, project_id, annotator, created_at, expires_at, held)"
                       " VALUES (?,?,?,?,?,?)",
                       (req.lease_id, project_id, req.annotator, now, expires, _held_json(sole)))
            for start in range(0, len(held), 100):  # a hold binds three values, not six
                rows = held[start:start + 100]
                db.execute("INSERT INTO holds (project_id, rand_key, item_id, lease_id, annotator, is_eval)"
                           " SELECT ?1, column2, column1, ?2, ?3, column3 FROM (VALUES"
                           f" {','.join(['(?,?,?)'] * len(rows))})",
                           [project_id, req.lease_id, req.annotator, *chain.from_iterable(rows)])
        else:  # nothing open is left for them; only a live hold may still come back
            unanswered = ("NOT EXISTS (SELECT 1 FROM answered a WHERE a.project_id=?1 AND a.item_id={item}"
                          " AND a.annotator=?2)")
            exhausted = db.execute(
                f"SELECT 1 FROM holds h WHERE h.project_id=?1 AND {unanswered.format(item='h.item_id')}"
                f" UNION ALL SELECT 1 FROM ({_SOLE_HELD}) s WHERE {unanswered.format(item='s.item_id')}"
                " LIMIT 1", (project_id, req.annotator),
            ).fetchone() is None
        return Lease(req.lease_id, project_id, req.annotator, expires, tuple(picked),
                     tuple(picked.values()), exhausted=exhausted)

    def _lease_row(self, db: sqlite3.Connection, lease_id: str) -> tuple[str, str, float | None, str | None]:
        """The lease's project, annotator, expiry (None once a sweep ended its holds) and open
        sole holds (``held``)."""
        row = db.execute("SELECT project_id, annotator, expires_at, held FROM leases WHERE id=?",
                         (lease_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown lease {lease_id!r}")
        return row

    def get_lease(self, lease_id: str) -> Lease:
        with self._tx(write=False) as db:
            project_id, annotator, expires, held = self._lease_row(db, lease_id)
            items = tuple(r[0] for r in db.execute("SELECT item_id FROM holds WHERE lease_id=?", (lease_id,)))
            items += tuple(entry[2] for entry in orjson.loads(held)) if held else ()
        return Lease(lease_id, project_id, annotator, (expires or 0.0) if items else 0.0, items)

    def _own_lease(self, db: sqlite3.Connection, lease_id: str, annotator: str) -> tuple[str, str | None]:
        """The lease's project and ``held``, once it is known to be ``annotator``'s."""
        project_id, owner, _, held = self._lease_row(db, lease_id)
        if owner != annotator:
            raise Conflict(f"lease {lease_id!r} belongs to another annotator")
        return project_id, held

    def renew(self, lease_id, annotator, *, now, ttl):
        with self._tx() as db:
            self._own_lease(db, lease_id, annotator)
            cur = db.execute("UPDATE leases SET expires_at=?1 WHERE id=?2 AND expires_at>?3"
                             " AND (held IS NOT NULL OR EXISTS (SELECT 1 FROM holds WHERE lease_id=?2))",
                             (now + ttl, lease_id, now))
            if cur.rowcount == 0:
                raise Conflict(f"lease {lease_id!r} has expired or holds no open items")
        return self.get_lease(lease_id)

    def release(self, lease_id, annotator, *, item_ids=None, now):
        with self._tx() as db:
            project_id, held = self._own_lease(db, lease_id, annotator)
            sql = "SELECT item_id FROM holds WHERE lease_id=?"
            params: list[Any] = [lease_id]
            if item_ids is not None:
                sql += f" AND item_id IN ({','.join('?' * len(item_ids))})"
                params += list(item_ids)
            ids = [r[0] for r in db.execute(sql, params)]
            db.executemany("DELETE FROM holds WHERE lease_id=? AND item_id=?", [(lease_id, i) for i in ids])
            ids += _end_sole(db, lease_id, held, item_ids)
            self._settle(db, project_id, ids, may_close=False)
            return len(ids)

    def expire(self, now: float) -> int:
        with self._tx() as db:
            return self._reclaim(db, self._lease_clock(db, now))

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
            for ann in annotations:
                if ann.idempotency_key is not None:
                    row = db.execute(
                        f"SELECT {ANNOTATION_COLS} FROM annotations WHERE project_id=? AND idem_key=?",
                        (ann.project_id, ann.idempotency_key),
                    ).fetchone()
                    if row is not None:
                        results.append(SubmitResult(annotation_from_row(row), duplicate=True))
                        continue
                # no lease: an answer from an external tool (Label Studio), no hold to end
                if ann.lease_id is not None and not self._end_hold(db, ann):
                    raise Conflict(
                        f"item {ann.item_id!r} is not open in lease {ann.lease_id!r} of annotator "
                        f"{ann.annotator!r} (wrong lease, already answered, released or expired)"
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
                fraction, k = self._redundancy(db, ann.project_id)
                # this hold ends; the item stays in the pool while its labels plus the other live
                # holds are short of what it requires (a skip leaves it there for the others)
                db.execute(
                    "UPDATE items SET n_labels=n_labels+?, flagged=(flagged OR ?), required=?"
                    " WHERE project_id=? AND id=?",
                    (int(ann.kind == "label"), int(ann.kind == "flag"),
                     required_answers(ann.item_id, fraction, k), ann.project_id, ann.item_id),
                )
                self._settle(db, ann.project_id, [ann.item_id], may_close=True)
                results.append(
                    SubmitResult(replace(ann, seq=cur.lastrowid, created_at=now), duplicate=False)
                )
        return results

    @staticmethod
    def _end_hold(db: sqlite3.Connection, ann: Annotation) -> bool:
        """End the annotator's open hold of the item in the lease the annotation names, a row of
        ``holds`` or an entry of the lease's ``held``; False when there is none."""
        live = db.execute("SELECT annotator FROM holds WHERE lease_id=? AND item_id=? AND project_id=?",
                          (ann.lease_id, ann.item_id, ann.project_id)).fetchone()
        if live is not None:
            if live[0] != ann.annotator:
                return False
            db.execute("DELETE FROM holds WHERE lease_id=? AND item_id=?", (ann.lease_id, ann.item_id))
            return True
        row = db.execute("SELECT held FROM leases WHERE id=? AND project_id=? AND annotator=?",
                         (ann.lease_id, ann.project_id, ann.annotator)).fetchone()
        return row is not None and _end_sole(db, ann.lease_id, row[0], [ann.item_id]) != []

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
