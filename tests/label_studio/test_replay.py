"""Replay what a real Label Studio 1.23.2 sent to an ML backend (``fixtures/``) against a real
``labelloop serve`` process, with the backend's basic auth, and check each answer and what the
project stored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.server import Server

RECORDING = Path(__file__).parent / "fixtures" / "requests-1.23.2.jsonl"
TOKEN = "engineer-token-for-the-replay"
ANNOTATOR_TOKEN = "annotator-token-for-the-replay"


def recording() -> list[dict]:
    return [json.loads(line) for line in RECORDING.read_text().splitlines()]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("replay")
    tokens = data / "tokens.json"
    tokens.write_text(json.dumps([
        {"token": TOKEN, "name": "ls", "role": "engineer"},
        {"token": ANNOTATOR_TOKEN, "name": "alice", "role": "annotator"},
        {"token": "admin-token-for-the-replay", "name": "root", "role": "admin"}]))
    srv = Server(data / "data", env={"LABELLOOP_TOKENS_FILE": str(tokens)}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def backend(server):
    """Label Studio's side: basic auth with the token as password, as its ML backend sends."""
    admin = httpx.Client(base_url=server.url, timeout=60,
                         headers={"Authorization": "Bearer admin-token-for-the-replay"})
    for pid in ("rec", "wrong"):
        classes = ["Positive", "Negative"] if pid == "rec" else ["spam", "ham"]
        r = admin.post("/projects", json={"id": pid, "classes": classes, "settings": {
            "eval_fraction": 0.0, "retrain_every": 3}})
        assert r.status_code == 201, r.text
    with httpx.Client(base_url=server.url + "/label-studio", timeout=60,
                      auth=("labelstudio", TOKEN)) as c:
        yield c


def replay(client: httpx.Client, project: str, rows: list[dict]) -> list[httpx.Response]:
    return [client.request(r["method"], f"/{project}{r['path']}", json=r["body"]) for r in rows]


