"""Jobs: cancel from another replica (two JobRunners on one real store) and from the CLI against a
real ``labelloop serve`` process, with the CLI's job listing and progress-bar watch."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import httpx
import pytest

from api.service.jobs import JobRunner, request_cancel
from api.service.projects import create_project
from labeling.errors import Conflict
from tests.server import ROOT, Server


@pytest.fixture
def store(either_store):
    return either_store


def test_a_job_is_cancelled_from_another_replica(store):
    create_project(store, "p", ["a", "b"], now=0.0)
    here, there = JobRunner(store, lock_ttl_s=3.0), JobRunner(store, lock_ttl_s=3.0)
    started, steps = threading.Event(), []

    def long_job(ctx):
        for i in range(2000):  # 20 s unless cancelled
            ctx.progress(i, 2000, "working")
            steps.append(i)
            started.set()
            time.sleep(0.01)
        return {"finished": True}

    try:
        job = here.submit("p", "round", long_job)
        assert started.wait(10)
        asked = there.cancel(job.id)  # this runner does not run it
        assert asked.cancel_requested and asked.status in ("queued", "running")
        final = here.wait(job.id, timeout=20)
        assert final.status == "cancelled", final
        assert len(steps) < 2000 and final.finished_at is not None
        with pytest.raises(Conflict, match="already ended"):
            there.cancel(job.id)
        with pytest.raises(Conflict, match="already ended"):
            request_cancel(store, job.id)
        # the kind is free again for a new job
        again = there.submit("p", "round", lambda ctx: {"ok": 1})
        assert there.wait(again.id, timeout=20).status == "succeeded"
    finally:
        here.shutdown()
        there.shutdown()


SLOW_LFS = '''
import time
from snorkel.labeling import labeling_function

@labeling_function()
def slow_great(x):
    time.sleep(0.0005)
    return 1 if "great" in x.text else -1

@labeling_function()
def says_awful(x):
    return 0 if "awful" in x.text else -1
'''


def cli(*args: str, data_dir) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.cli", "jobs", *args, "--data-dir", str(data_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_cli_lists_watches_and_cancels_a_server_job(tmp_path):
    data = tmp_path / "data"
    srv = Server(data).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            assert c.post("/projects", json={"id": "p", "classes": ["neg", "pos"],
                                             "settings": {"eval_fraction": 0.0}}).status_code == 201
            words = ["great", "awful", "fine"]
            rows = [{"id": f"i{k}", "text": f"{words[k % 3]} item {k}"} for k in range(60_000)]
            for start in range(0, len(rows), 10_000):
                r = c.post("/projects/p/items", json={"items": rows[start : start + 10_000]})
                assert r.status_code == 201, r.text
            fast = SLOW_LFS.replace("    time.sleep(0.0005)\n", "")
            assert c.post("/projects/p/lfs", json={"source": fast}).status_code == 201
            # a quick job first: watch follows it to the end with a progress bar, exit 0
            first = c.post("/projects/p/jobs", json={"kind": "round"}).json()
            watched = cli("watch", first["id"], "--interval", "0.2", data_dir=data)
            done = json.loads(watched.stdout.strip().splitlines()[-1])
            assert watched.returncode == 0 and done["status"] == "succeeded", watched.stderr
            assert f"round {first['id']}" in watched.stderr  # the bar's label
            # an LF changed: the next round re-applies it to 60k rows (about 30 s)
            assert c.post("/projects/p/lfs", json={"source": SLOW_LFS}).status_code == 201
            job = c.post("/projects/p/jobs", json={"kind": "round"}).json()
            deadline = time.monotonic() + 30
            while not ((got := c.get(f"/jobs/{job['id']}").json())["status"] == "running"
                       and got["total"] > 0):  # cancel mid-run, once it has reported progress
                assert time.monotonic() < deadline
                time.sleep(0.1)
            asked = cli("cancel", job["id"], data_dir=data)  # another process, as another replica
            assert asked.returncode == 0, asked.stderr
            assert json.loads(asked.stdout)["cancel_requested"] is True
            watched = cli("watch", job["id"], "--interval", "0.2", data_dir=data)
            final = json.loads(watched.stdout.strip().splitlines()[-1])
            assert watched.returncode == 1 and final["status"] == "cancelled", watched.stdout
            assert final["done"] < final["total"]
            listed = cli("list", "--project", "p", data_dir=data)
            jobs = [json.loads(line) for line in listed.stdout.splitlines()]
            assert [(j["id"], j["status"]) for j in jobs] == [(first["id"], "succeeded"),
                                                                (job["id"], "cancelled")]
            again = cli("cancel", job["id"], data_dir=data)
            assert again.returncode != 0 and "already ended" in again.stderr
            shown = cli("show", "job-nope", data_dir=data)
            assert shown.returncode != 0 and "job-nope" in shown.stderr
    finally:
        srv.stop()
