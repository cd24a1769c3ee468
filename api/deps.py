"""Dependency aliases shared by the routers, and the lease batcher."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

import anyio
from fastapi import Depends, Request

from api.service.annotate import lease_answers
from api.service.services import Services

__all__ = ["Batcher", "Now", "ServicesDep", "lease_batcher"]

A = TypeVar("A")
R = TypeVar("R")


class Batcher(Generic[A, R]):
    """Requests that arrive while a batch runs wait for the next one: ``run(requests)`` on a
    thread, its answers (or errors) in order. The event loop goes on serving HTTP meanwhile, and
    one thread hop serves many requests; one batch runs at a time."""

    def __init__(self, run: Callable[[list[A]], list[R | Exception]]) -> None:
        self.run = run
        self._pending: list[tuple[A, asyncio.Future[R]]] = []
        self._running = False

    async def submit(self, request: A) -> R:
        """The answer to ``request``, from the next batch."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((request, done))
        if not self._running:
            self._running = True
            asyncio.ensure_future(self._drain())
        return await done

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    got = await anyio.to_thread.run_sync(self.run, [r for r, _ in batch])
                except Exception as e:  # noqa: BLE001 - the batch failed: each request fails
                    got = [e] * len(batch)
                for (_, done), one in zip(batch, got, strict=True):
                    if done.done():  # its client went away
                        continue
                    if isinstance(one, Exception):
                        done.set_exception(one)
                    else:
                        done.set_result(one)
        finally:
            self._running = False


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_now(request: Request) -> float:
    return request.app.state.services.clock()


def lease_batcher(request: Request) -> Batcher[tuple[str, str, int | None], dict[str, Any]]:
    """The app's lease batcher (:func:`api.service.annotate.lease_answers` at the clock read
    when a batch starts), made on first use, once the services exist."""
    state = request.app.state
    batcher = getattr(state, "leases", None)
    if batcher is None:
        s, renderer = state.services, state.renderer
        batcher = state.leases = Batcher(lambda asked: lease_answers(
            s.store, asked, now=s.clock(), rng=s.rng, renderer=renderer))
    return batcher


ServicesDep = Annotated[Services, Depends(get_services)]
Now = Annotated[float, Depends(get_now)]
