"""Stopping ``labelloop serve`` stops the local Ray it started, agents included (issue 21, 10)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.server import Server

LF = '''
from snorkel.labeling import labeling_function

@labeling_function()
def has_a(x):
    return 1 if "a" in x.text else 0
'''


def descendants(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid`` with its command line."""
    out: dict[int, str] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for c in map(int, children):
                if c not in out:
                    out[c] = _cmdline(c)
                    todo.append(c)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(procs: dict[int, str]) -> dict[int, str]:
    """Those of ``procs`` still running the same command (not a reused pid, not a zombie)."""
    out = {}
    for pid, cmd in procs.items():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and _cmdline(pid) == cmd:
            out[pid] = cmd
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_serve_leaves_no_ray_process(tmp_path, sig):
    srv = Server(tmp_path / "data", env={"LABELLOOP_EXECUTOR": "ray", "LABELLOOP_RAY_NUM_CPUS": "1"})
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            c.post("/projects", json={"id": "p", "classes": ["n", "y"]}).raise_for_status()
            c.post("/projects/p/items", json={"items": [
                {"id": f"i{k}", "text": f"a{k}" if k % 2 else f"b{k}"} for k in range(50)]}
            ).raise_for_status()
            c.post("/projects/p/lfs", json={"source": LF}).raise_for_status()
            job = c.post("/projects/p/jobs", json={"kind": "apply_lfs"}).json()
            deadline = time.monotonic() + 240
            while c.get(f"/jobs/{job['id']}").json()["status"] not in ("succeeded", "failed"):
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert c.get(f"/jobs/{job['id']}").json()["status"] == "succeeded"
        started = descendants(srv.proc.pid)
        rays = {p: cmd for p, cmd in started.items() if "ray" in cmd}
        assert any("raylet" in cmd for cmd in rays.values()), started
        heads = [cmd for cmd in rays.values() if "dashboard/dashboard.py" in cmd]
        # no dashboard unless asked: Ray keeps only its API head, without the dashboard's modules
        assert all("--disable-frontend" in cmd and "--modules-to-load=UsageStatsHead" in cmd
                   for cmd in heads), heads
        srv.proc.send_signal(sig)
        srv.proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while alive(started) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not alive(started), alive(started)
    finally:
        srv.stop()
