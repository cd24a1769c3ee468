"""labelloop as the ML backend of a real Label Studio 1.23.2, over real HTTP both ways.

Label Studio (its own virtualenv from ``.ci/setup``, SQLite, loopback) and ``labelloop serve``
(tokens on, so the backend URL's basic auth is what lets Label Studio in) run as processes. The
test creates a Label Studio project with a ``<Choices>`` config, imports tasks, connects
labelloop as its ML backend and webhook, retrieves predictions, checks that Label Studio's
uncertainty sampling (``/next``) serves tasks in labelloop's queue order, annotates through
Label Studio's API, and checks what labelloop stored: the labels, an update, a deletion, and the
round that the labels started (pushed back to Label Studio as its ``model_version``).
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.label_studio.ls_server import LabelStudio
from tests.server import Server

TOKEN = "engineer-token-for-label-studio"
CONFIG = ('<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text" '
          'choice="single"><Choice value="Positive"/><Choice value="Negative"/></Choices></View>')
LFS = '''
from snorkel.labeling import labeling_function

@labeling_function()
def says_great(x):
    return 0 if "great" in x.text else -1

@labeling_function()
def says_awful(x):
    return 1 if "awful" in x.text else -1

@labeling_function()
def says_fine(x):
    return 0 if "fine" in x.text else -1
'''
TEXTS = ["great film", "awful film", "great but awful", "fine and great", "awful awful plot",
         "fine, awful ending", "great great great", "quiet evening", "awful acting, great music",
         "fine fine", "a great awful fine mess", "nothing to say"]
RETRAIN_EVERY = 3


def wait(predicate, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    ls = LabelStudio(tmp_path_factory.mktemp("label-studio")).start()
    yield ls
    ls.stop()


@pytest.fixture(scope="module")
def labelloop(tmp_path_factory):
    data = tmp_path_factory.mktemp("labelloop")
    tokens = data / "tokens.json"
    tokens.write_text(json.dumps([{"token": TOKEN, "name": "ls", "role": "engineer"}]))
    srv = Server(data / "data", env={"LABELLOOP_ADMIN_TOKEN": "admin-token-for-the-tests",
                                     "LABELLOOP_TOKENS_FILE": str(tokens)}).start()
    yield srv
    srv.stop()


def round_jobs(ll: httpx.Client) -> list[dict]:
    return [j for j in ll.get("/projects/ls/jobs").json() if j["kind"] == "round"]


def finished_rounds(ll: httpx.Client, n: int) -> list[dict] | None:
    done = [j for j in round_jobs(ll) if j["status"] in ("succeeded", "failed")]
    if len(done) < n:
        return None
    assert all(j["status"] == "succeeded" for j in done), done
    return done


def test_label_studio_drives_labelloop(label_studio, labelloop):
    admin = httpx.Client(base_url=labelloop.url, timeout=60,
                         headers={"Authorization": "Bearer admin-token-for-the-tests"})
    r = admin.post("/projects", json={"id": "ls", "classes": ["Positive", "Negative"], "settings": {
        "eval_fraction": 0.0, "retrain_every": RETRAIN_EVERY, "strategy": "entropy"}})
    assert r.status_code == 201, r.text
    assert admin.post("/projects/ls/lfs", json={"source": LFS}).status_code in (200, 201)

    ls = label_studio.client()
    r = ls.post("/api/projects", json={"title": "labelloop-it", "label_config": CONFIG,
                                       "sampling": "Uncertainty sampling"})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    r = ls.post(f"/api/projects/{pid}/import", json=[{"text": t} for t in TEXTS])
    assert r.status_code == 201, r.text
    tasks = ls.get("/api/tasks", params={"project": pid, "page_size": 100}).json()["tasks"]
    text_of = {t["id"]: t["data"]["text"] for t in tasks}
    assert len(text_of) == len(TEXTS)

    # an unauthenticated backend is refused: Label Studio reports the 401 and stores nothing
    backend = f"{labelloop.url}/label-studio/ls"
    r = ls.post("/api/ml", json={"url": backend, "project": pid, "title": "no-auth"})
    assert r.status_code == 400, r.text
    r = ls.post("/api/ml", json={"url": backend, "project": pid, "title": "labelloop",
                                 "auth_method": "BASIC_AUTH", "basic_auth_user": "labelstudio",
                                 "basic_auth_pass": TOKEN, "is_interactive": False})
    assert r.status_code == 201, r.text
    r = ls.post("/api/webhooks", json={"project": pid, "url": backend + "/webhook",
                                       "send_payload": True, "send_for_all_actions": True,
                                       "headers": {"Authorization": f"Bearer {TOKEN}"}})
    assert r.status_code == 201, r.text
    ll = httpx.Client(base_url=labelloop.url, timeout=60,
                      headers={"Authorization": f"Bearer {TOKEN}"})
    health = ll.get("/label-studio/ls/health").json()
    assert health["label_studio_connected"] and health["access_token"], health

    # "Retrieve predictions": labelloop ingests the tasks and starts a round in the background,
    # whose end pushes the predictions and the model version to Label Studio
    r = ls.post("/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": pid},
                json={"selectedItems": {"all": True, "excluded": []}})
    assert r.status_code == 200, r.text
    (job,) = wait(lambda: finished_rounds(ll, 1), "the first round")
    assert job["result"]["label_studio"]["pushed"] == len(TEXTS), job["result"]
    version = job["result"]["model_version"]
    assert ls.get(f"/api/projects/{pid}").json()["model_version"] == version
    items = {it_id: text for it_id, text in ((str(k), v) for k, v in text_of.items())}
    assert ll.get("/projects/ls/stats").json()["queue"]["total"] == len(items)

    # labelloop's queue order, as its own leases hand it out
    lease = ll.post("/projects/ls/leases", json={"annotator": "probe", "size": len(TEXTS)}).json()
    order = [int(i["id"]) for i in lease["items"]]
    assert sorted(order) == sorted(text_of)
    ll.post(f"/leases/{lease['lease_id']}/release", json={"annotator": "probe"}).raise_for_status()
    preds = ls.get("/api/predictions", params={"project": pid}).json()
    assert {p["task"] for p in preds if p["model_version"] == version} == set(text_of)

    # Label Studio's uncertainty sampling follows that order; annotate through its API
    choice = {}
    annotation_ids = []
    for k in range(RETRAIN_EVERY):
        nxt = ls.get(f"/api/projects/{pid}/next")
        assert nxt.status_code == 200, nxt.text
        assert nxt.json()["id"] == order[k], (k, nxt.json()["id"], order)
        label = "Negative" if "awful" in text_of[order[k]] else "Positive"
        choice[order[k]] = label
        r = ls.post(f"/api/tasks/{order[k]}/annotations", json={"result": [
            {"from_name": "sentiment", "to_name": "text", "type": "choices",
             "value": {"choices": [label]}}]})
        assert r.status_code == 201, r.text
        annotation_ids.append(r.json()["id"])

    # labelloop stored those labels (webhooks, one effect each) and ran the round they started
    def labels():
        got = [a for a in ll.get("/projects/ls/annotations").json() if a["kind"] == "label"]
        return got if len(got) >= RETRAIN_EVERY else None

    got = wait(labels, "the webhook labels", 30)
    assert {(int(a["item_id"]), ["Positive", "Negative"][a["label"]]) for a in got} == set(choice.items())
    assert {a["annotator"] for a in got} == {"label-studio:1"}
    assert all(a["lease_id"] is None and a["idempotency_key"].startswith(f"ls:{pid}:") for a in got)
    second = wait(lambda: finished_rounds(ll, 2), "the round the labels started")
    newer = max(second, key=lambda j: j["created_at"])["result"]
    rounds = ll.get("/projects/ls/rounds").json()
    assert [r["model_version"] for r in rounds] == [version, newer["model_version"]]
    assert rounds[-1]["n_labels"] == RETRAIN_EVERY
    assert ls.get(f"/api/projects/{pid}").json()["model_version"] == newer["model_version"]
    assert ll.get("/label-studio/ls/versions").json()["versions"] == [version, newer["model_version"]]

    # an update is a new event that supersedes; a deletion appends a retraction
    first = order[0]
    flipped = "Positive" if choice[first] == "Negative" else "Negative"
    r = ls.patch(f"/api/annotations/{annotation_ids[0]}", json={"result": [
        {"from_name": "sentiment", "to_name": "text", "type": "choices",
         "value": {"choices": [flipped]}}]})
    assert r.status_code == 200, r.text
    r = ls.delete(f"/api/annotations/{annotation_ids[1]}")
    assert r.status_code == 204, r.text

    def events():
        got = ll.get("/projects/ls/annotations").json()
        return got if any(a["kind"] == "retract" for a in got) and len(got) >= RETRAIN_EVERY + 2 else None

    log = wait(events, "the update and the deletion", 30)
    on_first = [a for a in log if a["item_id"] == str(first)]
    assert [["Positive", "Negative"][a["label"]] for a in on_first] == [choice[first], flipped]
    (retract,) = [a for a in log if a["kind"] == "retract"]
    assert retract["item_id"] == str(order[1]) and retract["annotator"] == "label-studio:1"
    rows = {row["id"]: row for row in map(json.loads, ll.get(
        "/projects/ls/export", params={"format": "jsonl"}).text.splitlines())}
    assert rows[str(first)]["source"] == "human" and rows[str(first)]["label"] == flipped
    assert rows[str(order[1])]["source"] != "human"
