"""Registered code runs in sandbox workers: no secrets reach it, and limits fault it, not the server.

Against a real ``labelloop serve`` process with a tokens file and an admin token in its
environment, and real worker processes.
"""

from __future__ import annotations

import json
import os
import threading
import time

import httpx
import pandas as pd
import pytest

from labeling.errors import UserCodeFault
from tests.server import Server
from workers.executor import InProcessExecutor
from workers.limits import Limits
from workers.sandbox import Sandbox, scrubbed_env

ADMIN = "admin-token-0123456789abcdef"
ENGINEER = "engineer-token-0123456789abcd"
TOKENS_SECRET = "annotator-token-fedcba9876543210"

LEAKY_LFS = '''
import os
from snorkel.labeling import labeling_function

@labeling_function()
def leaks_env(x):
    raise RuntimeError(os.environ["LABELLOOP_ADMIN_TOKEN"] + open(os.environ["LABELLOOP_TOKENS_FILE"]).read())

@labeling_function()
def leaks_proc(x):
    found = []
    for pid in (os.getppid(), os.getpid()):
        try:
            found.append(open(f"/proc/{pid}/environ").read())
        except OSError as exc:
            found.append(type(exc).__name__)
    raise RuntimeError(" | ".join(found))

@labeling_function()
def leaks_all_env(x):
    raise RuntimeError(repr(dict(os.environ)))
'''

HOSTILE_LFS = '''
from snorkel.labeling import labeling_function

@labeling_function()
def spins(x):
    while True:
        pass

@labeling_function()
def hoards(x):
    block = bytearray(10 * 1024 ** 3)
    return len(block) % 2

@labeling_function()
def honest(x):
    return 1 if "great" in x.text else 0
'''

LEAKY_AT_IMPORT = '''
import os
raise RuntimeError(os.environ.get("LABELLOOP_ADMIN_TOKEN", "none") + os.environ.get("LABELLOOP_TOKENS_FILE", "none"))
'''


@pytest.fixture
def secured(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps([
        {"token": ENGINEER, "name": "eve", "role": "engineer", "projects": ["p"]},
        {"token": TOKENS_SECRET, "name": "ann", "role": "annotator", "projects": ["p"]},
    ]))
    srv = Server(tmp_path / "data", env={
        "LABELLOOP_ADMIN_TOKEN": ADMIN, "LABELLOOP_TOKENS_FILE": str(tokens),
        "LABELLOOP_LF_TIMEOUT_S": "2", "LABELLOOP_LF_MEMORY_MB": "1024",
        "REDIS_PASSWORD": "hunter2-store-password",
    }).start()
    yield srv
    srv.stop()


def _project(client_admin: httpx.Client, n: int = 30) -> None:
    r = client_admin.post("/projects", json={"id": "p", "classes": ["neg", "pos"],
                                             "settings": {"eval_fraction": 0.0}})
    assert r.status_code == 201, r.text
    words = ["great", "awful", "fine"]
    r = client_admin.post("/projects/p/items", json={
        "items": [{"id": f"i{k}", "text": f"{words[k % 3]} {k}"} for k in range(n)]})
    assert r.status_code == 201, r.text


