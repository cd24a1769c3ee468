"""The app's lifespan: what start-up leaves to the garbage collector."""

from __future__ import annotations

import asyncio
import gc

from api.app import create_app
from api.service.services import Services
from api.settings import Settings
from api.storage.sqlite import SQLiteStore
from workers.executor import InProcessExecutor


def test_start_up_freezes_the_heap_it_built(tmp_path):
    """Everything alive once the app has started stays out of the collector's full passes, which
    otherwise walk it while every request waits (bench.lease_load: lease p99 290 -> 100 ms)."""
    store = SQLiteStore(tmp_path / "s.db")
    services = Services(store, InProcessExecutor(), Settings(data_dir=tmp_path))
    app = create_app(services=services)
    gc.unfreeze()
    before = gc.get_freeze_count()

    async def started() -> int:
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count()

    try:
        frozen = asyncio.run(started())
    finally:
        gc.unfreeze()  # the rest of the suite collects as usual
        services.jobs.shutdown()
        store.close()
    assert before == 0
    assert frozen > 10_000  # the app, its services and the libraries they imported


def test_serving_raises_the_young_gc_threshold_and_puts_it_back(tmp_path):
    """While the app serves, young-generation passes wait for YOUNG_GC_THRESHOLD net new objects
    (at 700 they ran mid-lease every few leases); the process's own setting returns after."""
    from api.app import YOUNG_GC_THRESHOLD

    store = SQLiteStore(tmp_path / "s.db")
    services = Services(store, InProcessExecutor(), Settings(data_dir=tmp_path))
    app = create_app(services=services)
    outside = gc.get_threshold()

    async def serving() -> tuple[int, int, int]:
        async with app.router.lifespan_context(app):
            return gc.get_threshold()

    try:
        inside = asyncio.run(serving())
    finally:
        gc.unfreeze()
        services.jobs.shutdown()
        store.close()
    assert outside[0] < YOUNG_GC_THRESHOLD
    assert inside == (YOUNG_GC_THRESHOLD, *outside[1:])
    assert gc.get_threshold() == outside
