"""`labelloop serve` runs its jobs on Ray (a local instance it starts), with progress over HTTP."""

from __future__ import annotations

import time

import httpx

from tests.server import ROOT, Server

TUTORIAL = (ROOT / "demo" / "spam_lfs.py").read_text()


def test_round_job_runs_on_ray_with_progress(tmp_path):
    srv = Server(tmp_path / "data", env={"LABELLOOP_EXECUTOR": "ray", "LABELLOOP_RAY_NUM_CPUS": "2"})
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            c.post("/projects", json={"id": "p", "classes": ["ham", "spam"]}).raise_for_status()
            texts = ["check out my channel http://x", "great song", "subscribe please", "lol"]
            items = [{"id": f"i{k}", "text": f"{texts[k % 4]} {k}"} for k in range(12_000)]
            c.post("/projects/p/items", json={"items": items}).raise_for_status()
            c.post("/projects/p/lfs", json={"source": TUTORIAL}).raise_for_status()
            job = c.post("/projects/p/jobs", json={"kind": "round"}).json()
            seen = []
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                job = c.get(f"/jobs/{job['id']}").json()
                seen.append((job["status"], job["done"], job["total"], job["message"]))
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.05)
            assert job["status"] == "succeeded", job
            assert job["result"]["executor"] == "ray"
            running = [(d, t) for status, d, t, _m in seen if status == "running" and t]
            assert running and all(t == 12_000 + 3 for _d, t in running)  # rows, then 3 steps
            assert any(0 < d < t for d, t in running), seen[:20]  # progress visible mid-job
            done = [d for d, _t in running]
            assert done == sorted(done)  # never goes backwards
        analysis = httpx.get(srv.url + "/projects/p/lfs/analysis", timeout=60).json()["lfs"]
        assert {row["name"] for row in analysis} >= {"keyword_my", "short_comment"}
    finally:
        srv.stop()