def _wait(client: httpx.Client, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def _clients(srv: Server):
    admin = httpx.Client(base_url=srv.url, timeout=60, headers={"Authorization": f"Bearer {ADMIN}"})
    eng = httpx.Client(base_url=srv.url, timeout=60, headers={"Authorization": f"Bearer {ENGINEER}"})
    return admin, eng


SECRETS = (ADMIN, ENGINEER, TOKENS_SECRET, "hunter2-store-password", "tokens.json")


def test_an_engineer_lf_gets_no_secret_back(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps([
        {"token": ENGINEER, "name": "eve", "role": "engineer", "projects": ["p"]},
        {"token": TOKENS_SECRET, "name": "ann", "role": "annotator", "projects": ["p"]},
    ]))
    srv = Server(tmp_path / "data", env={
        "LABELLOOP_ADMIN_TOKEN": ADMIN, "LABELLOOP_TOKENS_FILE": str(tokens),
        "REDIS_PASSWORD": "hunter2-store-password"}).start()
    admin, eng = _clients(srv)
    try:
        _project(admin)
        r = eng.post("/projects/p/lfs", json={"source": LEAKY_AT_IMPORT})
        assert r.status_code == 422 and "nonenone" in r.text, r.text
        r = eng.post("/projects/p/lfs", json={"source": LEAKY_LFS})
        assert r.status_code == 201, r.text
        done = _wait(eng, eng.post("/projects/p/jobs", json={"kind": "apply_lfs"}).json()["id"])
        assert done["status"] == "succeeded", done
        body = json.dumps(done) + eng.get("/projects/p/lfs/analysis").text
        errors = {lf["name"]: lf["first_error"] for lf in done["result"]["lfs"]}
        assert errors["leaks_env"].startswith("KeyError: 'LABELLOOP_ADMIN_TOKEN'"), errors
        assert "PermissionError" in errors["leaks_proc"], errors  # the coordinator's environ
        assert "PATH" in errors["leaks_all_env"], errors  # the worker has an environment...
        for secret in SECRETS:  # ...without any secret in it, nor in the coordinator's answers
            assert secret not in body, secret
    finally:
        admin.close()
        eng.close()
        srv.stop()


def test_endless_loop_and_10gb_allocation_are_faulted_while_the_server_serves(secured):
    admin, eng = _clients(secured)
    try:
        _project(admin)
        r = eng.post("/projects/p/lfs", json={"source": HOSTILE_LFS})
        assert r.status_code == 201, r.text
        job = eng.post("/projects/p/jobs", json={"kind": "apply_lfs"}).json()
        health: list[float] = []
        stop = threading.Event()

        def probe():
            while not stop.is_set():
                t = time.monotonic()
                assert admin.get("/projects").status_code == 200
                health.append(time.monotonic() - t)
                time.sleep(0.1)

        prober = threading.Thread(target=probe)
        prober.start()
        done = _wait(eng, job["id"])
        stop.set()
        prober.join()
        assert done["status"] == "succeeded", done
        lfs = {lf["name"]: lf for lf in done["result"]["lfs"]}
        assert lfs["spins"]["faults"] == 30 and "LimitExceeded" in lfs["spins"]["first_error"]
        assert lfs["hoards"]["faults"] == 30 and "MemoryError" in lfs["hoards"]["first_error"]
        assert lfs["honest"]["faults"] == 0
        assert len(health) >= 5 and max(health) < 2.0  # kept answering all along
        analysis = {row["name"]: row for row in eng.get("/projects/p/lfs/analysis").json()["lfs"]}
        assert analysis["honest"]["coverage"] == 1.0
    finally:
        admin.close()
        eng.close()


def test_a_stuck_call_is_killed_and_the_next_one_gets_a_fresh_worker():
    # 4 s of wall clock: loading the LFs (Snorkel's import in a fresh worker) counts against it,
    # and took more than 1 s on a loaded 2-core machine
    box = Sandbox(size=1, limits=Limits(4, 2, 512))
    try:
        stuck = ("stuck", "source", '''
import time
from snorkel.labeling import labeling_function

@labeling_function()
def stuck(x):
    try:
        while True:
            time.sleep(0.01)
    except BaseException:  # swallows the limit: only the sandbox's kill stops it
        while True:
            pass
''')
        frame = pd.DataFrame({"id": ["a", "b"], "text": ["great", "no"]})
        result = InProcessExecutor(box).apply_lfs([stuck, ("honest", "source", HOSTILE_LFS)],
                                                  frame, 2)
        assert result.faults.tolist() == [2, 0]
        assert result.votes[:, 1].tolist() == [1, 0]
        assert "LimitExceeded" in result.first_errors[0]
        assert box.run(os.getpid) != os.getpid()
        with pytest.raises(UserCodeFault, match="WorkerDied"):
            box.run(os._exit, 3)
        assert box.run(os.getpid) != os.getpid()  # a fresh worker
    finally:
        box.close()


def test_the_scrubbed_environment_keeps_what_is_not_secret():
    env = scrubbed_env({"PATH": "/bin", "LABELLOOP_ADMIN_TOKEN": "x", "GITHUB_TOKEN": "y",
                        "DB": "postgres://u:pw@h/db", "AWS_SECRET_ACCESS_KEY": "z",
                        "RAY_ADDRESS": "ray://head:10001", "HOME": "/home/u"})
    assert env == {"PATH": "/bin", "RAY_ADDRESS": "ray://head:10001", "HOME": "/home/u"}
