"""Lease endpoint under load, against a hello-world endpoint on the same server stack.

    python -m bench.lease_load --store sqlite --json
    python -m bench.lease_load --store redis --json

Needs ``wrk`` (Debian package ``wrk``). A 1M-item pool and a 10k-item pool each have their own
store and uvicorn process, both up for the whole run, serving the labelloop app plus a
``/bench/hello`` route (a coroutine, as FastAPI's own hello world, first in the route table, so
that it pays for no route matching that a one-route app would not); wrk drives 50 connections at
hello then lease on one, then the other, for ``--rounds`` rounds (5 by default; throughput: mean
over rounds; p99: median of the rounds' p99s), so that a slow spell of the shared machine weighs
on every figure of a ratio alike. Leases ask for 10 items with a 0.1 s TTL (each request is a new
annotator), so expired holds keep coming back and the pool never runs dry
(``items_per_lease_1m`` and ``..._10k``: what they handed out,
counted in each response). Fields: ``throughput_vs_hello``, ``p99_ms`` (1M pool),
``p99_1m_vs_10k``; and CPU time per request, which the machine's other load moves far less than
requests per second: ``server_cpu_us_per_lease`` and ``..._per_hello`` (the uvicorn process),
``server_cpu_vs_hello`` (hello's over the lease's: the throughput ratio the server alone would
allow), ``store_cpu_us_per_lease`` (the Redis server; zero for SQLite, which runs in the server process), and ``redis_rewrite_cpu_us_per_lease`` (AOF rewrites, in a forked
child: the fill's are finished before the clock starts).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import redis

from tests.redis_server import PrivateRedis
from tests.server import ROOT, free_port

# Short enough that expired holds refill even the 10k pool at any rate this stack reaches (10 items
# a lease at 9,000 leases/s hold 9,000 items): with 0.5 s, a fast run left most leases of the 10k
# pool empty, cheaper than the 1M pool's full ones, and the two pools' p99s compared unequal work.
TTL_S = 0.1

LUA = r"""
threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) counter = 0; items = 0; leases = 0 end
request = function()
  counter = counter + 1
  local body = '{"annotator":"a' .. counter .. '-' .. math.random(1, 1000000000) .. '","size":10}'
  return wrk.format("POST", "/projects/load/leases", {["content-type"] = "application/json"}, body)
end
response = function(status, headers, body)
  leases = leases + 1
  for _ in string.gmatch(body, '"reasons"') do items = items + 1 end
end
done = function(summary, latency, requests)
  local items, leases = 0, 0
  for _, t in ipairs(threads) do items = items + t:get("items"); leases = leases + t:get("leases") end
  io.write(string.format("items per lease: %.3f\n", items / math.max(leases, 1)))
