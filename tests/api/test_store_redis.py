"""The store contract against a real Redis server, plus Redis-only guarantees.

Runs against REDIS_URL (default redis://127.0.0.1:6379/0), each test in its own key namespace
that it deletes afterwards. No answer from that server fails the tests (it never skips them).
"""

from __future__ import annotations

import json
import logging
import threading

import numpy as np
import pytest

from api.storage.keys import SEP
from api.storage.records import ClassSpec, Item, Job, Project, ProjectSettings
from api.storage.redis import RedisStore, StoreUnavailable
from labeling.errors import Conflict, InvalidInput
from tests.redis_server import REDIS_URL, drop_namespace, namespace, shared_redis
from tests.server import free_port
from tests.store_contract import T0, StoreContract, label, make_project


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


@pytest.fixture
def format_1(store):
    """Leases in the older format: every hold an entry in ``hold`` (what a replica of an older
    release, still running in a rolling update, reads)."""
    store.r.set(store.k.lease_format(), "1")


def test_a_namespace_an_older_release_used_keeps_hold_entries_until_upgraded(ns, store, format_1, caplog):
    """A replica of an older release reads holds from ``hold`` only: a namespace that has projects
    and no lease format (an older release's) keeps writing entries, also when a newer replica
    opens it, until the upgrade; then new leases use sole flags and the older ones still end
    right. A new namespace starts with sole flags."""
    make_project(store, n_items=6)
    store.r.delete(store.k.lease_format())  # an older release's namespace has no format
    with caplog.at_level(logging.INFO, logger="api.storage.redis"):
        newer = RedisStore(REDIS_URL, namespace=ns)  # a replica of this release starts: no switch
    assert "labelloop upgrade-store" in caplog.text  # and says how to switch
    newer.create_project(Project("p2", (ClassSpec("a"), ClassSpec("b")), ProjectSettings()))
    assert newer.lease_format() == 1 and not newer.r.exists(newer.k.lease_format())
    first = newer.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="L1").item_ids
    assert not newer.r.hexists(newer.k.lease("L1"), "sole")
    assert newer.r.hlen(newer.k.p("p1", "hold")) == 2
    assert newer.upgrade_lease_format() == 1 and store.lease_format() == 2
    second = newer.lease("p1", "b", 2, n_eval=0, now=T0, ttl=60, lease_id="L2").item_ids
    assert newer.r.hget(newer.k.lease("L2"), "sole") == b"11" and newer.r.hlen(newer.k.p("p1", "hold")) == 2
    store.submit([label("p1", first[0], "a", "L1"), label("p1", second[0], "b", "L2")], now=T0 + 1)
    depth = store.queue_depth("p1", T0 + 2)
    assert (depth["open"], depth["leased"], depth["done"]) == (4, 2, 2)
    assert store.expire(T0 + 61) == 2
    assert not store.r.exists(store.k.p("p1", "hold"), store.k.p("p1", "nholds"))
    back = store.lease("p1", "c", 6, n_eval=0, now=T0 + 62, ttl=60, lease_id="L3").item_ids
    assert set(back) == {f"i{k}" for k in range(6)} - {first[0], second[0]}
    newer.close()
    fresh = RedisStore(REDIS_URL, namespace=ns + "-fresh")
    try:
        make_project(fresh)
        assert fresh.lease_format() == 2
    finally:
        drop_namespace(fresh.r, ns + "-fresh")
        fresh.close()


def test_upgrade_store_command(tmp_path, capsys):
    from api.cli import main
    from tests.redis_server import PrivateRedis

    server = PrivateRedis(tmp_path / "redis", appendonly=False).start()
    try:
        store = RedisStore(server.url)
        make_project(store)
        store.r.delete(store.k.lease_format())  # an older release's namespace has no format
        assert main(["upgrade-store", "--store", server.url]) == 0
        assert json.loads(capsys.readouterr().out) == {"store": "redis", "lease_format": 2,
                                                       "before": 1, "upgraded": True}
        assert store.lease_format() == 2
        store.close()
    finally:
        server.kill()
    assert main(["upgrade-store", "--store", f"sqlite:///{tmp_path / 'x.db'}"]) == 0
    assert json.loads(capsys.readouterr().out)["upgraded"] is False


