"""The lease route's batcher: the requests of one event-loop turn share one store call, each gets
its own lease or its own error, and a failed call fails only the requests that were in it. Real
stores (SQLite on the loop, Redis on threads); the wrapper only counts the calls."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from api.deps import LeaseBatcher
from api.storage.records import LeaseRequest
from labeling.errors import NotFound
from tests.store_contract import T0, make_project


class Counted:
    """The store, with a record of how many requests each ``lease_many`` call carried."""

    def __init__(self, store) -> None:
        self.store, self.calls = store, []

    def lease_many(self, requests, *, now):
        self.calls.append(len(requests))
        return self.store.lease_many(requests, now=now)


def batcher(store, threaded: bool) -> tuple[LeaseBatcher, Counted]:
    counted = Counted(store)
    return LeaseBatcher(counted, lambda: T0, anyio.CapacityLimiter(2) if threaded else None), counted


@pytest.mark.parametrize("threaded", [False, True], ids=["on-loop", "threads"])
def test_one_turn_of_requests_is_one_store_call(either_store, threaded):
    make_project(either_store, n_items=20)
    leases, counted = batcher(either_store, threaded)
    wave = [LeaseRequest("p1", f"a{k}", 3, 0, 60, f"L{k}") for k in range(5)]
    wave.insert(2, LeaseRequest("nope", "x", 3, 0, 60, "Lx"))

    async def main():
        first = await asyncio.gather(*(leases.lease(r) for r in wave), return_exceptions=True)
        second = await leases.lease(LeaseRequest("p1", "late", 10, 0, 60, "Llate"))
        return first, second

    first, second = asyncio.run(main())
    assert counted.calls == [6, 1]
    assert isinstance(first[2], NotFound) and "nope" in str(first[2])
    got = [lease for lease in first if not isinstance(lease, Exception)]
    assert [lease.id for lease in got] == [f"L{k}" for k in range(5)]
    ids = [i for lease in got for i in lease.item_ids] + list(second.item_ids)
    assert len(ids) == 20 and len(set(ids)) == 20  # no item to two annotators
    assert all(lease.expires_at == T0 + 60 for lease in got)


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
    assert [lease.item_ids for lease in got] == [(f"i{k}",) for k in range(150)]


def test_a_failed_store_call_fails_its_requests_only(tmp_path):
    from api.storage.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "s.db")
    make_project(store, n_items=5)
    leases, _ = batcher(store, threaded=False)

    async def main():
        ok = await leases.lease(LeaseRequest("p1", "a", 2, 0, 60, "La"))
        store.close()  # every call after this raises
        failed = await asyncio.gather(*(leases.lease(LeaseRequest("p1", f"b{k}", 1, 0, 60, f"Lb{k}"))
                                        for k in range(3)), return_exceptions=True)
        return ok, failed

    ok, failed = asyncio.run(main())
    assert ok.item_ids == ("i0", "i1")
    assert len(failed) == 3 and all(isinstance(e, Exception) and "closed" in str(e) for e in failed)
