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