def test_a_hold_nobody_shares_is_a_flag_in_its_lease(store):
    """An item that needs one answer and has no other holder is held by a flag in its lease alone:
    nothing is written per item; it is open, renews, and ends on submit, release or expiry, after
    which a late submit is refused. Items a redundancy setting sends to two annotators keep an
    entry per hold."""
    make_project(store, n_items=5)
    held = store.lease("p1", "a", 4, n_eval=0, now=T0, ttl=60, lease_id="L").item_ids
    assert store.r.hget(store.k.lease("L"), "sole") == b"1111"
    assert not store.r.exists(store.k.p("p1", "hold"), store.k.p("p1", "nholds"))
    assert store.get_lease("L").item_ids == held and store.get_lease("L").expires_at == T0 + 60
    depth = store.queue_depth("p1", T0 + 1)
    assert (depth["open"], depth["leased"]) == (5, 4)
    assert store.renew("L", "a", now=T0 + 10, ttl=60).expires_at == T0 + 70
    # two of its items in one call: each flag ends, none is written over
    store.submit([label("p1", held[0], "a", "L"), label("p1", held[1], "a", "L")], now=T0 + 11)
    assert store.release("L", "a", item_ids=[held[2]], now=T0 + 12) == 1
    assert store.r.hget(store.k.lease("L"), "sole") == b"0001"
    assert store.get_lease("L").item_ids == held[3:]
    assert store.queue_depth("p1", T0 + 71)["leased"] == 0  # expired, not yet swept
    assert store.expire(T0 + 71) == 1
    assert store.get_lease("L").item_ids == () and not store.r.hexists(store.k.lease("L"), "sole")
    with pytest.raises(Conflict):
        store.submit([label("p1", held[3], "a", "L")], now=T0 + 72)
    depth = store.queue_depth("p1", T0 + 72)
    assert (depth["open"], depth["leased"], depth["done"]) == (3, 0, 2)

    # the same items for two annotators: the first hold leaves the item in the pool, an entry each
    store.update_settings("p1", ProjectSettings(redundancy_fraction=1.0, redundancy_k=2))
    got = store.lease("p1", "b", 1, n_eval=0, now=T0 + 73, ttl=60, lease_id="Lb").item_ids
    assert store.r.hget(store.k.lease("Lb"), "sole") == b"0"
    assert store.r.hget(store.k.p("p1", "nholds"), got[0]) == b"1"
    again = store.lease("p1", "c", 3, n_eval=0, now=T0 + 74, ttl=60, lease_id="Lc").item_ids
    assert got[0] in again


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


@pytest.mark.usefixtures("format_1")
def test_holds_with_an_entry_each_in_held_still_expire(store):
    """Holds written before a lease had one ``leasing`` entry had an entry each in ``held`` (and
    their lease no pool keys); they still count as leased, renew, and come back at expiry."""
    make_project(store, n_items=3)
    first = store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="L").item_ids
    store.r.zrem(store.k.p("p1", "leasing"), "L")
    store.r.hdel(store.k.lease("L"), "keys", "evals")
    store.r.zadd(store.k.p("p1", "held"), {f"{i}{SEP}a": T0 + 60 for i in first})
    assert store.queue_depth("p1", T0 + 1)["leased"] == 2
    assert store.lease("p1", "b", 3, n_eval=0, now=T0 + 1, ttl=600, lease_id="Lb").item_ids == ("i2",)
    assert store.renew("L", "a", now=T0 + 10, ttl=60).expires_at == T0 + 70
    store.submit([label("p1", first[0], "a", "L")], now=T0 + 11)  # its entry stays until expiry
    assert store.queue_depth("p1", T0 + 12)["leased"] == 2
    first = first[1:]
    assert store.lease("p1", "c", 3, n_eval=0, now=T0 + 65, ttl=600, lease_id="Lc1").item_ids == ()
    assert store.lease("p1", "c", 3, n_eval=0, now=T0 + 71, ttl=600, lease_id="Lc2").item_ids == first
    assert store.r.zcard(store.k.p("p1", "held")) == 0
    assert store.queue_depth("p1", T0 + 72)["leased"] == 2


