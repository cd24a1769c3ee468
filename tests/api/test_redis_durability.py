"""Redis persistence: the start-up check, and kill -9 of Redis mid-stream with AOF on and off."""

from __future__ import annotations

import pytest

from api.storage.records import Annotation
from api.storage.redis import RedisStore
from labeling.errors import InvalidInput
from tests.redis_server import PrivateRedis
from tests.store_contract import make_project


def test_require_durable_refuses_a_volatile_server(tmp_path):
    volatile = PrivateRedis(tmp_path / "v", appendonly=False).start()
    durable = PrivateRedis(tmp_path / "d", appendonly=True, fsync="everysec").start()
    try:
        with pytest.raises(InvalidInput, match="appendonly=no"):
            RedisStore(volatile.url, require_durable=True)
        RedisStore(volatile.url)  # warns only
        assert RedisStore(durable.url, require_durable=True).durability()["appendonly"] == "yes"
    finally:
        volatile.kill()
        durable.kill()


def _stream_then_kill(server: PrivateRedis, n: int) -> list[int]:
    store = RedisStore(server.url)
    make_project(store, n_items=n)
    acked = []
    lease = store.lease("p1", "a", n, n_eval=0, now=1.0, ttl=1e6, lease_id="L")
    for k, item in enumerate(lease.item_ids):
        store.submit([Annotation("p1", item, "a", "label", label=k % 2, lease_id="L",
                                 idempotency_key=f"k{k}")], now=2.0 + k)
        acked.append(k)  # submit returned: the annotation is acknowledged
    server.kill()  # SIGKILL, no shutdown save
    server.start()
    return [a.idempotency_key for a in RedisStore(server.url).annotations("p1")]


def test_kill_9_with_aof_keeps_every_acknowledged_annotation(tmp_path):
    server = PrivateRedis(tmp_path / "aof", appendonly=True, fsync="always").start()
    try:
        keys = _stream_then_kill(server, 200)
        assert keys == [f"k{k}" for k in range(200)]
    finally:
        server.kill()


def test_kill_9_without_persistence_loses_them(tmp_path):
    server = PrivateRedis(tmp_path / "none", appendonly=False).start()
    try:
        from labeling.errors import NotFound

        with pytest.raises(NotFound):  # the whole project is gone: the check above can fail
            _stream_then_kill(server, 50)
    finally:
        server.kill()
