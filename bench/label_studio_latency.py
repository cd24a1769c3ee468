"""How fast the Label Studio backend routes answer, against Label Studio's timeouts.

A real ``labelloop serve`` (SQLite, tokens on) with a project of ``--tasks`` Label Studio tasks
(ingested through ``/predict``, then one round). Each call is timed over HTTP with basic auth, as
Label Studio sends it: ``/health`` (timeout 1 s), ``/setup`` (3 s, the recorded body),
``/predict`` for ``--batch`` tasks (100 s), ``/webhook`` ``ANNOTATION_CREATED`` for a new
annotation each time (1 s). Baseline in the same run: the server's own ``GET /health``.

    python -m bench.label_studio_latency --tasks 2000 --batch 100 --calls 50 --json
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from tests.label_studio.test_replay import recording
from tests.server import Server

TOKEN = "bench-token-for-label-studio"
LFS = """
from snorkel.labeling import labeling_function

@labeling_function()
def says_great(x):
    return 0 if "great" in x.text else -1

@labeling_function()
def says_awful(x):
    return 1 if "awful" in x.text else -1
"""
TIMEOUTS = {"health": 1.0, "setup": 3.0, "predict": 100.0, "webhook": 1.0}


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2)}


def _timed(fn, calls: int) -> list[float]:
    out = []
    for k in range(calls):
        t = time.perf_counter()
        r = fn(k)
        out.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise RuntimeError(f"{r.request.url}: {r.status_code} {r.text[:300]}")
    return out


def run(tasks: int, batch: int, calls: int) -> dict:
    rows = recording()
    setup = next(r["body"] for r in rows if r["path"] == "/setup")
    predict = next(r["body"] for r in rows if r["path"] == "/predict")
    created = next(r["body"] for r in rows if r["path"] == "/webhook"
                   and r["body"]["action"] == "ANNOTATION_CREATED")
    template = predict["tasks"][0]
    all_tasks = [{**copy.deepcopy(template), "id": 1000 + k,
                  "data": {"text": f"{'great' if k % 3 else 'awful'} review number {k}"}}
                 for k in range(tasks)]
    with tempfile.TemporaryDirectory() as tmp:
        tokens = Path(tmp) / "tokens.json"
        tokens.write_text(json.dumps([{"token": TOKEN, "name": "bench", "role": "admin"}]))
        srv = Server(Path(tmp) / "data", env={"LABELLOOP_TOKENS_FILE": str(tokens)}).start()
        try:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=srv.url, timeout=120, headers=auth) as c, \
                    httpx.Client(base_url=f"{srv.url}/label-studio/b", timeout=120,
                                 auth=("labelstudio", TOKEN)) as ls:
                c.post("/projects", json={"id": "b", "classes": ["Positive", "Negative"],
                                          "settings": {"retrain_every": 10**6}}).raise_for_status()
                c.post("/projects/b/lfs", json={"source": LFS}).raise_for_status()
                ls.post("/setup", json=setup).raise_for_status()
                for start in range(0, tasks, 1000):  # ingest (starts a round)
                    ls.post("/predict", json={**predict, "tasks": all_tasks[start:start + 1000]}
                            ).raise_for_status()
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    jobs = c.get("/projects/b/jobs").json()
                    if jobs and all(j["status"] not in ("queued", "running") for j in jobs):
                        break
                    time.sleep(0.2)
                c.post("/projects/b/jobs", json={"kind": "round"}).raise_for_status()  # all scored
                while any(j["status"] in ("queued", "running") for j in c.get("/projects/b/jobs").json()):
                    time.sleep(0.2)

                def hook(k: int) -> httpx.Response:
                    body = copy.deepcopy(created)
                    body["annotation"].update(id=10_000 + k, task=all_tasks[k]["id"])
                    body["task"] = all_tasks[k]
                    return ls.post("/webhook", json=body)

                times = {
                    "baseline_app_health": _timed(lambda k: c.get("/health"), calls),
                    "health": _timed(lambda k: ls.get("/health"), calls),
                    "setup": _timed(lambda k: ls.post("/setup", json=setup), calls),
                    "predict": _timed(lambda k: ls.post("/predict", json={
                        **predict, "tasks": all_tasks[(k * batch) % tasks:][:batch]}), calls),
                    "webhook": _timed(hook, min(calls, tasks)),
                }
                scored = ls.post("/predict", json={**predict, "tasks": all_tasks[:batch]}).json()
        finally:
            srv.stop()
    out = {name: _stats(t) for name, t in times.items()}
    for name, limit in TIMEOUTS.items():
        out[name]["label_studio_timeout_ms"] = limit * 1000
        out[name]["within_timeout"] = out[name]["max_ms"] < limit * 1000
    return {"tasks": tasks, "batch": batch, "calls": calls,
            "predict_scored": sum("result" in p for p in scored["results"]), **out}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--json", action="store_true", help="one JSON line")
    args = p.parse_args(argv)
    result = run(args.tasks, args.batch, args.calls)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