@pytest.mark.usefixtures("format_1")
def test_a_sweep_drops_the_global_expiry_set_of_older_releases(store):
    """Releases before per-project expiry also kept every hold in one ``{ns}:expiry`` sorted set;
    those holds end from ``held``, and a sweep drops the set, which nothing reads any more."""
    make_project(store, n_items=2)
    held = store.lease("p1", "a", 1, n_eval=0, now=T0, ttl=60, lease_id="L").item_ids
    store.r.zrem(store.k.p("p1", "leasing"), "L")
    store.r.zadd(store.k.p("p1", "held"), {f"{held[0]}{SEP}a": T0 + 60})
    store.r.zadd(f"{store.k.ns}:expiry", {f"p1{SEP}{held[0]}{SEP}a": T0 + 60})
    assert store.expire(T0 + 61) == 1
    assert not store.r.exists(f"{store.k.ns}:expiry")
    again = store.lease("p1", "b", 2, n_eval=0, now=T0 + 62, ttl=60, lease_id="Lb")
    assert sorted(again.item_ids) == ["i0", "i1"]


@pytest.mark.usefixtures("format_1")
def test_an_older_hold_entry_never_ends_a_newer_hold(store):
    """An older hold's own ``held`` entry outlives the hold once it is released; when it expires,
    it must not end the hold that a newer lease took on the same item for the same annotator."""
    make_project(store, n_items=3)
    first = store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="L").item_ids
    store.r.zrem(store.k.p("p1", "leasing"), "L")
    store.r.hdel(store.k.lease("L"), "keys", "evals")
    store.r.zadd(store.k.p("p1", "held"), {f"{i}{SEP}a": T0 + 60 for i in first})
    assert store.release("L", "a", item_ids=[first[0]], now=T0 + 1) == 1
    assert store.lease("p1", "a", 1, n_eval=0, now=T0 + 2, ttl=600, lease_id="L2").item_ids == first[:1]
    assert store.queue_depth("p1", T0 + 61)["leased"] == 1
    assert store.lease("p1", "c", 3, n_eval=0, now=T0 + 61, ttl=600, lease_id="Lc").item_ids == (first[1], "i2")
    assert store.get_lease("L2").item_ids == first[:1]


@pytest.mark.usefixtures("format_1")
def test_an_older_hold_entry_of_an_answered_item_leaves_the_pool_exhausted(store):
    make_project(store, n_items=1)
    store.lease("p1", "a", 1, n_eval=0, now=T0, ttl=60, lease_id="L")
    store.r.zrem(store.k.p("p1", "leasing"), "L")
    store.r.zadd(store.k.p("p1", "held"), {f"i0{SEP}a": T0 + 60})
    store.submit([label("p1", "i0", "a", "L")], now=T0 + 1)
    assert store.lease("p1", "b", 1, n_eval=0, now=T0 + 2, ttl=60, lease_id="Lb").exhausted


@pytest.mark.usefixtures("format_1")
def test_a_lease_written_with_per_item_records_still_works(store):
    """Leases written before the lease hash listed its items kept one record per item in
    ``lease:{id}:items``; such a lease is still read, renewed, released and submitted."""
    make_project(store, n_items=4)
    store.lease("p1", "a", 3, n_eval=0, now=T0, ttl=60, lease_id="L")
    items = store.get_lease("L").item_ids
    # the older shape: no items field, a record per item
    store.r.hdel(store.k.lease("L"), "items")
    store.r.hset(store.k.lease_items("L"),
                 mapping={i: f"open{SEP}{T0 + 60!r}{SEP}0{SEP}{{}}" for i in items})
    assert store.get_lease("L").item_ids == items
    assert store.renew("L", "a", now=T0 + 10, ttl=60).expires_at == T0 + 70
    assert store.r.ttl(store.k.lease_items("L")) > 0  # kept as long as the lease
    assert store.release("L", "a", item_ids=[items[0]], now=T0 + 11) == 1
    store.submit([label("p1", items[1], "a", "L")], now=T0 + 12)
    assert store.get_lease("L").item_ids == items[2:]
    assert store.release("L", "a", now=T0 + 13) == 1
    assert store.get_lease("L").item_ids == ()
