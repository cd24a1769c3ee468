"""Several coordinator replicas on one Redis, with real processes: races, crashes, replays."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from bench.lease_race import run_race
from tests.redis_server import PrivateRedis
from tests.server import Server


def test_race_two_replicas_32_clients_20k_items_with_expiry_churn():
    result = run_race(replicas=2, clients=32, items=20_000, batch=50, ttl=2.0, abandon=0.1,
                      deadline_s=300)
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
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))