def log(backend: httpx.Client, project: str) -> list[dict]:
    root = str(backend.base_url).rstrip("/").removesuffix("/label-studio")
    r = httpx.get(f"{root}/projects/{project}/annotations",
                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    return r.json()


def wait_rounds(backend: httpx.Client, n: int, timeout: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = backend.get("/rec/versions").json()["versions"]
        if len(got) >= n:
            return got
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} rounds after {timeout}s")


def test_the_recording_replays(backend):
    rows = recording()
    got = replay(backend, "rec", rows)
    for row, r in zip(rows, got, strict=True):
        assert r.status_code == 200, (row["path"], r.text)
    by_path = [(row, r.json()) for row, r in zip(rows, got, strict=True)]
    health = [body for row, body in by_path if row["path"] == "/health"]
    assert all(h["status"] == "UP" for h in health)
    assert health[-1]["access_token"] is True and "note" not in health[-1]
    for row, body in by_path:
        if row["path"] == "/predict":  # one result per task, in order
            assert len(body["results"]) == len(row["body"]["tasks"])
    actions = [body.get("action") for row, body in by_path if row["path"] == "/webhook"]
    assert actions.count("ANNOTATION_CREATED") == 9 and "START_TRAINING" in actions
    ignored = [body for row, body in by_path if row["path"] == "/webhook"
               and row["body"]["action"] == "PROJECT_UPDATED"]
    assert ignored and all(b["status"] == "ignored" for b in ignored)

    # the tasks are items, the annotations (created, then updated) are log events
    events = log(backend, "rec")
    assert len(events) == 10
    assert all(e["annotator"] == "label-studio:1" and e["lease_id"] is None for e in events)
    first, update = events[0], events[1]
    assert (first["item_id"], first["label"]) == ("8", 1)  # Negative
    assert (update["item_id"], update["label"]) == ("8", 0)  # corrected to Positive
    assert first["idempotency_key"] != update["idempotency_key"]
    versions = wait_rounds(backend, 2)
    # the recorded Label Studio is gone: the push fails, the rounds still count
    root = str(backend.base_url).rstrip("/").removesuffix("/label-studio")
    deadline = time.monotonic() + 60
    while True:
        jobs = httpx.get(f"{root}/projects/rec/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        if all(j["status"] not in ("queued", "running") for j in jobs) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    rounds = [j for j in jobs if j["kind"] == "round"]
    assert rounds and all(j["status"] == "succeeded" for j in rounds), rounds
    assert all("ConnectError" in j["result"]["label_studio"]["error"] for j in rounds)

    # a second replay of every webhook has no effect
    webhooks = [r for r in rows if r["path"] == "/webhook"
                and r["body"]["action"].startswith("ANNOTATION")]
    again = replay(backend, "rec", webhooks)
    assert all(r.status_code == 200 and r.json()["duplicate"] for r in again)
    assert len(log(backend, "rec")) == 10

    # the predictions follow the latest round: a choice and the queue's score
    predict = next(r for r in rows if r["path"] == "/predict")
    results = backend.post("/rec/predict", json=predict["body"]).json()["results"]
    latest = wait_rounds(backend, len(versions))[-1]
    assert all(p["model_version"] == latest for p in results)
    scored = [p for p in results if "result" in p]
    assert scored, results
    for p in scored:
        (region,) = p["result"]
        assert region["from_name"] == "sentiment" and region["to_name"] == "text"
        assert region["value"]["choices"][0] in ("Positive", "Negative")
        assert 0 < p["score"] <= 1


def test_delete_retracts_once(backend):
    created = next(r for r in recording() if r["path"] == "/webhook"
                   and r["body"]["action"] == "ANNOTATION_CREATED" and r["body"]["annotation"]["id"] == 6)
    body = {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 6}, {"id": 999}],
            "project": created["body"]["project"]}
    before = len(log(backend, "rec"))
    r = backend.post("/rec/webhook", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["retracted"] == 1 and r.json()["unknown"] == 1
    assert backend.post("/rec/webhook", json=body).json()["retracted"] == 0  # a replay
    events = log(backend, "rec")
    assert len(events) == before + 1
    assert events[-1]["kind"] == "retract"
    assert events[-1]["item_id"] == str(created["body"]["task"]["id"])


def test_cancelled_is_a_skip(backend):
    row = next(r for r in recording() if r["path"] == "/webhook"
               and r["body"]["action"] == "ANNOTATION_CREATED")
    body = json.loads(json.dumps(row["body"]))
    body["annotation"].update(id=500, was_cancelled=True, result=[], updated_at="2026-12-04T03:00:00Z")
    r = backend.post("/rec/webhook", json=body)
    assert r.status_code == 200 and r.json()["kind"] == "skip", r.text


def test_classes_must_match(backend):
    setup = next(r for r in recording() if r["path"] == "/setup")
    r = backend.post("/wrong/setup", json=setup["body"])
    assert r.status_code == 422
    assert "Positive" in r.json()["detail"] and "spam" in r.json()["detail"]
    r = backend.post("/rec/setup", json={**setup["body"], "schema": "<View><Text name='t' "
                                          "value='$t'/><Labels name='l' toName='t'/></View>"})
    assert r.status_code == 422 and "single-choice text classification" in r.json()["detail"]


def test_the_backend_needs_an_engineer_token(server):
    url = server.url + "/label-studio/rec/health"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=("labelstudio", "not-a-token-at-all")).status_code == 401
    assert httpx.get(url, auth=("labelstudio", ANNOTATOR_TOKEN)).status_code == 403
    assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_files_both_ways(backend, server):
    """Export as Label Studio tasks with predictions; import a Label Studio export."""
    base = server.url
    auth = {"Authorization": f"Bearer {TOKEN}"}
    config = httpx.get(f"{base}/projects/rec/label-studio/config", headers=auth)
    assert config.status_code == 200 and '<Choice value="Positive"/>' in config.text
    tasks = httpx.get(f"{base}/projects/rec/label-studio/tasks", headers=auth).json()
    assert len(tasks) == 30
    with_pred = [t for t in tasks if t.get("predictions")]
    assert with_pred and all(t["data"]["labelloop_id"] and "text" in t["data"] for t in tasks)
    assert with_pred[0]["predictions"][0]["result"][0]["from_name"] == "sentiment"

    export = [{"id": 901, "project": 7, "data": {"text": "brand new task"}, "annotations": [
        {"id": 77, "completed_by": 4, "updated_at": "2026-12-04T05:00:00Z", "was_cancelled": False,
         "result": [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                     "value": {"choices": ["Positive"]}}]}]},
        {"id": 902, "project": 7, "data": {"text": "t", ID_KEY: "8"}, "annotations": [
            {"id": 78, "completed_by": {"id": 5}, "updated_at": "x", "was_cancelled": True,
             "result": []}]}]
    r = httpx.post(f"{base}/projects/rec/label-studio/tasks", json=export, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"tasks": 2, "new_items": 1, "labels": 1, "skips": 1, "duplicates": 0}
    r = httpx.post(f"{base}/projects/rec/label-studio/tasks", json=export, headers=auth)
    assert r.json()["duplicates"] == 2
    events = log(backend, "rec")
    assert ("901", "label-studio:4", "label", 0) in {
        (e["item_id"], e["annotator"], e["kind"], e["label"]) for e in events}

    bad = [{"id": 903, "data": {"text": "x"}, "annotations": [{"id": 79, "completed_by": 4,
            "result": [{"from_name": "sentiment", "type": "choices", "value": {"choices": ["Meh"]}}]}]}]
    r = httpx.post(f"{base}/projects/rec/label-studio/tasks", json=bad, headers=auth)
    assert r.status_code == 422 and "Meh" in r.json()["detail"]
    assert httpx.get(f"{base}/projects/rec/items/903", headers=auth).status_code == 404


ID_KEY = "labelloop_id"
