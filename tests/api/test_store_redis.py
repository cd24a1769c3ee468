"""The store contract against a real Redis server, plus Redis-only guarantees.

Runs against REDIS_URL (default redis://127.0.0.1:6379/0), each test in its own key namespace
that it deletes afterwards. No answer from that server fails the tests (it never skips them).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from api.storage.records import ClassSpec, Item, Job, Project, ProjectSettings
from api.storage.redis import RedisStore, StoreUnavailable
from labeling.errors import InvalidInput
from tests.redis_server import REDIS_URL, drop_namespace, namespace, shared_redis
from tests.server import free_port
from tests.store_contract import StoreContract, make_project


@pytest.fixture
def ns():
    client = shared_redis()
    name = namespace()
    yield name
    drop_namespace(client, name)
    client.close()


@pytest.fixture
def store(ns):
    s = RedisStore(REDIS_URL, namespace=ns)
    yield s
    s.close()


class TestRedisStore(StoreContract):
    pass


def test_threads_with_separate_clients_never_share_an_item(ns):
    make_project(RedisStore(REDIS_URL, namespace=ns), n_items=2000)
    got: list[list[str]] = []
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        s = RedisStore(REDIS_URL, namespace=ns)
        mine: list[str] = []
        try:
            for n in range(10_000):
                lease = s.lease("p1", f"a{k}", 25, n_eval=0, now=1000.0 + n, ttl=1e6,
                                lease_id=f"L{k}-{n}")
                if not lease.item_ids:
                    break
                mine += lease.item_ids
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            got.append(mine)
            s.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    ids = [i for g in got for i in g]
    assert len(ids) == len(set(ids)) == 2000


def test_fencing_lock_tokens_grow_and_time_is_a_parameter(store):
    other = RedisStore(REDIS_URL, namespace=store.k.ns)
    t1 = store.acquire_lock("round:p", "a", 30, now=0.0)
    assert t1 is not None
    assert other.acquire_lock("round:p", "b", 30, now=10.0) is None
    assert store.acquire_lock("round:p", "a", 30, now=10.0) is None  # not re-entrant
    assert not other.release_lock("round:p", "b")
    t2 = other.acquire_lock("round:p", "b", 30, now=30.0)  # a's hold ended at 30 (its clock)
    assert t2 is not None and t2 > t1
    assert not store.release_lock("round:p", "a")  # a no longer holds it
    assert other.release_lock("round:p", "b")
    t3 = store.acquire_lock("round:p", "a", 30, now=31.0)
    assert t3 is not None and t3 > t2
    assert store.acquire_lock("other", "a", 30, now=0.0) == 1  # one counter per lock name
    with pytest.raises(InvalidInput):
        store.acquire_lock("x", "a", 0, now=0.0)
    other.close()


def test_concurrent_job_updates_lose_no_field(store):
    make_project(store)
    store.create_job(Job("j", "p1", "round", "running", 0.0))
    other = RedisStore(REDIS_URL, namespace=store.k.ns)

    def progress() -> None:  # a worker reporting progress
        for k in range(300):
            store.update_job("j", done=k + 1)

    t = threading.Thread(target=progress)
    t.start()
    for k in range(300):  # another replica writing other fields meanwhile
        other.update_job("j", message=f"m{k + 1}")
    t.join(timeout=60)
    other.update_job("j", status="cancelled")
    job = store.get_job("j")
    assert (job.status, job.message, job.done) == ("cancelled", "m300", 300)
    store.create_job(Job("j2", "p1", "round", "queued", 0.0))  # the slot was freed
    other.close()


def test_large_float_features_survive_roundtrip(store):
    store.create_project(Project("p", (ClassSpec("a"), ClassSpec("b")), ProjectSettings()))
    x = 0.12345678901234567
    store.add_items("p", [Item("i", features={"x": x})], on_conflict="reject", rand_keys=np.zeros(1))
    assert store.get_item("p", "i").features["x"] == x


def test_field_separator_refused_in_ids(store):
    make_project(store)
    with pytest.raises(InvalidInput, match="U\\+001F"):
        store.add_items("p1", [Item("a\x1fb")], on_conflict="reject", rand_keys=np.zeros(1))
    with pytest.raises(InvalidInput, match="annotator"):
        store.lease("p1", "x\x1fy", 1, n_eval=0, now=0.0, ttl=1, lease_id="L")
    assert store.count_items("p1") == 10


def test_unreachable_server_is_a_labelloop_error_without_credentials():
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with pytest.raises(StoreUnavailable, match="unavailable") as info:
        RedisStore(url)
    assert "hunter2" not in str(info.value)
    assert info.value.__cause__ is not None  # raised `from` the redis-py error


def test_ping_answers(store):
    assert store.ping() is True
    assert store.durability()["source"] in ("config", "info")


def test_scripts_are_short_lua_files_that_build_no_key_names():
    """Each script is a ``.lua`` file of the package under 150 lines; key names come from
    ``api.storage.keys`` as arguments, so no script spells a namespace or a key suffix."""
    from importlib.resources import files

    from api.storage.keys import PROJECT
    from api.storage.redis_common import LEASE_SCRIPTS, source

    folder = files("api.storage").joinpath("lua")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".lua"))
    assert names == sorted(f"{n}.lua" for n in ("prelude", *LEASE_SCRIPTS))
    for name in names:
        text = folder.joinpath(name).read_text()
        assert len(text.splitlines()) < 150, name
        assert ":p:" not in text and "labelloop" not in text and "KEYS[" not in text, name
        for what in PROJECT:
            assert f"':{what}'" not in text and f'":{what}"' not in text, (name, what)
    assert source("lease").startswith("local K = {items = KEYS[1], ")
