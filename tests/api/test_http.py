"""End-to-end over real HTTP against a real ``labelloop serve`` process (SQLite store)."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from tests.lf_sources import GREAT_AWFUL_LFS
from tests.server import Server

LFS = GREAT_AWFUL_LFS + '''
@labeling_function()
def crashes_on_q(x):
    if "q" in x.text:
        raise ValueError("no q please")
    return -1
'''


def items(n: int, start: int = 0) -> list[dict]:
    words = ["great", "awful", "fine", "quiet"]
    return [{"id": f"it{k}", "text": f"{words[k % 4]} item {k}"} for k in range(start, start + n)]


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def make_project(client, pid="p", n=40, **settings):
    r = client.post("/projects", json={"id": pid, "classes": ["neg", "pos"],
                                       "settings": {"eval_fraction": 0.0, **settings}})
    assert r.status_code == 201, r.text
    r = client.post(f"/projects/{pid}/items", json={"items": items(n)})
    assert r.status_code == 201, r.text
    assert r.json()["inserted"] == n


def wait_job(client, job_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_full_loop_over_http(client):
    make_project(client, retrain_every=4)
    r = client.post("/projects/p/lfs", json={"source": LFS})
    assert r.status_code == 201 and [lf["name"] for lf in r.json()] == [
        "says_great", "says_awful", "crashes_on_q"]
    job = client.post("/projects/p/jobs", json={"kind": "round"}).json()
    done = wait_job(client, job["id"])
    assert done["status"] == "succeeded", done
    assert done["done"] == done["total"] > 0
    analysis = {row["name"]: row for row in client.get("/projects/p/lfs/analysis").json()["lfs"]}
    assert analysis["crashes_on_q"]["faults"] == 10  # 'quiet' rows raise; counted, not fatal
    assert "ValueError" in analysis["crashes_on_q"]["first_error"]
    assert analysis["says_great"]["coverage"] == pytest.approx(0.25)

    lease = client.post("/projects/p/leases", json={"annotator": "ann", "size": 4}).json()
    assert len(lease["items"]) == 4 and lease["items"][0]["reasons"]["strategy"]
    anns = [{"item_id": it["id"], "lease_id": lease["lease_id"],
             "label": "pos" if "great" in it["text"] else "neg", "idempotency_key": it["id"]}
            for it in lease["items"]]
    r = client.post("/projects/p/annotations", json={"annotator": "ann", "annotations": anns})
    assert r.status_code == 200, r.text
    assert r.json()["retrain_job"]  # 4 labels >= retrain_every
    wait_job(client, r.json()["retrain_job"])
    stats = client.get("/projects/p/stats").json()
    assert stats["labels"] == 4 and stats["round"] == 2

    r = client.get("/projects/p/export", params={"format": "jsonl"})
    rows = [httpx.Response(200, content=line).json() for line in r.content.splitlines()]
    assert len(rows) == 40
    labeled = {row["id"]: row for row in rows if row["source"] == "human"}
    assert set(labeled) == {a["item_id"] for a in anns}
    assert all(row["model_version"] == stats["model_version"] for row in rows)


def test_bad_input_gets_clear_4xx_and_nothing_half_stored(client, server):
    make_project(client, n=5)
    assert client.get("/projects/nope").status_code == 404
    r = client.post("/projects", json={"id": "x", "classes": ["only"]})
    assert r.status_code == 422
    r = client.post("/projects", json={"id": "bad id!", "classes": ["a", "b"]})
    assert r.status_code == 422 and "project id" in r.text
    r = client.post("/projects", json={"id": "y", "classes": ["a", "b"],
                                       "settings": {"strategy": "psychic"}})
    assert r.status_code == 422 and "strategy" in r.json()["detail"]
    # a repeated id among new ones: rejected whole
    r = client.post("/projects/p/items", json={"items": items(3, start=4)})
    assert r.status_code == 409 and "it4" in r.json()["detail"]
    assert client.get("/projects/p/stats").json()["queue"]["total"] == 5
    r = client.post("/projects/p/items", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    lease = client.post("/projects/p/leases", json={"annotator": "a", "size": 2}).json()
    good = {"item_id": lease["items"][0]["id"], "lease_id": lease["lease_id"], "label": 1}
    bad_class = {**good, "item_id": lease["items"][1]["id"], "label": "maybe"}
    r = client.post("/projects/p/annotations", json={"annotator": "a", "annotations": [good, bad_class]})
    assert r.status_code == 422 and "maybe" in r.json()["detail"]
    r = client.post("/projects/p/annotations", json={"annotator": "mallory", "annotations": [good]})
    assert r.status_code == 409
    assert client.get("/projects/p/annotations").json() == []  # nothing half-stored
    r = client.post("/projects/p/leases", json={"annotator": "a", "size": 0})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "size"]
    # the lease route parses its own body (api.routes.lean): errors as on every other route
    for body, loc in ((b"{not json", ["body"]), (b'{"size": 2}', ["body", "annotator"]),
                      (b'{"annotator": "a", "colour": 1}', ["body", "colour"]), (b"[1]", ["body"])):
        r = client.post("/projects/p/leases", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][:len(loc)] == loc, (body, r.text)
    r = client.post("/projects/p/leases", content=b'{"annotator": "a"}', headers={"content-type": "text/plain"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body"]
    op = client.get("/openapi.json").json()["paths"]["/projects/{project_id}/leases"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/LeaseIn"}
    big = "x" * (60 * 1024 * 1024)
    r = client.post("/projects/p/items", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = client.post("/projects/p/lfs", json={"source": "def broken(:\n"})
    assert r.status_code == 422 and "line" in r.json()["detail"]


def test_concurrent_annotators_never_share_an_item(client):
    make_project(client, n=300)
    got: dict[str, list[str]] = {}
    errors: list[str] = []

    def annotator(name: str) -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as c:
            mine: list[str] = []
            while True:
                r = c.post("/projects/p/leases", json={"annotator": name, "size": 7})
                if r.status_code != 201:
                    errors.append(r.text)
                    return
                body = r.json()
                if not body["items"]:
                    break
                ids = [it["id"] for it in body["items"]]
                mine += ids
                anns = [{"item_id": i, "lease_id": body["lease_id"], "label": 0} for i in ids]
                r = c.post("/projects/p/annotations", json={"annotator": name, "annotations": anns})
                if r.status_code != 200:
                    errors.append(r.text)
                    return
            got[name] = mine

    threads = [threading.Thread(target=annotator, args=(f"a{k}",)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    all_ids = [i for ids in got.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == 300


def test_replayed_submission_counts_once(client):
    make_project(client, n=5)
    lease = client.post("/projects/p/leases", json={"annotator": "a", "size": 3}).json()
    body = {"annotator": "a", "annotations": [
        {"item_id": it["id"], "lease_id": lease["lease_id"], "label": 1, "idempotency_key": f"k-{it['id']}"}
        for it in lease["items"]]}
    replies = [client.post("/projects/p/annotations", json=body).json() for _ in range(3)]
    assert [r["results"][0]["duplicate"] for r in replies] == [False, True, True]
    assert len(client.get("/projects/p/annotations").json()) == 3
    assert client.get("/projects/p/stats").json()["labels"] == 3


def test_killed_server_loses_no_acknowledged_annotation(tmp_path):
    srv = Server(tmp_path / "data").start()
    acked: list[str] = []
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            make_project(c, n=200)
            stop = threading.Event()

            def stream() -> None:
                with httpx.Client(base_url=srv.url, timeout=30) as s:
                    while not stop.is_set():
                        try:
                            lease = s.post("/projects/p/leases", json={"annotator": "a", "size": 5}).json()
                            for it in lease["items"]:
                                r = s.post("/projects/p/annotations", json={"annotator": "a", "annotations": [
                                    {"item_id": it["id"], "lease_id": lease["lease_id"], "label": 1,
                                     "idempotency_key": it["id"]}]})
                                if r.status_code == 200:
                                    acked.append(it["id"])
                        except (httpx.TransportError, ValueError):
                            return

            worker = threading.Thread(target=stream)
            worker.start()
            deadline = time.monotonic() + 30
            while len(acked) < 40 and time.monotonic() < deadline:
                time.sleep(0.05)
            srv.kill()  # SIGKILL mid-stream
            stop.set()
            worker.join(timeout=30)
        assert len(acked) >= 40
        srv.start()
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            stored = {a["item_id"] for a in c.get("/projects/p/annotations").json()}
        assert set(acked) <= stored
    finally:
        srv.stop()


def test_items_without_ids_get_the_ids_a_file_would_give(client):
    from labeling.ingest import derive_id

    make_project(client, n=1)
    r = client.post("/projects/p/items", json={"items": [{"text": "no id here"}]})
    assert r.status_code == 201
    item = client.get(f"/projects/p/items/{derive_id('no id here', {})}")
    assert item.status_code == 200 and item.json()["text"] == "no id here"
    again = client.post("/projects/p/items", json={"items": [{"text": "no id here"}]})
    assert again.status_code == 409  # the same content is the same item, never silently twice


def test_apply_lfs_and_pseudo_label_run_as_jobs(client):
    make_project(client, n=40)
    assert client.post("/projects/p/lfs", json={"source": LFS}).status_code == 201
    job = client.post("/projects/p/jobs", json={"kind": "apply_lfs"})
    assert job.status_code == 202, job.text
    done = wait_job(client, job.json()["id"])
    assert done["status"] == "succeeded" and done["kind"] == "apply_lfs", done
    lfs = {e["name"]: e for e in done["result"]["lfs"]}
    assert done["result"]["items"] == 40 and lfs["crashes_on_q"]["faults"] == 10
    # a round gives the models the pseudo-labels come from
    assert wait_job(client, client.post("/projects/p/jobs", json={"kind": "round"}).json()["id"]
                    )["status"] == "succeeded"
    r = client.post("/projects/p/jobs", json={"kind": "pseudo_label", "min_confidence": 0.6})
    assert r.status_code == 202, r.text
    done = wait_job(client, r.json()["id"])
    assert done["status"] == "succeeded" and done["done"] == done["total"] == 40, done
    body = client.get(f"/jobs/{done['id']}/file")
    assert body.status_code == 200
    rows = [json.loads(line) for line in body.text.splitlines()]
    assert len(rows) == done["result"]["rows"] > 0
    assert all(r["confidence"] >= 0.6 and r["source"] in ("label_model", "end_model") for r in rows)
    assert all(r["model_version"] and r["lf_set_version"] for r in rows)
    # bad input: an unknown kind or confidence is a 422; a round job has no file
    assert client.post("/projects/p/jobs", json={"kind": "fit"}).status_code == 422
    r = client.post("/projects/p/jobs", json={"kind": "pseudo_label", "min_confidence": 2})
    assert r.status_code == 422 and "min_confidence" in r.text
    rounds = [j for j in client.get("/projects/p/jobs").json() if j["kind"] == "round"]
    r = client.get(f"/jobs/{rounds[0]['id']}/file")
    assert r.status_code == 409 and "pseudo_label" in r.json()["detail"]
