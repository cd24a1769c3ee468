"""Several coordinator replicas on one Redis, with real processes: races, crashes, replays, and
job locks reclaimed from a replica that died or stalled."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time

import httpx
import pytest

from bench.lease_race import run_race
from tests.redis_server import PrivateRedis
from tests.server import Server


@pytest.mark.parametrize("store", ["redis", "sqlite"])
def test_race_two_replicas_32_clients_20k_items_with_expiry_churn(store):
    result = run_race(replicas=2, clients=32, items=20_000, batch=50, ttl=2.0, abandon=0.1,
                      deadline_s=300, store=store)
    assert result["errors"] == []
    assert result["duplicates"] == 0 and result["missing"] == 0 and result["accounted"]
    assert result["abandoned_items"] > 0  # the churn really happened


@pytest.fixture
def cluster(tmp_path):
    redis_srv = PrivateRedis(tmp_path / "redis", appendonly=True, fsync="always").start()
    servers = [Server(tmp_path / f"r{k}", store_url=redis_srv.url).start() for k in range(2)]
    with httpx.Client(base_url=servers[0].url, timeout=60) as c:
        c.post("/projects", json={"id": "p", "classes": ["a", "b"],
                                  "settings": {"eval_fraction": 0, "retrain_every": 10**6}}).raise_for_status()
        c.post("/projects/p/items", json={"items": [{"id": f"i{k}", "text": f"t{k}"} for k in range(400)]}
               ).raise_for_status()
    yield redis_srv, servers
    for s in servers:
        s.stop()
    redis_srv.kill()


def _stream(urls: list[str], acked: list[str], stop: threading.Event) -> None:
    """Label one item per request, alternating replicas, recording what was acknowledged."""
    k = 0
    while not stop.is_set():
        try:
            with httpx.Client(base_url=urls[k % len(urls)], timeout=5) as c:
                lease = c.post("/projects/p/leases", json={"annotator": "a", "size": 3}).json()
                for it in lease["items"]:
                    r = c.post("/projects/p/annotations", json={"annotator": "a", "annotations": [
                        {"item_id": it["id"], "lease_id": lease["lease_id"], "label": 1,
                         "idempotency_key": it["id"]}]})
                    if r.status_code == 200:
                        acked.append(it["id"])
        except (httpx.TransportError, ValueError, KeyError):
            time.sleep(0.05)
        k += 1


def _stored(url: str) -> set[str]:
    with httpx.Client(base_url=url, timeout=30) as c:
        return {a["item_id"] for a in c.get("/projects/p/annotations").json()}


def test_kill_9_of_a_replica_and_of_redis_loses_no_acknowledged_annotation(cluster):
    redis_srv, servers = cluster
    acked: list[str] = []
    stop = threading.Event()
    worker = threading.Thread(target=_stream, args=([s.url for s in servers], acked, stop))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while len(acked) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        servers[0].kill()  # a coordinator dies mid-stream
        n_before = len(acked)
        while len(acked) < n_before + 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        redis_srv.kill()  # then Redis itself, SIGKILL
        time.sleep(0.3)
        redis_srv.start()  # replays its AOF
        n_before = len(acked)
        while len(acked) < n_before + 10 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=30)
    servers[0].start()
    assert len(acked) >= 70
    for s in servers:
        assert set(acked) <= _stored(s.url)


def test_replay_to_both_replicas_has_one_effect(cluster):
    _, servers = cluster
    with httpx.Client(base_url=servers[0].url, timeout=30) as c:
        lease = c.post("/projects/p/leases", json={"annotator": "a", "size": 4}).json()
    body = {"annotator": "a", "annotations": [
        {"item_id": it["id"], "lease_id": lease["lease_id"], "label": 0, "idempotency_key": f"x-{it['id']}"}
        for it in lease["items"]]}
    replies = []
    for k in range(3):
        with httpx.Client(base_url=servers[k % 2].url, timeout=30) as c:
            replies.append(c.post("/projects/p/annotations", json=body).json())
    assert [r["results"][0]["duplicate"] for r in replies] == [False, True, True]
    assert len(_stored(servers[1].url)) == 4


def test_settings_change_reaches_both_replicas_leases(cluster):
    """Leases read the project's settings from the store: a change through one replica is what
    the next lease on either replica uses."""
    _, servers = cluster
    with httpx.Client(base_url=servers[0].url, timeout=30) as c0, \
            httpx.Client(base_url=servers[1].url, timeout=30) as c1:
        def ttl(c: httpx.Client, who: str) -> float:
            before = time.time()
            body = c.post("/projects/p/leases", json={"annotator": who, "size": 1}).json()
            return body["expires_at"] - before

        assert ttl(c1, "w0") < 1000  # replica 1 has cached the default settings
        c0.patch("/projects/p/settings", json={"lease_ttl_s": 5000}).raise_for_status()
        assert ttl(c0, "w1") > 4000
        deadline, seen = time.monotonic() + 10, 0.0
        while time.monotonic() < deadline and (seen := ttl(c1, f"w2-{deadline}")) < 4000:
            time.sleep(0.1)
        assert seen > 4000


def test_one_job_of_a_kind_across_replicas(cluster):
    _, servers = cluster
    codes = []

    def start(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            codes.append(c.post("/projects/p/jobs", json={"kind": "round"}).status_code)

    threads = [threading.Thread(target=start, args=(servers[k % 2].url,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(202) >= 1 and codes.count(202) + codes.count(409) == 6
    with httpx.Client(base_url=servers[1].url, timeout=30) as c:
        deadline = time.monotonic() + 120
        while True:
            jobs = c.get("/projects/p/jobs").json()
            if all(j["status"] not in ("queued", "running") for j in jobs) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert len(jobs) == codes.count(202) and all(j["status"] == "succeeded" for j in jobs)
    spans = sorted((j["created_at"], j["finished_at"]) for j in jobs)
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))


# -- job locks: a replica that dies or stalls mid-job --------------------------------------------
SLOW_LF = '''
import time
from snorkel.labeling import labeling_function

@labeling_function()
def slow(x):
    time.sleep(0.03)
    return -1
'''
LOCK_TTL = 1.5


@pytest.fixture
def slow_cluster(tmp_path):
    """Two replicas with a short job-lock expiry and sweep, and a round that takes >= 6 s."""
    redis_srv = PrivateRedis(tmp_path / "redis", appendonly=True, fsync="everysec").start()
    env = {"LABELLOOP_JOB_LOCK_TTL_S": str(LOCK_TTL), "LABELLOOP_SWEEP_INTERVAL_S": "0.3"}
    servers = [Server(tmp_path / f"r{k}", store_url=redis_srv.url, env=env).start() for k in range(2)]
    try:
        with httpx.Client(base_url=servers[0].url, timeout=60) as c:
            c.post("/projects", json={"id": "p", "classes": ["a", "b"], "settings": {
                "eval_fraction": 0, "retrain_every": 10**6}}).raise_for_status()
            c.post("/projects/p/items", json={"items": [{"id": f"i{k}", "text": f"t{k}"}
                                                        for k in range(200)]}).raise_for_status()
            c.post("/projects/p/lfs", json={"source": SLOW_LF}).raise_for_status()
        yield servers
    finally:
        for s in servers:
            if s.proc and s.proc.poll() is None:
                os.killpg(s.proc.pid, signal.SIGCONT)  # never leave a stopped process behind
            s.stop()
        redis_srv.kill()


def _job(c: httpx.Client, job_id: str) -> dict:
    r = c.get(f"/jobs/{job_id}")
    r.raise_for_status()
    return r.json()


def _wait_status(c: httpx.Client, job_id: str, statuses: tuple[str, ...], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = _job(c, job_id)
        if job["status"] in statuses or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_job_of_a_killed_replica_is_failed_and_its_kind_reclaimed(slow_cluster):
    a, b = slow_cluster
    with httpx.Client(base_url=a.url, timeout=30) as ca, httpx.Client(base_url=b.url, timeout=30) as cb:
        r = ca.post("/projects/p/jobs", json={"kind": "round"})
        assert r.status_code == 202, r.text
        first = r.json()["id"]
        assert _wait_status(cb, first, ("running",), 30)["status"] == "running"
        # the holder's heartbeat keeps the lock past its expiry while the job runs
        deadline = time.monotonic() + 2 * LOCK_TTL
        while time.monotonic() < deadline:
            assert cb.post("/projects/p/jobs", json={"kind": "round"}).status_code == 409
            assert _job(cb, first)["status"] == "running"
            time.sleep(0.3)
        a.kill()  # SIGKILL mid-job: no shutdown hook releases anything
        job = _wait_status(cb, first, ("failed", "succeeded"), 30)
        assert job["status"] == "failed" and "LockExpired" in job["error"], job
        assert job["finished_at"] is not None
        r = cb.post("/projects/p/jobs", json={"kind": "round"})
        assert r.status_code == 202, r.text
        second = _wait_status(cb, r.json()["id"], ("succeeded", "failed"), 120)
        assert second["status"] == "succeeded", second
        assert len(cb.get("/projects/p/rounds").json()) == 1


def test_stalled_holder_loses_the_lock_and_its_writes_are_refused(slow_cluster):
    a, b = slow_cluster
    with httpx.Client(base_url=b.url, timeout=30) as cb:
        with httpx.Client(base_url=a.url, timeout=30) as ca:
            r = ca.post("/projects/p/jobs", json={"kind": "round"})
        assert r.status_code == 202, r.text
        first = r.json()["id"]
        assert _wait_status(cb, first, ("running",), 30)["status"] == "running"
        os.killpg(a.proc.pid, signal.SIGSTOP)  # the holder stalls past its lock's expiry
        try:
            stale = _wait_status(cb, first, ("failed", "succeeded"), 30)
            assert stale["status"] == "failed" and "LockExpired" in stale["error"], stale
            r = cb.post("/projects/p/jobs", json={"kind": "round"})
            assert r.status_code == 202, r.text
            second = r.json()["id"]
        finally:
            os.killpg(a.proc.pid, signal.SIGCONT)
        # the old holder wakes up still running its job: its heartbeat and its writes find a
        # newer fencing token, so it stops without touching the job record or adding a round
        deadline = time.monotonic() + 60
        while "lost its lock" not in a.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "lost its lock" in a.log.read_text()
        done = _wait_status(cb, second, ("succeeded", "failed"), 120)
        assert done["status"] == "succeeded", done
        assert _job(cb, first) == stale  # nothing the stale holder wrote got through
        assert len(cb.get("/projects/p/rounds").json()) == 1
