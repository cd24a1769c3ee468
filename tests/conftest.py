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


@pytest.fixture(params=["sqlite", "redis"])
def served_client(request, tmp_path):
    """An httpx client of a real ``labelloop serve`` process on a fresh SQLite store, then on a
    private Redis server; ``c.cli_args`` point the CLI at the same store."""
    import httpx

    from tests.redis_server import PrivateRedis
    from tests.server import Server

    redis_srv = None
    if request.param == "redis":
        redis_srv = PrivateRedis(tmp_path / "redis", appendonly=False).start()
    srv = Server(tmp_path / "data", store_url=redis_srv.url if redis_srv else None).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            c.cli_args = ["--data-dir", str(srv.data_dir)] + (
                ["--store", srv.store_url] if srv.store_url else [])
            yield c
    finally:
        srv.stop()
        if redis_srv is not None:
            redis_srv.kill()
