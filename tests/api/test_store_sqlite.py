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


def test_a_new_file_is_at_the_latest_schema_version_and_reopens_unchanged(tmp_path):
    from api.storage.sqlite_schema import MIGRATIONS
    from tests.store_contract import make_project

    s = SQLiteStore(tmp_path / "v.db")
    make_project(s, n_items=3)
    assert s.schema_version == len(MIGRATIONS) == 1
    s.close()
    s = SQLiteStore(tmp_path / "v.db")
    assert s._db.execute("PRAGMA user_version").fetchone() == (1,) and s.count_items("p1") == 3
    s.close()


def test_numbered_migrations_run_once_in_order_and_all_or_nothing(tmp_path):
    """A later release appends a migration: a file at version 1 gets it once, its data kept; a
    failing migration leaves the file at its version; a file newer than the release is refused."""
    import sqlite3

    from api.storage import sqlite_schema
    from labeling.errors import InvalidInput
    from tests.store_contract import make_project

    path = tmp_path / "m.db"
    s = SQLiteStore(path)
    make_project(s, n_items=2)
    s.close()
    second = "ALTER TABLE items ADD COLUMN note TEXT; UPDATE items SET note='v2'"
    db = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        sqlite_schema.migrate(db, [*sqlite_schema.MIGRATIONS, second, "UPDATE nope SET x=1"])
    assert db.execute("PRAGMA user_version").fetchone() == (1,)
    assert "note" not in {r[1] for r in db.execute("PRAGMA table_info(items)")}
    assert sqlite_schema.migrate(db, [*sqlite_schema.MIGRATIONS, second]) == 2
    assert sqlite_schema.migrate(db, [*sqlite_schema.MIGRATIONS, second]) == 2  # once
    assert db.execute("SELECT id, note FROM items ORDER BY seq").fetchall() == [("i0", "v2"), ("i1", "v2")]
    db.close()
    with pytest.raises(InvalidInput, match="version 2"):
        SQLiteStore(path)


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
