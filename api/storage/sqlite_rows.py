"""The SQLite store's schema and row decoding."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from api.storage.codec import loads
from api.storage.records import Annotation, Item, new_item

__all__ = ["ANNOTATION_COLS", "ITEM_COLS", "SCHEMA", "annotation_from_row", "item_from_row", "migrate"]

HOLDS = """
-- live holds only: a hold is deleted when it is answered, released or expired. Keyed in pool
-- order (the item's rand_key first): the holds that leases take side by side at the pool's front,
-- and that expire together, share pages, where keyed by item id each hold wrote a page of its own.
-- Lease ids grow with time (see ``api.service.annotate.new_lease_id``), so the lease index
-- and ``leases`` grow at their ends too. The live holds of a lease share its expiry, which only
-- the lease's row carries (indexed for the sweep by ``leases_expiry``): one index entry a lease.
-- A sole hold: the item needed one answer and had no labels and no other hold when this one
-- began, so it left the pool and no one else can take or answer it while this hold lives. When
-- the hold ends unanswered, the item goes back to its pool (``is_eval``) as it was, with no look
-- at its row (see ``LeaseOps._reclaim``). Sole holds live in their lease's row (``leases.held``),
-- this table has the others: ``sole`` marks those written here before ``held`` existed. No semicolons in these comments: ``migrate`` runs this
-- script statement by statement.
CREATE TABLE IF NOT EXISTS holds (
    project_id TEXT NOT NULL, rand_key REAL NOT NULL, item_id TEXT NOT NULL, lease_id TEXT NOT NULL,
    annotator TEXT NOT NULL, is_eval INTEGER NOT NULL DEFAULT 0, sole INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, rand_key, item_id, lease_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS holds_lease ON holds (lease_id);
"""

# leases whose holds a sweep has yet to end: their expiry, until it has (made by ``migrate``, once
# an older file's ``leases`` has the column)
LEASES_EXPIRY = "CREATE INDEX IF NOT EXISTS leases_expiry ON leases (expires_at) WHERE expires_at IS NOT NULL"

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    project_id TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    text TEXT, features TEXT NOT NULL, meta TEXT NOT NULL, votes TEXT, gold INTEGER,
    is_eval INTEGER NOT NULL, rand_key REAL NOT NULL,
    required INTEGER NOT NULL DEFAULT 1, n_labels INTEGER NOT NULL DEFAULT 0,
    flagged INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, id), UNIQUE (project_id, seq));
-- the items a lease may hand out now, in the order it hands them out: not flagged, and labels
-- plus live holds short of what the item requires. Leases take rows from the front and expired
-- holds put them back near it, so the pages a lease writes are few and hot; the wide item rows
-- are written only when an answer comes in.
CREATE TABLE IF NOT EXISTS pool (
    project_id TEXT NOT NULL, is_eval INTEGER NOT NULL, rand_key REAL NOT NULL, item_id TEXT NOT NULL,
    PRIMARY KEY (project_id, is_eval, rand_key, item_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue (
    project_id TEXT NOT NULL, item_id TEXT NOT NULL, rank INTEGER NOT NULL,
    score REAL NOT NULL, reasons TEXT NOT NULL, PRIMARY KEY (project_id, item_id));
CREATE INDEX IF NOT EXISTS queue_rank ON queue (project_id, rank);
-- ``held``: the lease's open sole holds (see ``HOLDS``) as a JSON list of [is_eval, rand_key,
-- item id], NULL when it has none. Nothing but its own lease needs to find a sole hold, so it
-- takes no row of its own: a row a hold and its lease index cost half the writes of a lease
-- cycle (bench.lease_load).
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, annotator TEXT NOT NULL, created_at REAL NOT NULL,
    expires_at REAL, held TEXT);
{holds}-- the latest time a lease or a sweep ran at (see ``LeaseOps._lease_clock``)
CREATE TABLE IF NOT EXISTS lease_clock (id INTEGER PRIMARY KEY CHECK (id = 0), now REAL NOT NULL);
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
CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY, owner TEXT, expires_at REAL NOT NULL, fence INTEGER NOT NULL);
""".replace("{holds}", HOLDS)

ITEM_COLS = "id, seq, text, features, meta, votes, gold, is_eval"
ANNOTATION_COLS = ("seq, project_id, item_id, annotator, kind, label, comment, lease_id, idem_key,"
                   " time_spent, created_at")


def migrate(db: sqlite3.Connection) -> None:
    """In a write transaction: bring an older file up to this schema, once. Leases without an
    expiry get their holds' one; holds keyed by item id, each with its expiry, are re-keyed in pool
    order; a file from before the ``pool`` and ``holds`` tables (its items carry ``open`` and
    ``held_until``, its live holds are ``lease_items`` rows in state 'open') gets them filled from
    those. Holds from before ``sole`` are not sole: their items' rows are checked when they end.
    Sole holds made before ``leases.held`` stay rows of ``holds``, which are still valid."""
    lease_columns = {row[1] for row in db.execute("PRAGMA table_info(leases)")}
    if "expires_at" not in lease_columns:
        db.execute("ALTER TABLE leases ADD COLUMN expires_at REAL")
    if "held" not in lease_columns:
        db.execute("ALTER TABLE leases ADD COLUMN held TEXT")
    if "rand_key" not in {row[1] for row in db.execute("PRAGMA table_info(holds)")}:
        db.execute("ALTER TABLE holds RENAME TO holds_by_item")
        db.execute("DROP INDEX holds_lease")
        db.execute("UPDATE leases SET expires_at=(SELECT MAX(h.expires_at) FROM holds_by_item h"
                   " WHERE h.lease_id=leases.id) WHERE id IN (SELECT lease_id FROM holds_by_item)")
        for statement in HOLDS.split(";"):
            db.execute(statement)
        db.execute("INSERT INTO holds (project_id, rand_key, item_id, lease_id, annotator)"
                   " SELECT h.project_id, i.rand_key, h.item_id, h.lease_id, h.annotator"
                   " FROM holds_by_item h JOIN items i ON i.project_id=h.project_id AND i.id=h.item_id")
        db.execute("DROP TABLE holds_by_item")  # and its expiry index
    if "sole" not in {row[1] for row in db.execute("PRAGMA table_info(holds)")}:
        db.execute("ALTER TABLE holds ADD COLUMN is_eval INTEGER NOT NULL DEFAULT 0")
        db.execute("ALTER TABLE holds ADD COLUMN sole INTEGER NOT NULL DEFAULT 0")
    columns = {row[1] for row in db.execute("PRAGMA table_info(items)")}
    if "open" in columns and db.execute("PRAGMA user_version").fetchone()[0] < 2:
        db.execute("INSERT OR IGNORE INTO pool SELECT project_id, is_eval, rand_key, id FROM items WHERE open=1")
        live = "FROM lease_items l WHERE l.state='open'"
        db.execute("INSERT OR IGNORE INTO holds (project_id, rand_key, item_id, lease_id, annotator)"
                   " SELECT l.project_id, i.rand_key, l.item_id, l.lease_id,"
                   " l.annotator FROM lease_items l JOIN items i ON i.project_id=l.project_id"
                   " AND i.id=l.item_id WHERE l.state='open'")
        db.execute(f"UPDATE leases SET expires_at=(SELECT MAX(l.expires_at) {live} AND l.lease_id=leases.id)"
                   f" WHERE id IN (SELECT l.lease_id {live})")
        db.execute("PRAGMA user_version=2")
    db.execute(LEASES_EXPIRY)


def _mapping(text: str) -> dict[str, Any]:
    return {} if text == "{}" else loads(text)  # most items carry no features or metadata


def item_from_row(row: Sequence[Any]) -> Item:
    return new_item(row[0], row[1], row[2], _mapping(row[3]), _mapping(row[4]),
                    tuple(loads(row[5])) if row[5] is not None else None, row[6], bool(row[7]))


def annotation_from_row(row: Sequence[Any]) -> Annotation:
    return Annotation(
        seq=row[0], project_id=row[1], item_id=row[2], annotator=row[3], kind=row[4],
        label=row[5], comment=row[6], lease_id=row[7], idempotency_key=row[8],
        time_spent_s=row[9], created_at=row[10],
    )
