"""Lease race: coordinator replicas on one store, many annotator clients, lease-expiry churn.

    python -m bench.lease_race --replicas 2 --clients 32 --items 20000 --json
    python -m bench.lease_race --store sqlite --json

With ``--store redis`` (the default) the replicas share one Redis; with ``sqlite`` they are
coordinator processes on one SQLite file.

Every client loops: lease a batch from a random replica, then either labels every item (submitting
to a random replica) or, with probability ``--abandon``, walks away so the lease expires and the
items come back. At the end every item must be labeled exactly once, no two live leases may have
held the same item at the same time, and pool + leased + done must equal the item count.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx

from tests.redis_server import PrivateRedis
from tests.server import Server


def run_race(*, replicas: int = 2, clients: int = 32, items: int = 20_000, batch: int = 50,
             ttl: float = 2.0, abandon: float = 0.1, seed: int = 0, deadline_s: float = 600,
             store: str = "redis") -> dict:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        redis_srv = None
        if store == "redis":
            redis_srv = PrivateRedis(Path(tmp) / "redis", appendonly=True, fsync="everysec").start()
        url = redis_srv.url if redis_srv else f"sqlite:///{Path(tmp) / 'race.db'}"
        servers = [Server(Path(tmp) / f"r{k}", store_url=url,
                          env={"LABELLOOP_SWEEP_INTERVAL_S": "0.5"}).start() for k in range(replicas)]
        try:
            with httpx.Client(base_url=servers[0].url, timeout=120) as c:
                r = c.post("/projects", json={"id": "race", "classes": ["a", "b"], "settings": {
                    "eval_fraction": 0.0, "lease_ttl_s": ttl, "retrain_every": 10**6}})
                r.raise_for_status()
                for start in range(0, items, 10_000):
                    chunk = [{"id": f"i{k}", "text": f"item {k}"} for k in range(start, min(items, start + 10_000))]
                    c.post("/projects/race/items", json={"items": chunk}).raise_for_status()
            leases: list[tuple[str, str, float, float, bool]] = []  # item, lease, start, end, labeled
            errors: list[str] = []
            lock = threading.Lock()
            stop_at = time.monotonic() + deadline_s

            def client(k: int) -> None:
                local = random.Random(rng.random())
                pool = [httpx.Client(base_url=s.url, timeout=60) for s in servers]
                try:
                    while time.monotonic() < stop_at:
                        r = local.choice(pool).post("/projects/race/leases",
                                                    json={"annotator": f"c{k}", "size": batch})
                        if r.status_code != 201:
                            errors.append(f"lease {r.status_code}: {r.text[:200]}")
                            return
                        body = r.json()
                        if not body["items"]:
                            if body["exhausted"]:
                                return
                            time.sleep(0.2)  # others hold the rest; their leases may expire
                            continue
                        start, end = body["expires_at"] - ttl, body["expires_at"]
                        ids = [it["id"] for it in body["items"]]
                        if local.random() < abandon:
                            with lock:
                                leases.extend((i, body["lease_id"], start, end, False) for i in ids)
                            continue
                        anns = [{"item_id": i, "lease_id": body["lease_id"], "label": local.randrange(2),
                                 "idempotency_key": f"{body['lease_id']}:{i}"} for i in ids]
                        r = local.choice(pool).post("/projects/race/annotations",
                                                    json={"annotator": f"c{k}", "annotations": anns})
                        labeled = r.status_code == 200
                        if r.status_code not in (200, 409):  # 409: our lease expired meanwhile
                            errors.append(f"submit {r.status_code}: {r.text[:200]}")
                        with lock:
                            leases.extend((i, body["lease_id"], start, end, labeled) for i in ids)
                finally:
                    for c in pool:
                        c.close()

            t0 = time.monotonic()
            threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - t0
            with httpx.Client(base_url=servers[-1].url, timeout=120) as c:
                anns = c.get("/projects/race/annotations").json()
                depth = c.get("/projects/race/stats").json()["queue"]
        finally:
            for s in servers:
                s.stop()
            if redis_srv is not None:
                redis_srv.kill()
    labels = [a["item_id"] for a in anns if a["kind"] == "label"]
    by_item: dict[str, list[tuple[float, float, bool]]] = defaultdict(list)
    for item, _lease, start, end, labeled in leases:
        by_item[item].append((start, end, labeled))
    overlaps = 0
    for spans in by_item.values():
        spans.sort()
        for (_s1, e1, done1), (s2, _e2, _d2) in itertools.pairwise(spans):
            if done1 or s2 < e1 - 1e-6:  # re-leased while a live lease held it, or after a label
                overlaps += 1
    return {
        "benchmark": "lease_race", "store": store, "replicas": replicas, "clients": clients, "items": items,
        "duplicates": len(labels) - len(set(labels)) + overlaps,
        "missing": items - len(set(labels)),
        "accounted": depth["open"] + depth["done"] == items and depth["leased"] == 0,
        "leases": len({lease for _i, lease, *_ in leases}),
        "abandoned_items": sum(not labeled for *_x, labeled in leases),
        "errors": errors[:5], "seconds": round(elapsed, 1),
        "labels_per_s": round(len(labels) / elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", choices=["redis", "sqlite"], default="redis")
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--ttl", type=float, default=2.0)
    p.add_argument("--abandon", type=float, default=0.1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = run_race(replicas=args.replicas, clients=args.clients, items=args.items,
                      batch=args.batch, ttl=args.ttl, abandon=args.abandon, store=args.store)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0 if result["duplicates"] == 0 and result["missing"] == 0 and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
