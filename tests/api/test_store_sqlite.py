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
