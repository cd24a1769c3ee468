"""The lease route's batcher: the requests of one event-loop turn share one store call, each gets
its own lease or its own error, and a failed call fails only the requests that were in it. Real
stores (SQLite on the loop, Redis on threads or awaited on the loop); the wrapper only counts the
calls."""

from __future__ import annotations

import asyncio

import anyio
import orjson
import pytest

from api.deps import LeaseBatcher
from api.schemas import LeaseOut
from api.storage.records import Lease, LeaseRequest
from labeling.errors import NotFound
from tests.store_contract import T0, make_project


class Counted:
    """The store, with a record of how many requests each ``lease_many`` call carried."""

    def __init__(self, store, awaited: bool = False) -> None:
        self.store, self.calls, self.leases_on_loop, self.awaited = store, [], awaited, 0
        self.in_flight = self.most_in_flight = 0

    def lease_many(self, requests, *, now):
        self.calls.append(len(requests))
        return self.store.lease_many(requests, now=now)

    async def lease_bodies_async(self, requests, *, now):
        self.calls.append(len(requests))
        self.awaited += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self.store.lease_bodies_async(requests, now=now)
        finally:
            self.in_flight -= 1


def batcher(store, mode: str) -> tuple[LeaseBatcher, Counted]:
    counted = Counted(store, awaited=mode == "awaited")
    return LeaseBatcher(counted, lambda: T0, anyio.CapacityLimiter(2) if mode == "threads" else None), counted


@pytest.mark.parametrize("mode", ["on-loop", "threads"])
def test_one_turn_of_requests_is_one_store_call(either_store, mode):
    one_turn(either_store, mode)


def test_awaited_batches_use_the_loops_own_client(redis_store):
    assert one_turn(redis_store, "awaited").awaited == 2
    assert redis_store._aio is None  # closed with its loop


def as_lease(got: bytes | Exception) -> Lease | Exception:
    """A batcher's answer (the route's encoded body) as a lease."""
    if isinstance(got, Exception):
        return got
    body = LeaseOut.model_validate_json(got)
    return Lease(body.lease_id, body.project_id, body.annotator, body.expires_at,
                 tuple(i.id for i in body.items), exhausted=body.exhausted)


def crowd(leases: LeaseBatcher, store, n: int, size: int) -> list:
    """``n`` annotators' leases of ``size`` items, all in one turn of a new event loop."""
    async def main():
        got = await asyncio.gather(*(leases.lease(LeaseRequest("p1", f"a{k}", size, 0, 60, f"L{k}"))
                                     for k in range(n)))
        await store.aclose()
        return [as_lease(g) for g in got]

    return asyncio.run(main())


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of the test's own (it may flush or kill it) and a store on it."""
    from api.storage.redis import RedisStore
    from tests.redis_server import PrivateRedis

    server = PrivateRedis(tmp_path / "redis", appendonly=False).start()
    try:
        yield server, RedisStore(server.url)
    finally:
        server.kill()


def test_awaited_calls_in_flight_are_capped_and_the_rest_wait(redis_store):
    make_project(redis_store, n_items=100)
    counted = Counted(redis_store, awaited=True)
    got = crowd(LeaseBatcher(counted, lambda: T0, None, most=4, in_flight=2), redis_store, 30, 1)
    assert counted.most_in_flight == 2 and sum(counted.calls) == 30 and max(counted.calls) == 4
    ids = [i for lease in got for i in lease.item_ids]
    assert len(ids) == 30 and len(set(ids)) == 30


def test_awaited_batches_reload_a_lost_script_and_lease_once(private_redis):
    import redis

    server, store = private_redis
    make_project(store, n_items=10)
    redis.Redis.from_url(server.url).script_flush()  # as after a restart without persistence
    leases, counted = batcher(store, "awaited")
    got = crowd(leases, store, 4, 2)
    depth = store.queue_depth("p1", now=T0)
    assert counted.calls == [4]
    assert [lease.item_ids for lease in got] == [(f"i{2 * k}", f"i{2 * k + 1}") for k in range(4)]
    assert depth["leased"] == 8  # each lease ran once (twice would hold all 10)


def test_awaited_batches_fail_as_unavailable_when_redis_is_gone(private_redis):
    from api.storage.redis import StoreUnavailable

    server, store = private_redis
    make_project(store, n_items=5)
    leases, _ = batcher(store, "awaited")

    async def main():
        ok = await leases.lease(LeaseRequest("p1", "a", 2, 0, 60, "La"))
        server.kill()
        failed = await asyncio.gather(*(leases.lease(LeaseRequest("p1", f"b{k}", 1, 0, 60, f"Lb{k}"))
                                        for k in range(3)), return_exceptions=True)
        await store.aclose()
        return ok, failed

    ok, failed = asyncio.run(main())
    assert as_lease(ok).item_ids == ("i0", "i1")
    assert len(failed) == 3 and all(isinstance(e, StoreUnavailable) for e in failed), failed


