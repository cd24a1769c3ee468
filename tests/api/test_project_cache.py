"""The per-replica project cache the lease path reads settings through."""

from __future__ import annotations

import pytest

from api.service.annotate import ProjectCache, lease_batch
from api.service.projects import create_project, update_settings
from api.storage.records import Item
from api.storage.sqlite import SQLiteStore
from labeling.errors import NotFound


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "s.db")
    create_project(s, "p", ["a", "b"], settings={"eval_fraction": 0.0, "lease_ttl_s": 60}, now=0.0)
    s.add_items("p", [Item(f"i{k}", text="t") for k in range(20)], on_conflict="reject",
                rand_keys=[k / 20 for k in range(20)])
    yield s
    s.close()


def test_settings_are_reread_once_the_cached_copy_is_older_than_max_age(store):
    cache = ProjectCache(store, max_age_s=1.0)
    assert cache.get("p", now=10.0).settings.lease_ttl_s == 60
    update_settings(store, "p", {"lease_ttl_s": 30})
    assert cache.get("p", now=10.9).settings.lease_ttl_s == 60  # within max age: the old copy
    assert cache.get("p", now=11.0).settings.lease_ttl_s == 30  # re-read
    update_settings(store, "p", {"lease_ttl_s": 45})
    cache.forget("p")
    assert cache.get("p", now=11.1).settings.lease_ttl_s == 45
    assert cache.get("p", now=5.0).settings.lease_ttl_s == 45  # a clock that went back re-reads


def test_lease_uses_the_cached_settings_and_unknown_projects_are_not_cached(store):
    cache = ProjectCache(store, max_age_s=1.0)
    lease = lease_batch(store, "p", "ann", 3, now=100.0, rng=lambda: None, projects=cache)
    assert lease.expires_at == 160.0 and len(lease.items) == 3
    with pytest.raises(NotFound):
        cache.get("nope", now=100.0)
    create_project(store, "nope", ["a", "b"], now=0.0)
    assert cache.get("nope", now=100.1).id == "nope"


def test_zero_max_age_reads_the_store_every_time(store):
    cache = ProjectCache(store, max_age_s=0.0)
    cache.get("p", now=1.0)
    update_settings(store, "p", {"lease_ttl_s": 7})
    assert cache.get("p", now=1.0).settings.lease_ttl_s == 7


@pytest.mark.parametrize("on_threads", [False, True], ids=["in-process", "network-store"])
def test_a_cache_miss_waits_on_a_store_thread_when_the_store_waits_on_the_network(store, on_threads):
    import asyncio
    import threading

    import anyio

    from api.deps import HotPath, LeaseBatcher

    reads: list[str] = []

    class Watched:  # the real store; records which thread reads a project
        def get_project(self, project_id):
            reads.append(threading.current_thread().name)
            return store.get_project(project_id)

    limiter = anyio.CapacityLimiter(1) if on_threads else None
    hot = HotPath(ProjectCache(Watched(), max_age_s=1.0), LeaseBatcher(store, lambda: 0.0, limiter))

    async def main():
        loop_thread = threading.current_thread().name
        first = await hot.project("p", 10.0)
        again = await hot.project("p", 10.5)  # a hit: no read
        called_on = await hot.call(lambda: threading.current_thread().name)  # e.g. a submission
        return loop_thread, first, again, called_on

    loop_thread, first, again, called_on = asyncio.run(main())
    assert first.id == again.id == "p" and len(reads) == 1
    assert (reads[0] != loop_thread) is on_threads
    assert (called_on != loop_thread) is on_threads
