"""Dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Request

from api.service.annotate import ProjectCache
from api.service.services import Services

T = TypeVar("T")


@dataclass
class HotPath:
    """What the lease route needs besides the services: the replica's project cache, and a small
    thread limiter when the store waits on the network (``None``: call on the event loop)."""

    projects: ProjectCache
    limiter: anyio.CapacityLimiter | None

    @classmethod
    def for_services(cls, services: Services) -> HotPath:
        s, store = services.settings, services.store
        limiter = anyio.CapacityLimiter(s.store_threads) if store.waits_on_network else None
        return cls(ProjectCache(store, s.project_cache_s), limiter)

    async def run(self, call: Callable[[], T]) -> T:
        if self.limiter is None:
            return call()
        return await anyio.to_thread.run_sync(call, limiter=self.limiter)


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_now(request: Request) -> float:
    return request.app.state.services.clock()


async def get_hot_path(request: Request) -> HotPath:
    hot = getattr(request.app.state, "hot_path", None)
    if hot is None:  # built on first use, on the event loop, once the services exist
        hot = request.app.state.hot_path = HotPath.for_services(request.app.state.services)
    return hot


ServicesDep = Annotated[Services, Depends(get_services)]
Now = Annotated[float, Depends(get_now)]
HotPathDep = Annotated[HotPath, Depends(get_hot_path)]
