"""The store's own cost of a lease, in process, without HTTP.

    python -m bench.store_lease_cost --json

A 10k-item project, leases of 10 items to a new annotator each, 0.5 ms apart with a 0.1 s TTL, so
every lease also ends the expired holds of earlier ones (the churn of ``bench.lease_load``). Leases
go through the lease route's service call (``annotate.lease_answers``: the project read once a
batch, the answer built), without HTTP. Reported per lease: for SQLite the CPU time (the
least of 8 runs of 500 leases, one transaction each, and in groups of 8 in ``Store.lease_many`` as the
route's batcher makes them), the statements SQLite ran (its trace callback, BEGIN and COMMIT
included), the calls that ran them (an ``executemany`` is one call) and the pages a lease writes
to the WAL; for Redis the client's CPU time, the commands the server ran (``INFO commandstats``,
the calls inside the lease script included) and the script's server time. The Redis server is
REDIS_URL (default redis://127.0.0.1:6379/0), in a namespace deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid

import numpy as np
import redis

from api.service import annotate
from api.service.projects import create_project
from api.service.render import LeaseRenderer
from api.storage import open_store
from api.storage.records import Item
from tests.redis_server import REDIS_URL


def _project(store) -> None:
    create_project(store, "load", ["a", "b"], now=0.0, settings={
        "eval_fraction": 0.0, "lease_ttl_s": 0.1, "retrain_every": 10**6})
    rng = np.random.default_rng(0)
    store.add_items("load", [Item(f"i{k}", text=f"item {k}") for k in range(10_000)],
                    on_conflict="reject", rand_keys=rng.random(10_000))


def _leaser(store, batch: int = 1, state: dict | None = None):
    """A function leasing ``n`` times the way the route does (``batch`` leases in a
    ``Store.lease_many``), the clock moving on (``state``: shared with another leaser)."""
    state = {"now": 1.0, "k": 0} if state is None else state
    rng = np.random.default_rng(0)

    renderer = LeaseRenderer()

    def run(n: int) -> None:
        for _ in range(0, n, batch):
            asked = []
            for _ in range(batch):
                state["k"] += 1
                asked.append(("load", f"a{state['k']}", 10))
            state["now"] += 0.0005 * batch
            annotate.lease_answers(store, asked, now=state["now"], rng=rng, renderer=renderer)

    return run


def _cpu_us(run, leases: int = 500, repeats: int = 8) -> float:
    best = []
    for _ in range(repeats):
        t = time.process_time()
        run(leases)
        best.append((time.process_time() - t) / leases * 1e6)
    return round(min(best), 1)


def sqlite() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/s.db")
        _project(store)
        state: dict = {"now": 1.0, "k": 0}
        run, batched = _leaser(store, 1, state), _leaser(store, 8, state)
        run(500)
        out = {"cpu_us_per_lease": _cpu_us(run), "cpu_us_per_lease_batched": _cpu_us(batched)}
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        store._db, db = _Counted(store._db), store._db
        run(500)
        store._db, calls = db, store._db.calls
        db.set_trace_callback(None)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # then the pages 500 leases write
        db.execute("PRAGMA wal_autocheckpoint=0")
        run(500)
        (page,) = db.execute("PRAGMA page_size").fetchone()
        pages = os.path.getsize(f"{tmp}/s.db-wal") / (page + 24) / 500
        store.close()
    return {**out, "statements_per_lease": round(len(statements) / 500, 1),
            "calls_per_lease": round(calls / 500, 1), "wal_pages_per_lease": round(pages, 1)}


class _Counted:
    """A connection that counts its ``execute`` and ``executemany`` calls."""

    def __init__(self, db) -> None:
        self.db, self.calls = db, 0

    def execute(self, *args):
        self.calls += 1
        return self.db.execute(*args)

    def executemany(self, *args):
        self.calls += 1
        return self.db.executemany(*args)

    def __getattr__(self, name: str):
        return getattr(self.db, name)


def redis_store() -> dict:
    from api.storage.redis import RedisStore

    ns = f"bench-{uuid.uuid4().hex[:8]}"
    store, server = RedisStore(REDIS_URL, namespace=ns), redis.Redis.from_url(REDIS_URL)
    try:
        _project(store)
        run = _leaser(store)
        run(500)
        before = server.info("commandstats")
        cpu = _cpu_us(run, repeats=2)
        after = server.info("commandstats")
        n = 2 * 500  # the leases _cpu_us ran; each also read the project (one HGET)
        calls = sum(v["calls"] - before.get(k, {"calls": 0})["calls"] for k, v in after.items()
                    if k not in ("cmdstat_info", "cmdstat_evalsha"))
        script = after["cmdstat_evalsha"]["usec"] - before["cmdstat_evalsha"]["usec"]
        return {"client_cpu_us_per_lease": cpu, "server_calls_per_lease": round(calls / n, 1),
                "server_script_us_per_lease": round(script / n, 1)}
    finally:
        for key in server.scan_iter(f"{ns}:*", count=1000):
            server.delete(key)
        store.close()
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = {"benchmark": "store_lease_cost", "sqlite": sqlite(), "redis": redis_store()}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
