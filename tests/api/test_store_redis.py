"""The store contract against a real Redis server, plus Redis-only guarantees."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from api.storage.redis import RedisStore
from tests.redis_server import REDIS_URL, drop_namespace, namespace, shared_redis
from tests.store_contract import StoreContract, make_project


@pytest.fixture
def store():
    client = shared_redis()
    ns = namespace()
    s = RedisStore(REDIS_URL, namespace=ns)
    yield s
    s.close()
    drop_namespace(client, ns)
    client.close()


class TestRedisStore(StoreContract):
    pass


def test_threads_with_separate_clients_never_share_an_item():
    client = shared_redis()
    ns = namespace()
    try:
        make_project(RedisStore(REDIS_URL, namespace=ns), n_items=2000)
        got: list[list[str]] = []

        def worker(k: int) -> None:
            s = RedisStore(REDIS_URL, namespace=ns)
            mine: list[str] = []
            for n in range(10_000):
                lease = s.lease("p1", f"a{k}", 25, n_eval=0, now=1000.0 + n, ttl=1e6, lease_id=f"L{k}-{n}")
                if not lease.item_ids:
                    break
                mine += lease.item_ids
            got.append(mine)
            s.close()

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        ids = [i for g in got for i in g]
        assert len(ids) == len(set(ids)) == 2000
    finally:
        drop_namespace(client, ns)


def test_fencing_lock():
    client = shared_redis()
    ns = namespace()
    try:
        a, b = RedisStore(REDIS_URL, namespace=ns), RedisStore(REDIS_URL, namespace=ns)
        t1 = a.acquire_lock("round:p", "a", 30)
        assert t1 is not None and b.acquire_lock("round:p", "b", 30) is None
        assert not b.release_lock("round:p", "b") and a.release_lock("round:p", "a")
        t2 = b.acquire_lock("round:p", "b", 30)
        assert t2 is not None and t2 > t1
    finally:
        drop_namespace(client, ns)


def test_large_float_features_survive_roundtrip():
    client = shared_redis()
    ns = namespace()
    try:
        from api.storage.records import ClassSpec, Item, Project, ProjectSettings

        s = RedisStore(REDIS_URL, namespace=ns)
        s.create_project(Project("p", (ClassSpec("a"), ClassSpec("b")), ProjectSettings()))
        x = 0.12345678901234567
        s.add_items("p", [Item("i", features={"x": x})], on_conflict="reject", rand_keys=np.zeros(1))
        assert s.get_item("p", "i").features["x"] == x
    finally:
        drop_namespace(client, ns)
