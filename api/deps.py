"""Dependency aliases shared by the routers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Request

from api.schemas import lease_bodies
from api.service.annotate import ProjectCache
from api.service.services import Services
from api.storage.base import Store
from api.storage.records import LeaseRequest, Project
from api.storage.sqlite import SQLiteStore
from api.storage.sqlite_leaser import LeaseProcess
from labeling.errors import LabelloopError

T = TypeVar("T")


class LeaseBatcher:
    """Leases that reach the route in the same turn of the event loop share one store call
    (:meth:`~api.storage.base.Store.lease_many`: one commit for SQLite, one round trip for
    Redis), made on the next turn, ``most`` requests to a call. The clock is read when that call
    starts. An in-process store is called on the event loop, where its short calls are
    serialised anyway. A store that waits on the network is awaited on the loop when it can be
    (:attr:`~api.storage.base.Store.leases_on_loop`: no thread, at most ``in_flight`` calls at
    once, the next batch growing meanwhile), else called on at most ``limiter`` threads; either
    way the loop keeps serving meanwhile. ``store`` may be the embedded store's
    :class:`~api.storage.sqlite_leaser.LeaseProcess`. Each request gets its lease as the route
    answers it, the encoded ``LeaseOut`` body, whichever way the batch ran."""

    def __init__(self, store: Store | LeaseProcess, clock: Callable[[], float],
                 limiter: anyio.CapacityLimiter | None, most: int = 64, in_flight: int = 4) -> None:
        self.store, self.clock, self.limiter, self.most = store, clock, limiter, most
        self.on_loop, self.in_flight = getattr(store, "leases_on_loop", False), in_flight
        self._pending: list[tuple[LeaseRequest, asyncio.Future]] = []
        self._running: set[asyncio.Task] = set()

    async def lease(self, request: LeaseRequest) -> bytes:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._pending.append((request, done))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await done

    def _call(self, batch: list[tuple[LeaseRequest, asyncio.Future]]) -> list[bytes | LabelloopError]:
        return lease_bodies(self.store.lease_many([r for r, _ in batch], now=self.clock()))

    def _flush(self) -> None:
        if not self._pending or (self.on_loop and len(self._running) >= self.in_flight):
            return  # the call that ends next flushes what waits
        batch, self._pending = self._pending[:self.most], self._pending[self.most:]
        if self._pending:  # the rest after the loop's next look at the sockets
            asyncio.get_running_loop().call_soon(self._flush)
        if self.on_loop or self.limiter is not None:
            task = asyncio.ensure_future(self._awaited(batch) if self.on_loop else self._in_thread(batch))
            self._running.add(task)
            task.add_done_callback(self._ended)
            return
        try:
            got: list | Exception = self._call(batch)
        except Exception as e:  # noqa: BLE001 - the whole call failed: each of its requests gets the error
            got = e
        self._deliver(batch, got)

    def _ended(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        if self.on_loop:
            self._flush()

    async def _awaited(self, batch: list[tuple[LeaseRequest, asyncio.Future]]) -> None:
        try:
            got: list | Exception = await self.store.lease_bodies_async([r for r, _ in batch], now=self.clock())
        except Exception as e:  # noqa: BLE001 - as on the loop
            got = e
        self._deliver(batch, got)

    async def _in_thread(self, batch: list[tuple[LeaseRequest, asyncio.Future]]) -> None:
        try:
            got: list | Exception = await anyio.to_thread.run_sync(self._call, batch, limiter=self.limiter)
        except Exception as e:  # noqa: BLE001 - as on the loop
            got = e
        self._deliver(batch, got)

    @staticmethod
    def _deliver(batch: list[tuple[LeaseRequest, asyncio.Future]], got: list | Exception) -> None:
        for i, (_, done) in enumerate(batch):
            if done.done():  # its client went away
                continue
            one = got if isinstance(got, Exception) else got[i]
            if isinstance(one, Exception):
                done.set_exception(one)
            else:
                done.set_result(one)


@dataclass
class HotPath:
    """What the lease and submit routes need besides the services: the replica's project cache,
    the lease batcher, where a store call runs (:meth:`call`), and the embedded store's lease
    process when it has one."""

    projects: ProjectCache
    leases: LeaseBatcher
    process: LeaseProcess | None = None

    async def project(self, project_id: str, now: float) -> Project:
        """The project as the replica's cache has it; on a miss, read from the store, on a store
        thread when the store waits on the network (the event loop never waits on Redis)."""
        hit = self.projects.cached(project_id, now)
        return hit if hit is not None else await self.call(lambda: self.projects.get(project_id, now))

    async def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the event loop for an in-process store, on a store thread for one that
        waits on the network."""
        if self.leases.limiter is None:
            return fn()
        return await anyio.to_thread.run_sync(fn, limiter=self.leases.limiter)

    async def aclose(self) -> None:
        if self.process is not None:
            await self.process.aclose()

    @classmethod
    def for_services(cls, services: Services) -> HotPath:
        s, store = services.settings, services.store
        if s.lease_process and isinstance(store, SQLiteStore) and store.path != ":memory:":
            # the embedded store's lease batches on a second core, a batch waiting while one runs;
            # the other calls from threads, since the file's write lock may now be the child's
            # and waiting for it must not stop the event loop
            process = LeaseProcess(store.path)
            threads = anyio.CapacityLimiter(s.store_threads)
            return cls(ProjectCache(store, s.project_cache_s),
                       LeaseBatcher(process, services.clock, threads, in_flight=2), process)
        limiter = anyio.CapacityLimiter(s.store_threads) if store.waits_on_network else None
        # awaited batches of 4 leases, so that Redis works on some while the loop serves others,
        # and at most store_threads of them are in flight (bench.lease_load)
        leases = LeaseBatcher(store, services.clock, limiter, most=4 if store.leases_on_loop else 64,
                              in_flight=s.store_threads)
        return cls(ProjectCache(store, s.project_cache_s), leases)


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_now(request: Request) -> float:
    return request.app.state.services.clock()


def hot_path(request: Request) -> HotPath:
    hot = getattr(request.app.state, "hot_path", None)
    if hot is None:  # built on first use, on the event loop, once the services exist
        hot = request.app.state.hot_path = HotPath.for_services(request.app.state.services)
    return hot


async def get_hot_path(request: Request) -> HotPath:
    return hot_path(request)


ServicesDep = Annotated[Services, Depends(get_services)]
Now = Annotated[float, Depends(get_now)]
HotPathDep = Annotated[HotPath, Depends(get_hot_path)]
