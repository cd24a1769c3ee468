"""Dependency aliases shared by the routers, and the lease batcher."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from api.service.services import Services
from api.storage.records import Lease
from labeling.errors import LabelloopError

__all__ = ["LeaseBatcher", "Now", "ServicesDep"]


class LeaseBatcher:
    """Leases that reach the route in one turn of the event loop run together on the next, in
    one :meth:`~api.storage.base.Store.batch` (one SQLite commit for all: bench.lease_load), at
    the clock read then. Each is answered once the batch has committed."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._pending: list[tuple[Callable[[float], Lease], asyncio.Future]] = []

    async def lease(self, take: Callable[[float], Lease]) -> Lease:
        """``take(now)`` in the next batch."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._pending.append((take, done))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await done

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        got: list[Lease | Exception] = []
        try:
            with self.services.store.batch():
                now = self.services.clock()
                for take, _ in batch:
                    try:
                        got.append(take(now))
                    except LabelloopError as e:  # refused alone: nothing of it was written
                        got.append(e)
        except Exception as e:  # noqa: BLE001 - the commit failed: every lease of it fails
            got = [e] * len(batch)
        for (_, done), one in zip(batch, got, strict=True):
            if done.done():  # its client went away
                continue
            if isinstance(one, Exception):
                done.set_exception(one)
            else:
                done.set_result(one)


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_now(request: Request) -> float:
    return request.app.state.services.clock()


async def get_leases(request: Request) -> LeaseBatcher:
    batcher = getattr(request.app.state, "leases", None)
    if batcher is None:  # one per app, made on the event loop once the services exist
        batcher = request.app.state.leases = LeaseBatcher(request.app.state.services)
    return batcher


ServicesDep = Annotated[Services, Depends(get_services)]
Now = Annotated[float, Depends(get_now)]
LeasesDep = Annotated[LeaseBatcher, Depends(get_leases)]
