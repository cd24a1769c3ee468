"""Dependency aliases shared by the routers, and the lease batcher."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request

from api.service.services import Services
from labeling.errors import LabelloopError

__all__ = ["LeaseBatcher", "Now", "ServicesDep", "lease_batcher"]

T = TypeVar("T")


class LeaseBatcher:
    """Leases that reach the route while a batch runs wait for the next one, which runs them on
    a thread in one :meth:`~api.storage.base.Store.batch` (one SQLite commit for all), at the
    clock read then: the event loop goes on serving HTTP meanwhile, and one thread hop and one
    commit serve many leases (bench.lease_load). Each is answered once its batch has committed;
    one batch runs at a time."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._pending: list[tuple[Callable[[float], Any], asyncio.Future]] = []
        self._running = False

    async def run(self, call: Callable[[float], T]) -> T:
        """``call(now)`` in the next batch."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((call, done))
        if not self._running:
            self._running = True
            asyncio.ensure_future(self._drain())
        return await done

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                got = await anyio.to_thread.run_sync(self._run, [call for call, _ in batch])
                for (_, done), one in zip(batch, got, strict=True):
                    if done.done():  # its client went away
                        continue
                    if isinstance(one, Exception):
                        done.set_exception(one)
                    else:
                        done.set_result(one)
        finally:
            self._running = False

    def _run(self, calls: list[Callable[[float], Any]]) -> list[Any]:
        got: list[Any] = []
        try:
            with self.services.store.batch():
                now = self.services.clock()
                for call in calls:
                    try:
                        got.append(call(now))
                    except LabelloopError as e:  # refused alone: nothing of it was written
                        got.append(e)
        except Exception as e:  # noqa: BLE001 - the commit failed: every lease of it fails
            return [e] * len(calls)
        return got


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_now(request: Request) -> float:
    return request.app.state.services.clock()


def lease_batcher(request: Request) -> LeaseBatcher:
    """The app's batcher, made on first use (on the event loop, once the services exist)."""
    batcher = getattr(request.app.state, "leases", None)
    if batcher is None:
        batcher = request.app.state.leases = LeaseBatcher(request.app.state.services)
    return batcher


ServicesDep = Annotated[Services, Depends(get_services)]
Now = Annotated[float, Depends(get_now)]