def one_turn(store, mode: str) -> Counted:
    make_project(store, n_items=20)
    leases, counted = batcher(store, mode)
    wave = [LeaseRequest("p1", f"a{k}", 3, 0, 60, f"L{k}") for k in range(5)]
    wave.insert(2, LeaseRequest("nope", "x", 3, 0, 60, "Lx"))

    async def main():
        first = await asyncio.gather(*(leases.lease(r) for r in wave), return_exceptions=True)
        second = await leases.lease(LeaseRequest("p1", "late", 10, 0, 60, "Llate"))
        await store.aclose()
        return [as_lease(g) for g in first], as_lease(second)

    first, second = asyncio.run(main())
    assert counted.calls == [6, 1]
    assert isinstance(first[2], NotFound) and "nope" in str(first[2])
    got = [lease for lease in first if not isinstance(lease, Exception)]
    assert [lease.id for lease in got] == [f"L{k}" for k in range(5)]
    ids = [i for lease in got for i in lease.item_ids] + list(second.item_ids)
    assert len(ids) == 20 and len(set(ids)) == 20  # no item to two annotators
    assert all(lease.expires_at == T0 + 60 for lease in got)
    return counted


def test_a_crowd_is_split_into_calls_of_at_most_most(tmp_path):
    from api.storage.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "s.db")
    make_project(store, n_items=200)
    counted = Counted(store)
    leases = LeaseBatcher(counted, lambda: T0, None, most=64)

    async def main():
        return await asyncio.gather(*(leases.lease(LeaseRequest("p1", f"a{k}", 1, 0, 60, f"L{k}"))
                                      for k in range(150)))

    got = asyncio.run(main())
    store.close()
    assert counted.calls == [64, 64, 22]
    assert [as_lease(lease).item_ids for lease in got] == [(f"i{k}",) for k in range(150)]


def test_a_failed_store_call_fails_its_requests_only(tmp_path):
    from api.storage.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "s.db")
    make_project(store, n_items=5)
    leases, _ = batcher(store, "on-loop")

    async def main():
        ok = await leases.lease(LeaseRequest("p1", "a", 2, 0, 60, "La"))
        store.close()  # every call after this raises
        failed = await asyncio.gather(*(leases.lease(LeaseRequest("p1", f"b{k}", 1, 0, 60, f"Lb{k}"))
                                        for k in range(3)), return_exceptions=True)
        return ok, failed

    ok, failed = asyncio.run(main())
    assert as_lease(ok).item_ids == ("i0", "i1")
    assert len(failed) == 3 and all(isinstance(e, Exception) and "closed" in str(e) for e in failed)


def test_awaited_bodies_are_the_leases_the_records_path_encodes(redis_store, tmp_path):
    """The lease route's bodies (Redis: encoded from the script's reply; SQLite: by the lease
    process) carry what ``lease_json`` writes of the same lease taken through ``lease_many``:
    features, metadata, the queue's and the pool's reasons, evaluation items; never gold or
    votes."""
    from api.schemas import lease_json
    from api.storage.records import Item
    from api.storage.sqlite import SQLiteStore
    from api.storage.sqlite_leaser import LeaseProcess

    items = [Item(id=f"i{k}", text=f"text {k}", features={"x": k / 3, "big": 2**40}, meta={"src": [k, "é"]},
                  gold=k % 2, votes=(k % 2, -1), is_eval=k < 2) for k in range(6)]

    def fill(store) -> None:
        make_project(store, n_items=0)
        make_project(store, pid="p2", n_items=0)
        for pid in ("p1", "p2"):
            store.add_items(pid, items, on_conflict="reject", rand_keys=[0.5, 0.1, 0.9, 0.3, 0.2, 0.4])
            store.set_queue(pid, ["i4", "i2"], [0.9, 0.5], [{"strategy": "margin", "value": 0.9}] * 2)

    sqlite_store = SQLiteStore(tmp_path / "s.db")
    for store, leaser in ((redis_store, redis_store), (sqlite_store, LeaseProcess(sqlite_store.path))):
        fill(store)
        wave = [LeaseRequest(pid, "a", 5, 1, 60, f"L-{pid}") for pid in ("p1", "p2")]
        expected = lease_json(store.lease_many(wave[:1], now=T0)[0])

        async def main(leaser=leaser, wave=wave):
            try:
                return (await leaser.lease_bodies_async(wave[1:], now=T0))[0]
            finally:
                await leaser.aclose()

        got = orjson.loads(asyncio.run(main()))
        assert got == {**orjson.loads(expected), "lease_id": "L-p2", "project_id": "p2"}
        assert [i["reasons"]["strategy"] for i in got["items"]] == \
            ["evaluation_slice", "margin", "margin", "pool_order", "pool_order"]
        assert not any("gold" in i or "votes" in i for i in got["items"])
    sqlite_store.close()