end
"""


def fill(store_url: str, n: int) -> None:
    from api.service.projects import create_project
    from api.storage import open_store
    from api.storage.records import Item

    store = open_store(store_url)
    create_project(store, "load", ["a", "b"], settings={"eval_fraction": 0.0, "lease_ttl_s": TTL_S,
                                                        "retrain_every": 10**6}, now=0.0)
    rng = np.random.default_rng(0)
    for start in range(0, n, 20_000):
        items = [Item(f"i{k}", text=f"item {k}") for k in range(start, min(n, start + 20_000))]
        store.add_items("load", items, on_conflict="reject", rand_keys=rng.random(len(items)))
    store.close()


def serve(store_url: str, port: int) -> None:
    """Run the app with the hello route (used as a subprocess by the benchmark)."""
    import uvicorn

    from api.app import SERVER_OPTIONS, create_app
    from api.settings import Settings

    app = create_app(Settings(store_url=store_url, port=port, sweep_interval_s=3600))

    @app.get("/bench/hello")
    async def hello() -> dict:  # FastAPI's own hello world: a coroutine, no thread hop
        return {"hello": "world"}

    app.router.routes.insert(0, app.router.routes.pop())  # matched first, as in a one-route app

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                **SERVER_OPTIONS)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process ``pid`` has used, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def store_cpu_seconds(store_url: str, server_pid: int) -> tuple[float, float]:
    """CPU time the store has used outside the server process: the Redis server and its children
    (AOF rewrites); none for SQLite."""
    if not store_url.startswith("redis"):
        return 0.0, 0.0
    client = redis.Redis.from_url(store_url)
    try:
        cpu = client.info("cpu")
    finally:
        client.close()
    return (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
            float(cpu["used_cpu_user_children"]) + float(cpu["used_cpu_sys_children"]))


def compact_aof(store_url: str) -> None:
    """Rewrite a Redis server's AOF after the fill and wait for it to finish. The fill's own
    growth sets off rewrites (AOF twice its last rewritten size), and one that started or came
    due during the measured runs would take a core for seconds to copy the 1M-item pool: a
    cost of the fill, which a steady state pays once per doubling of the file."""
    client = redis.Redis.from_url(store_url)
    try:
        if client.config_get("appendonly").get("appendonly") != "yes":
            return
        try:
            client.bgrewriteaof()
        except redis.ResponseError:  # one is running already: it is waited for below
            pass
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            info = client.info("persistence")
            if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
                return
            time.sleep(0.2)
        raise RuntimeError("the AOF rewrite after the fill did not finish in 600 s")
    finally:
        client.close()


def wrk(url: str, seconds: int, script: Path | None, server_pid: int, store_url: str) -> dict:
    """One wrk run; besides requests per second and latency, the CPU time the server process
    (and a Redis server) used per request: a figure that the machine's other load moves far less
    than requests per second. (A child that exits mid-run, as a lease process between pools, is
    not counted: the runs of one pool keep the same one.)"""
    cmd = ["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    cpu0, (store0, child0) = cpu_seconds(server_pid), store_cpu_seconds(store_url, server_pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu1, (store1, child1) = cpu_seconds(server_pid), store_cpu_seconds(store_url, server_pid)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    n = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    items = re.search(r"items per lease: ([\d.]+)", out)
    per = 1e6 / max(n, 1)
    return {"rps": rps, "p99_ms": p99, "non_2xx": int(errors.group(1)) if errors else 0,
            "items_per_lease": float(items.group(1)) if items else None,
            "server_cpu_us": (cpu1 - cpu0) * per, "store_cpu_us": (store1 - store0) * per,
            "store_child_cpu_us": (child1 - child0) * per}


@contextlib.contextmanager
def server(store_url: str, n: int, script: Path) -> Iterator[dict[str, Callable[[int], dict]]]:
    """Fill a store with ``n`` items and serve it: its hello and lease runs, warmed up."""
    fill(store_url, n)
    if store_url.startswith("redis"):
        compact_aof(store_url)
    os.sync()  # the fill's writes reach the disk before the clock starts
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.lease_load", "--serve", store_url,
                             "--port", str(port)], cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        runs = {"hello": functools.partial(wrk, base + "/bench/hello", script=None, server_pid=proc.pid,
                                           store_url=store_url),
                "lease": functools.partial(wrk, base + "/projects/load/leases", script=script,
                                           server_pid=proc.pid, store_url=store_url)}
        runs["hello"](2), runs["lease"](2)  # warm-up, and the lease steady state: holds expiring
        yield runs
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def summary(runs: list[tuple[dict, dict]]) -> dict:
    hello, lease = [h for h, _ in runs], [le for _, le in runs]
    return {
        "hello_rps": statistics.fmean(r["rps"] for r in hello),
        "lease_rps": statistics.fmean(r["rps"] for r in lease),
        "hello_p99_ms": statistics.median(r["p99_ms"] for r in hello),
        "lease_p99_ms": statistics.median(r["p99_ms"] for r in lease),
        "hello_server_cpu_us": statistics.median(r["server_cpu_us"] for r in hello),
        "lease_server_cpu_us": statistics.median(r["server_cpu_us"] for r in lease),
        "lease_store_cpu_us": statistics.median(r["store_cpu_us"] for r in lease),
        "lease_store_child_cpu_us": statistics.fmean(r["store_child_cpu_us"] for r in lease),
        "items_per_lease": statistics.fmean(r["items_per_lease"] for r in lease),
        "non_2xx": sum(r["non_2xx"] for r in lease), "rounds": [{"hello": h, "lease": le} for h, le in runs],
    }


def measure(store_urls: dict[str, str], sizes: dict[str, int], seconds: int, rounds: int,
            tmp: Path) -> dict:
    """Both pools served at once, each from its own store and server, and ``rounds`` rounds of
    hello and lease on each in turn, ``seconds`` each: a slow spell of the machine weighs on
    hello and lease, and on the large and the small pool, alike (the idle server uses no CPU)."""
    script = tmp / "lease.lua"
    script.write_text(LUA)
    with contextlib.ExitStack() as stack:
        servers = {label: stack.enter_context(server(url, sizes[label], script))
                   for label, url in store_urls.items()}
        runs: dict[str, list] = {label: [] for label in servers}
        for _ in range(rounds):
            for label, run in servers.items():
                runs[label].append((run["hello"](seconds), run["lease"](seconds)))
    return {label: summary(r) for label, r in runs.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", choices=["sqlite", "redis"], default="sqlite")
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--small", type=int, default=10_000)
    p.add_argument("--seconds", type=int, default=5, help="per endpoint and round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.add_argument("--serve", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("bench.lease_load needs wrk: apt-get install wrk")
    sizes = {"1m": args.items, "10k": args.small}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        tmp = Path(tmp)
        if args.store == "sqlite":
            urls = {label: f"sqlite:///{tmp / f'{label}.db'}" for label in sizes}
        else:
            urls = {}
            for label in sizes:
                redis_server = PrivateRedis(tmp / f"redis-{label}", appendonly=True, fsync="everysec").start()
                stack.callback(redis_server.kill)
                urls[label] = redis_server.url
        results = measure(urls, sizes, args.seconds, args.rounds, tmp)
    big, small = results["1m"], results["10k"]
    out = {
        "benchmark": "lease_load", "store": args.store, "items": args.items, "connections": 50,
        "throughput_vs_hello": round(big["lease_rps"] / big["hello_rps"], 3),
        "p99_ms": big["lease_p99_ms"],
        "p99_1m_vs_10k": round(big["lease_p99_ms"] / small["lease_p99_ms"], 3),
        "lease_rps": round(big["lease_rps"], 1), "hello_rps": round(big["hello_rps"], 1),
        "hello_p99_ms": big["hello_p99_ms"],
        # CPU per request (1M pool, median over rounds): the server process, and the store's own
        # process (the Redis server, or the SQLite store's lease process)
        "server_cpu_us_per_lease": round(big["lease_server_cpu_us"], 1),
        "server_cpu_us_per_hello": round(big["hello_server_cpu_us"], 1),
        "store_cpu_us_per_lease": round(big["lease_store_cpu_us"], 1),
        # AOF rewrites in the measured lease runs (a forked child: not in the figure above)
        "redis_rewrite_cpu_us_per_lease": round(big["lease_store_child_cpu_us"], 1),
        "server_cpu_vs_hello": round(big["hello_server_cpu_us"] / big["lease_server_cpu_us"], 3),
        # items a lease handed out (10 asked): the two pools' p99s compare equal work when both are 10
        "items_per_lease_1m": round(big["items_per_lease"], 3),
        "items_per_lease_10k": round(small["items_per_lease"], 3),
        "non_2xx": big["non_2xx"] + small["non_2xx"], "raw": results,
    }
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
