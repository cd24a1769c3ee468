import pytest

from api.storage.sqlite import SQLiteStore
from tests.store_contract import StoreContract


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "store.db")
    yield s
    s.close()


class TestSQLiteStore(StoreContract):
    pass


def as_before_held(path) -> None:
    """Make a store's file look as it was before leases carried their sole holds (``held``):
    each one a row of ``holds``, marked sole, and no ``held`` column."""
    import json
    import sqlite3

    db = sqlite3.connect(path)
    rows = db.execute("SELECT project_id, id, annotator, held FROM leases WHERE held IS NOT NULL").fetchall()
    db.executemany("INSERT INTO holds (project_id, rand_key, item_id, lease_id, annotator, is_eval, sole)"
                   " VALUES (?,?,?,?,?,?,1)",
                   [(pid, rand_key, iid, lid, who, is_eval) for pid, lid, who, held in rows
                    for is_eval, rand_key, iid in json.loads(held)])
    db.execute("ALTER TABLE leases DROP COLUMN held")
    db.commit()
    db.close()


def test_checkpointer_copies_the_log_into_the_database_file_off_the_request_path(tmp_path):
    """Writes land in the write-ahead log; the store's own thread copies them into the database
    file long before the connection's backstop threshold, and stops when the store closes."""
    import time

    from api.service.projects import create_project
    from api.storage.records import Item

    path = tmp_path / "wal.db"
    s = SQLiteStore(path)
    create_project(s, "p", ["a", "b"], now=0.0)
    before = path.stat().st_size
    s.add_items("p", [Item(f"i{k}", text="x" * 200) for k in range(5000)], on_conflict="reject",
                rand_keys=[k / 5000 for k in range(5000)])
    wal_pages = (tmp_path / "wal.db-wal").stat().st_size // 4096
    assert 0 < wal_pages < 10_000  # below the backstop: only the thread can copy it now
    deadline = time.monotonic() + 10
    while path.stat().st_size <= before + 500_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size > before + 500_000
    thread = s._checkpointer._thread
    s.close()
    assert not thread.is_alive()
    again = SQLiteStore(path)
    assert again.count_items("p") == 5000
    again.close()


