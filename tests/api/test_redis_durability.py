"""Redis persistence: the start-up check, and kill -9 of Redis mid-stream with AOF on and off.

Every test starts its own redis-server on a free loopback port in a temporary folder and kills
only that process.
"""

from __future__ import annotations

import logging

import pytest

from api.storage.records import Annotation
from api.storage.redis import RedisStore, StoreUnavailable
from labeling.errors import InvalidInput, NotFound
from tests.redis_server import PrivateRedis
from tests.store_contract import make_project


def test_require_durable_refuses_a_volatile_server(tmp_path, caplog):
    volatile = PrivateRedis(tmp_path / "v", appendonly=False).start()
    evicting = PrivateRedis(tmp_path / "e", appendonly=True, policy="allkeys-lru").start()
    durable = PrivateRedis(tmp_path / "d", appendonly=True, fsync="everysec").start()
    try:
        with pytest.raises(InvalidInput, match="appendonly=no.*set appendonly yes"):
            RedisStore(volatile.url, require_durable=True)
        with pytest.raises(InvalidInput, match="maxmemory-policy=allkeys-lru"):
            RedisStore(evicting.url, require_durable=True)
        with caplog.at_level(logging.WARNING, logger="api.storage.redis"):
            RedisStore(volatile.url).close()  # warns only
        assert "appendonly=no" in caplog.text
        store = RedisStore(durable.url, require_durable=True)
        assert store.durability() == {"appendonly": "yes", "appendfsync": "everysec",
                                      "maxmemory-policy": "noeviction", "source": "config"}
        store.close()
    finally:
        for server in (volatile, evicting, durable):
            server.kill()


def test_config_disabled_falls_back_to_info(tmp_path, caplog):
    server = PrivateRedis(tmp_path / "m", appendonly=True,
                          extra=("--rename-command", "CONFIG", "")).start()
    try:
        with caplog.at_level(logging.WARNING, logger="api.storage.redis"):
            store = RedisStore(server.url, require_durable=True)  # AOF and noeviction: accepted
        assert store.durability() == {"appendonly": "yes", "appendfsync": None,
                                      "maxmemory-policy": "noeviction", "source": "info"}
        assert "CONFIG is disabled" in caplog.text
        store.close()
    finally:
        server.kill()


def _stream_then_kill(server: PrivateRedis, n: int) -> list[str]:
    store = RedisStore(server.url)
    make_project(store, n_items=n)
    lease = store.lease("p1", "a", n, n_eval=0, now=1.0, ttl=1e6, lease_id="L")
    acked = []
    for k, item in enumerate(lease.item_ids):
        store.submit([Annotation("p1", item, "a", "label", label=k % 2, lease_id="L",
                                 idempotency_key=f"k{k}")], now=2.0 + k)
        acked.append(f"k{k}")  # submit returned: the annotation is acknowledged
    assert len(acked) == n
    server.kill()  # SIGKILL, no shutdown save
    with pytest.raises(StoreUnavailable):
        store.count_labels("p1")
    assert store.ping() is False
    server.start()
    assert store.ping() is True  # the same store reconnects once Redis is back
    kept = [a.idempotency_key for a in store.annotations("p1")]
    store.close()
    return kept


def test_kill_9_with_aof_keeps_every_acknowledged_annotation(tmp_path):
    server = PrivateRedis(tmp_path / "aof", appendonly=True, fsync="always").start()
    try:
        assert _stream_then_kill(server, 200) == [f"k{k}" for k in range(200)]
    finally:
        server.kill()


def test_kill_9_without_persistence_loses_them(tmp_path):
    server = PrivateRedis(tmp_path / "none", appendonly=False).start()
    try:
        with pytest.raises(NotFound):  # the whole project is gone: the check above can fail
            _stream_then_kill(server, 50)
    finally:
        server.kill()
