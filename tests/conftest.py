import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest


@pytest.fixture
def redis_store():
    """A Redis store in its own key namespace on the shared server, dropped afterwards."""
    from api.storage.redis import RedisStore
    from tests.redis_server import REDIS_URL, drop_namespace, namespace, shared_redis

    client, ns = shared_redis(), namespace()
    s = RedisStore(REDIS_URL, namespace=ns)
    yield s
    s.close()
    drop_namespace(client, ns)
    client.close()


@pytest.fixture(params=["sqlite", "redis"])
def either_store(request, tmp_path):
    """A fresh SQLite store, then a Redis store in its own key namespace on the shared server."""
    if request.param == "redis":
        yield request.getfixturevalue("redis_store")
        return
    from api.storage.sqlite import SQLiteStore

    s = SQLiteStore(tmp_path / "store.db")
    yield s
    s.close()