def test_a_file_from_before_the_pool_table_keeps_its_open_items_and_live_holds(tmp_path):
    """Schema 1 kept availability in item columns and holds as 'open' lease rows; opening such a
    file fills the pool and the holds from them, once."""
    import sqlite3

    from api.storage.records import ProjectSettings
    from tests.store_contract import T0, make_project

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE items (
            project_id TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
            text TEXT, features TEXT NOT NULL, meta TEXT NOT NULL, votes TEXT, gold INTEGER,
            is_eval INTEGER NOT NULL, rand_key REAL NOT NULL,
            required INTEGER NOT NULL DEFAULT 1, n_labels INTEGER NOT NULL DEFAULT 0,
            flagged INTEGER NOT NULL DEFAULT 0, open INTEGER NOT NULL DEFAULT 1, held_until REAL,
            PRIMARY KEY (project_id, id), UNIQUE (project_id, seq));
        CREATE TABLE lease_items (
            lease_id TEXT NOT NULL, project_id TEXT NOT NULL, item_id TEXT NOT NULL,
            annotator TEXT NOT NULL, expires_at REAL NOT NULL, state TEXT NOT NULL,
            is_eval INTEGER NOT NULL, reasons TEXT NOT NULL, PRIMARY KEY (lease_id, item_id));
    """)
    db.close()
    s = SQLiteStore(path)
    make_project(s, n_items=4)  # fills the new pool table too
    s.close()
    db = sqlite3.connect(path)  # make it look like schema 1: i1 held by 'a', i2 done
    db.execute("DROP INDEX leases_expiry")
    db.execute("ALTER TABLE leases DROP COLUMN held")
    db.execute("ALTER TABLE leases DROP COLUMN expires_at")
    db.execute("DELETE FROM pool")
    db.execute("UPDATE items SET open=0, held_until=? WHERE id='i1'", (T0 + 60,))
    db.execute("UPDATE items SET open=0, n_labels=1 WHERE id='i2'")
    db.execute("INSERT INTO lease_items VALUES ('La','p1','i1','a',?,'open',0,'{}')", (T0 + 60,))
    db.execute("INSERT INTO leases VALUES ('La','p1','a',?)", (T0,))
    db.execute("PRAGMA user_version=0")
    db.commit()
    db.close()

    s = SQLiteStore(path)
    try:
        assert s.lease("p1", "b", 5, n_eval=0, now=T0, ttl=60, lease_id="Lb").item_ids == ("i0", "i3")
        assert s.get_lease("La").item_ids == ("i1",)
        assert s.renew("La", "a", now=T0 + 1, ttl=60).expires_at == T0 + 61
        s.update_settings("p1", ProjectSettings())
    finally:
        s.close()
    s = SQLiteStore(path)  # the second opening changes nothing
    try:
        assert s.queue_depth("p1", now=T0 + 2)["leased"] == 3
        assert s.lease("p1", "c", 5, n_eval=0, now=T0 + 2, ttl=60, lease_id="Lc").item_ids == ()
    finally:
        s.close()


def test_a_file_with_holds_keyed_by_item_keeps_its_live_holds(tmp_path):
    """Holds were keyed by item id, with their expiry indexed, before they were keyed in pool
    order and leases carried the expiry; opening such a file re-keys its live holds and gives
    their leases the holds' expiry, once: they still block the item, renew, take an answer and
    expire."""
    import sqlite3

    from tests.store_contract import T0, label, make_project

    path = tmp_path / "holds.db"
    s = SQLiteStore(path)
    make_project(s, n_items=4)
    assert s.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="La").item_ids == ("i0", "i1")
    assert s.lease("p1", "x", 1, n_eval=0, now=T0, ttl=60, lease_id="Lx").item_ids == ("i2",)
    s.close()
    as_before_held(path)
    db = sqlite3.connect(path)  # the earlier layout, with a's two holds in it
    db.executescript("""
        CREATE TABLE old AS SELECT h.project_id, h.item_id, h.lease_id, h.annotator, l.expires_at
            FROM holds h JOIN leases l ON l.id=h.lease_id;
        DROP INDEX leases_expiry;
        ALTER TABLE leases DROP COLUMN expires_at;
        DROP TABLE holds;
        CREATE TABLE holds (
            project_id TEXT NOT NULL, item_id TEXT NOT NULL, lease_id TEXT NOT NULL,
            annotator TEXT NOT NULL, expires_at REAL NOT NULL,
            PRIMARY KEY (project_id, item_id, lease_id)) WITHOUT ROWID;
        CREATE INDEX holds_lease ON holds (lease_id);
        CREATE INDEX holds_expiry ON holds (expires_at);
        INSERT INTO holds SELECT * FROM old;
        DROP TABLE old;
    """)
    db.close()

    s = SQLiteStore(path)
    try:
        assert "rand_key" in {r[1] for r in s._db.execute("PRAGMA table_info(holds)")}
        assert s.lease("p1", "b", 5, n_eval=0, now=T0 + 1, ttl=60, lease_id="Lb").item_ids == ("i3",)
        assert s.renew("La", "a", now=T0 + 2, ttl=60).item_ids == ("i0", "i1")
        assert not s.submit([label("p1", "i1", "a", "La")], now=T0 + 3)[0].duplicate
        assert s.get_lease("La").item_ids == ("i0",)
        assert s.queue_depth("p1", now=T0 + 3)["leased"] == 3  # i0 (La), i2 (Lx), i3 (Lb)
    finally:
        s.close()
    s = SQLiteStore(path)  # the second opening changes nothing
    try:
        assert s.get_lease("La").item_ids == ("i0",)
        # Lx was never renewed: its hold ends at the expiry its lease was given from its holds
        assert s.lease("p1", "c", 5, n_eval=0, now=T0 + 200, ttl=60, lease_id="Lc").item_ids == ("i0", "i2", "i3")
    finally:
        s.close()


def test_a_file_with_holds_from_before_sole_holds_keeps_them(tmp_path):
    """Holds had no evaluation flag and no ``sole`` mark before expired sole holds went back to
    the pool unchecked; opening such a file adds both columns, once, and its holds end the
    checked way: an evaluation item goes back to the evaluation slice."""
    import sqlite3

    from tests.store_contract import T0, make_project

    path = tmp_path / "sole.db"
    s = SQLiteStore(path)
    make_project(s, n_items=4, n_eval=1)
    assert s.lease("p1", "a", 2, n_eval=1, now=T0, ttl=10, lease_id="La").item_ids == ("i0", "i1")
    s.close()
    as_before_held(path)
    db = sqlite3.connect(path)  # the earlier holds, without the two columns
    db.executescript("""
        CREATE TABLE old AS SELECT project_id, rand_key, item_id, lease_id, annotator FROM holds;
        DROP TABLE holds;
        CREATE TABLE holds (
            project_id TEXT NOT NULL, rand_key REAL NOT NULL, item_id TEXT NOT NULL,
            lease_id TEXT NOT NULL, annotator TEXT NOT NULL,
            PRIMARY KEY (project_id, rand_key, item_id, lease_id)) WITHOUT ROWID;
        CREATE INDEX holds_lease ON holds (lease_id);
        INSERT INTO holds SELECT * FROM old;
        DROP TABLE old;
    """)
    db.close()
    for _ in range(2):  # the second opening changes nothing
        s = SQLiteStore(path)
        try:
            assert {"is_eval", "sole"} <= {r[1] for r in s._db.execute("PRAGMA table_info(holds)")}
            assert s.queue_depth("p1", now=T0 + 1)["leased"] == 2
        finally:
            s.close()
    s = SQLiteStore(path)
    try:
        b = s.lease("p1", "b", 4, n_eval=0, now=T0 + 20, ttl=10, lease_id="Lb")
        assert [(li.item.id, li.eval) for li in b.items] == [("i1", False), ("i2", False), ("i3", False),
                                                            ("i0", True)]
    finally:
        s.close()


def test_a_file_with_sole_holds_as_rows_keeps_them(tmp_path):
    """Sole holds were rows of ``holds`` before their leases carried them; opening such a file
    adds the column, and those holds still block their items, count as leased, take an answer,
    release, renew and expire, beside new leases that carry theirs."""
    from tests.store_contract import T0, label, make_project

    path = tmp_path / "rows.db"
    s = SQLiteStore(path)
    make_project(s, n_items=6)
    assert s.lease("p1", "a", 3, n_eval=0, now=T0, ttl=60, lease_id="La").item_ids == ("i0", "i1", "i2")
    s.close()
    as_before_held(path)
    s = SQLiteStore(path)
    try:
        assert "held" in {r[1] for r in s._db.execute("PRAGMA table_info(leases)")}
        assert s._db.execute("SELECT COUNT(*) FROM holds WHERE sole=1").fetchone() == (3,)
        assert s.lease("p1", "b", 2, n_eval=0, now=T0 + 1, ttl=60, lease_id="Lb").item_ids == ("i3", "i4")
        assert s.queue_depth("p1", now=T0 + 1)["leased"] == 5
        assert not s.submit([label("p1", "i1", "a", "La")], now=T0 + 2)[0].duplicate
        assert s.release("La", "a", item_ids=["i2"], now=T0 + 2) == 1
        assert s.get_lease("La").item_ids == ("i0",)
        assert s.renew("La", "a", now=T0 + 3, ttl=100).expires_at == T0 + 103
        assert s.lease("p1", "c", 5, n_eval=0, now=T0 + 4, ttl=60, lease_id="Lc").item_ids == ("i2", "i5")
        # Lb and Lc end first: their items come back, La's i0 is still held
        assert s.lease("p1", "d", 5, n_eval=0, now=T0 + 70, ttl=600, lease_id="Ld").item_ids == (
            "i2", "i3", "i4", "i5")
        assert s.lease("p1", "e", 5, n_eval=0, now=T0 + 200, ttl=60, lease_id="Le").item_ids == ("i0",)
    finally:
        s.close()


def test_an_item_held_or_labelled_once_leaves_the_pool_when_redundancy_ends(store):
    """An item held or labelled once while it needed two annotators goes to nobody else once the
    project needs one for each item; the held one comes back when its hold expires."""
    from api.storage.records import ProjectSettings
    from tests.store_contract import T0, label, make_project

    make_project(store, n_items=3)
    store.update_settings("p1", ProjectSettings(redundancy_fraction=1.0, redundancy_k=2))
    assert store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="La").item_ids == ("i0", "i1")
    store.submit([label("p1", "i1", "a", "La")], now=T0)
    store.update_settings("p1", ProjectSettings())
    assert store.lease("p1", "b", 5, n_eval=0, now=T0, ttl=600, lease_id="Lb").item_ids == ("i2",)
    assert store.lease("p1", "c", 5, n_eval=0, now=T0 + 61, ttl=60, lease_id="Lc").item_ids == ("i0",)
