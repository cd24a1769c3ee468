"""The SQLite store's schema, its numbered migrations (each with a test in
tests/api/test_store_sqlite.py), and row decoding."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from api.storage.codec import loads
from api.storage.records import Item
from labeling.errors import InvalidInput

__all__ = ["ANNOTATION_COLS", "ITEMS", "ITEM_COLS", "MIGRATIONS", "item_from_row", "migrate"]

SCHEMA_1 = """
CREATE TABLE projects (id TEXT PRIMARY KEY, doc TEXT NOT NULL,
    review_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE items (
    project_id TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    text TEXT, features TEXT NOT NULL, meta TEXT NOT NULL, votes TEXT, gold INTEGER,
    is_eval INTEGER NOT NULL, rand_key REAL NOT NULL,
    PRIMARY KEY (project_id, id), UNIQUE (project_id, seq));
-- a row per item in hand-out order: its pool (records.POOLS), its place there (rand_key, or its
-- arrival in review), the answers it requires (see Store.require), its answers and live holds
CREATE TABLE pool (
    project_id TEXT NOT NULL, pool TEXT NOT NULL, pool_key REAL NOT NULL, item_id TEXT NOT NULL,
    required INTEGER NOT NULL, n_labels INTEGER NOT NULL DEFAULT 0,
    n_holds INTEGER NOT NULL DEFAULT 0, flagged INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, pool, pool_key, item_id)) WITHOUT ROWID;
CREATE UNIQUE INDEX pool_item ON pool (project_id, item_id);
-- the open items of each pool in order: SQLite keeps this index exact on every write
CREATE INDEX pool_open ON pool (project_id, pool, pool_key)
    WHERE flagged=0 AND required>n_labels+n_holds;
CREATE TABLE queue (
    project_id TEXT NOT NULL, item_id TEXT NOT NULL, rank INTEGER NOT NULL,
    score REAL NOT NULL, reasons TEXT NOT NULL, PRIMARY KEY (project_id, item_id));
CREATE INDEX queue_rank ON queue (project_id, rank);
-- a lease is open until its expiry passes and its holds are ended (by a lease or the sweep)
CREATE TABLE leases (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, annotator TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL, open INTEGER NOT NULL DEFAULT 1
    ) WITHOUT ROWID;
CREATE INDEX leases_open ON leases (project_id, expires_at) WHERE open = 1;
CREATE INDEX leases_annotator ON leases (project_id, annotator) WHERE open = 1;
-- live holds by lease (each lease writes near the others), with the queue's reasons for the
-- item (NULL: pool order). Deleted when answered, released or expired
CREATE TABLE holds (
    lease_id TEXT NOT NULL, item_id TEXT NOT NULL, project_id TEXT NOT NULL, reasons TEXT,
    PRIMARY KEY (lease_id, item_id)) WITHOUT ROWID;
-- the latest time a lease or a sweep ran at (see ``LeaseOps._reclaim``)
CREATE TABLE lease_clock (id INTEGER PRIMARY KEY CHECK (id = 0), now REAL NOT NULL);
INSERT INTO lease_clock VALUES (0, 0);
CREATE TABLE answered (
    project_id TEXT NOT NULL, item_id TEXT NOT NULL, annotator TEXT NOT NULL,
    PRIMARY KEY (project_id, item_id, annotator)) WITHOUT ROWID;
CREATE TABLE annotations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, project_id TEXT NOT NULL, item_id TEXT NOT NULL,
    annotator TEXT NOT NULL, kind TEXT NOT NULL, label INTEGER, comment TEXT NOT NULL,
    lease_id TEXT, idem_key TEXT, time_spent REAL, created_at REAL NOT NULL,
    guidelines_version INTEGER);
CREATE UNIQUE INDEX annotations_idem ON annotations (project_id, annotator, idem_key)
    WHERE idem_key IS NOT NULL;
CREATE INDEX annotations_project ON annotations (project_id, seq);
-- small records by name: the registered LFs and assertions, cached votes, jobs, locks (see
-- Store._records)
CREATE TABLE records (name TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID;
CREATE TABLE arrays (
    project_id TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (project_id, name));
CREATE TABLE rounds (
    project_id TEXT NOT NULL, number INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (project_id, number));
"""

# ``MIGRATIONS[v - 1]`` brings a file from schema version v - 1 to v; a later change appends a
# script (no semicolons inside its comments: it runs statement by statement)
MIGRATIONS: list[str] = [SCHEMA_1]

# an item with its pool: ``SELECT {ITEM_COLS} FROM {ITEMS} WHERE ...``
ITEM_COLS = "i.id, i.seq, i.text, i.features, i.meta, i.votes, i.gold, i.is_eval, p.pool"
ITEMS = "items i JOIN pool p ON p.project_id=i.project_id AND p.item_id=i.id"
# an annotation's columns in the order of :class:`Annotation`'s fields: ``Annotation(*row)``
ANNOTATION_COLS = ("project_id, item_id, annotator, kind, label, comment, lease_id, idem_key,"
                   " time_spent, created_at, seq, guidelines_version")


def migrate(db: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Run the migrations past the file's ``PRAGMA user_version``, all in one transaction, and
    set it; returns the version now. ``InvalidInput`` for a file newer than this release."""
    db.execute("BEGIN IMMEDIATE")
    try:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > len(migrations):
            raise InvalidInput(f"the store file is at schema version {version}; this release "
                               f"knows versions up to {len(migrations)}")
        for statement in ";".join(migrations[version:]).split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version={len(migrations)}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return len(migrations)


def _mapping(text: str) -> dict[str, Any]:
    return {} if text == "{}" else loads(text)  # most items carry no features or metadata


def item_from_row(row: Sequence[Any]) -> Item:
    return Item(row[0], row[1], row[2], _mapping(row[3]), _mapping(row[4]),
                tuple(loads(row[5])) if row[5] is not None else None, row[6], bool(row[7]), row[8])
