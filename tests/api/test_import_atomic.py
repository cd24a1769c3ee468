"""An import stores all of its rows or none: kill -9 of the importing process midway through a
million-row upload leaves the store as it was, on SQLite (one transaction) and on Redis (one
MULTI/EXEC). Real processes, a real Redis server of the test's own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import pytest

from api.storage import open_store
from api.storage.records import Item
from tests.redis_server import PrivateRedis
from tests.server import ROOT
from tests.store_contract import T0, make_project

MILLION = 1_000_000
_CHILD = """
import sys
import numpy as np
from api.storage import open_store
from api.storage.records import Item
store = open_store(sys.argv[1])
n = int(sys.argv[2])
items = [Item(f"new{k}") for k in range(n)]
print("adding", flush=True)
store.add_items("p1", items, on_conflict="reject", rand_keys=np.arange(n, dtype=float))
print("done", flush=True)
"""


def _import_killed_midway(url: str, midway: Callable[[], bool]) -> None:
    """Start a process that imports a million items into ``url``'s project p1, kill -9 it once
    ``midway()`` says the upload is under way, and check it never finished."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, url, str(MILLION)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "adding"
        deadline = time.monotonic() + 120
        while not midway():
            assert child.poll() is None, "the import ended before it could be killed midway"
            assert time.monotonic() < deadline, "the import never got under way"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        assert "done" not in child.stdout.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _as_before(store) -> None:
    assert store.count_items("p1") == 10
    assert [len(c) for c in store.iter_items("p1")] == [10]
    depth = store.queue_depth("p1", now=T0)
    assert (depth["total"], depth["open"]) == (10, 10)
    lease = store.lease("p1", "a", 20, n_eval=0, now=T0, ttl=60, lease_id="L")
    assert lease.item_ids == tuple(f"i{k}" for k in range(10))
    store.add_items("p1", [Item("new0")], on_conflict="reject", rand_keys=np.zeros(1))
    assert store.get_item("p1", "new0").seq == 10


def test_sqlite_import_killed_midway_leaves_nothing(tmp_path):
    path = tmp_path / "store.db"
    store = open_store(f"sqlite:///{path}")
    make_project(store)
    store.close()
    wal = tmp_path / "store.db-wal"
    _import_killed_midway(f"sqlite:///{path}", lambda: wal.exists() and wal.stat().st_size > 8 << 20)
    store = open_store(f"sqlite:///{path}")
    try:
        _as_before(store)
    finally:
        store.close()


@pytest.fixture
def server(tmp_path):
    srv = PrivateRedis(tmp_path / "redis", appendonly=True, fsync="always").start()
    yield srv
    srv.kill()


def test_redis_import_killed_midway_leaves_nothing(server):
    store = open_store(server.url)
    make_project(store)

    def queued() -> bool:  # the importer's MULTI has commands queued, not yet executed
        return any(int(c.get("multi", -1)) > 20 for c in store.r.client_list())

    try:
        _import_killed_midway(server.url, queued)
        _as_before(store)
        server.kill()  # and the AOF, replayed, holds none of it either
        server.start()
        assert store.count_items("p1") == 11 and store.r.zcard(store.k.p("p1", "pool")) == 1
    finally:
        store.close()
