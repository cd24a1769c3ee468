"""Model assertions over real HTTP against real ``labelloop serve`` processes: registration, a
round, firing counts; bad input; the role boundary; the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from tests.lf_sources import GREAT_AWFUL_LFS
from tests.server import ROOT, Server

SOURCE = '''
from labeling.user_assertions import assertion

@assertion()
def quiet_but_positive(batch):
    return (batch.frame["text"].str.startswith("quiet") & (batch.preds == 1)) * batch.probs[:, 1]
'''
LFS = GREAT_AWFUL_LFS
TRACK = {"name": "track", "id_column": "track_id", "attributes": ["label"]}
WORDS = ["great", "awful", "fine", "quiet"]


def items(n: int) -> list[dict]:
    return [{"id": f"it{k}", "text": f"{WORDS[k % 4]} item {k}", "meta": {"track_id": f"t{k // 4}"}}
            for k in range(n)]


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/projects", json={"id": "p", "classes": ["neg", "pos"],
                                      "settings": {"eval_fraction": 0.0, "strategy": "bal"}})
        assert r.status_code == 201, r.text
        assert c.post("/projects/p/items", json={"items": items(40)}).status_code == 201
        yield c


def wait_job(client, job_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def run_round(client) -> dict:
    job = client.post("/projects/p/jobs", json={"kind": "round"}).json()
    done = wait_job(client, job["id"])
    assert done["status"] == "succeeded", done
    return done


def test_register_run_a_round_and_see_the_counts(client):
    assert client.post("/projects/p/lfs", json={"source": LFS}).status_code == 201
    r = client.post("/projects/p/assertions", json={"source": SOURCE})
    assert r.status_code == 201, r.text
    [user] = r.json()
    assert user["name"] == "quiet_but_positive" and user["kind"] == "source" and user["latest"] is None
    r = client.post("/projects/p/assertions", json={"consistency": TRACK})
    assert r.status_code == 201, r.text
    [track] = r.json()
    assert track["kind"] == "consistency" and track["granularity"] == "cluster"
    assert track["spec"] == {**TRACK, "time_column": None, "window": None}

    run_round(client)
    listed = {a["name"]: a for a in client.get("/projects/p/assertions").json()}
    assert set(listed) == {"quiet_but_positive", "track"}
    latest = listed["track"]["latest"]
    assert latest["round"] == 1 and latest["version"] == track["version"] and latest["fault"] is None
    assert latest["items"] > 0 and latest["clusters"] > 0 and latest["weak_votes"] > 0
    assert listed["quiet_but_positive"]["latest"]["granularity"] == "item"
    [rnd] = client.get("/projects/p/rounds").json()
    assert rnd["metrics"]["assertions"]["track"] == latest["items"]
    assert rnd["metrics"]["assertion_runs"]["quiet_but_positive"]["items"] == \
        listed["quiet_but_positive"]["latest"]["items"]
    lease = client.post("/projects/p/leases", json={"annotator": "ann", "size": 10}).json()
    strategies = [it["reasons"]["strategy"] for it in lease["items"]]
    # with LFs and no random labels yet, every other place is the random share, while the items
    # drawn for it last (a tenth of these 40), then the strategy's picks go on
    share = [i for i, name in enumerate(strategies) if name == "random"]
    assert share and share == list(range(1, 2 * len(share), 2)) and set(strategies) == {"bal", "random"}
    assert any(it["reasons"].get("drawn_for") in ("track", "quiet_but_positive")
               or {"track", "quiet_but_positive"} & set(it["reasons"].get("flagged_by", []))
               for it in lease["items"])

    run_round(client)  # the consistency weak labels now join the label model as one more LF
    rounds = client.get("/projects/p/rounds").json()
    assert [lf["name"] for lf in rounds[1]["label_model"]["lfs"]] == [
        "says_great", "says_awful", "assertion:track"]
    assert client.get("/projects/p/assertions").json()[1]["latest"]["round"] == 2

    assert client.delete("/projects/p/assertions/track").status_code == 204
    assert not client.get("/projects/p/assertions").json()[1]["active"]
    r = client.delete("/projects/p/assertions/nope")
    assert r.status_code == 404 and "nope" in r.json()["detail"]


BAD = [
    ({"source": "x = 1\n"}, "defines no assertion"),
    ({"source": "def broken(:\n"}, "syntax error at line 1"),
    ({"consistency": {**TRACK, "id_column": "missing_col"}}, "no item has a column 'missing_col'"),
    ({"consistency": {**TRACK, "window": 5}}, "time_column and window together"),
    ({"consistency": {**TRACK, "time_column": "track_id", "window": -2}}, "window must be a positive"),
    ({"consistency": {**TRACK, "name": "lm_em_disagree"}}, "taken by a built-in"),
    ({"consistency": {**TRACK, "max_transitions": 1}}, "max_transitions needs time_column"),
    ({"consistency": {**TRACK, "time_column": "track_id", "window": 3, "max_transitions": -1}},
     "max_transitions"),
    ({"consistency": {**TRACK, "colour": "red"}}, "colour"),
    ({"consistency": {"name": "t"}}, "id_column"),
    ({"source": SOURCE, "consistency": TRACK}, "exactly one of"),
    ({}, "exactly one of"),
]


def test_bad_registrations_get_a_clear_4xx_and_store_nothing(client):
    for body, words in BAD:  # one server for every case
        r = client.post("/projects/p/assertions", json=body)
        assert r.status_code == 422 and words in json.dumps(r.json()["detail"]), (body, r.text)
    assert client.get("/projects/p/assertions").json() == []
    assert client.post("/projects/nope/assertions", json={"consistency": TRACK}).status_code == 404


def test_annotator_cannot_register_assertions(tmp_path):
    tokens = tmp_path / "tokens.json"
    eng, ann = "engineer-token-0123456789", "annotator-token-0123456789"
    tokens.write_text(json.dumps([{"token": eng, "name": "eng", "role": "engineer"},
                                  {"token": ann, "name": "alice", "role": "annotator"}]))
    srv = Server(tmp_path / "data", env={"LABELLOOP_TOKENS_FILE": str(tokens),
                                         "LABELLOOP_ADMIN_TOKEN": "admin-token-0123456789"}).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30,
                          headers={"authorization": "Bearer admin-token-0123456789"}) as admin:
            assert admin.post("/projects", json={"id": "p", "classes": ["a", "b"]}).status_code == 201
            assert admin.post("/projects/p/items", json={"items": items(8)}).status_code == 201
        with httpx.Client(base_url=srv.url, timeout=30, headers={"authorization": f"Bearer {ann}"}) as c:
            r = c.post("/projects/p/assertions", json={"source": SOURCE})
            assert r.status_code == 403 and "engineer" in r.json()["detail"]
            assert c.post("/projects/p/assertions", json={"consistency": TRACK}).status_code == 403
            assert c.get("/projects/p/assertions").status_code == 403
            assert c.delete("/projects/p/assertions/track").status_code == 403
        with httpx.Client(base_url=srv.url, timeout=30, headers={"authorization": f"Bearer {eng}"}) as c:
            assert c.post("/projects/p/assertions", json={"consistency": TRACK}).status_code == 201
            assert [a["name"] for a in c.get("/projects/p/assertions").json()] == ["track"]
    finally:
        srv.stop()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def test_cli_registers_and_shows_firing_counts(tmp_path):
    data = str(tmp_path / "data")
    items_file = tmp_path / "items.jsonl"
    items_file.write_text("".join(json.dumps({"id": it["id"], "text": it["text"],
                                              "track_id": it["meta"]["track_id"]}) + "\n"
                                  for it in items(24)))
    assert cli("create-project", "--data-dir", data, "--id", "p", "--classes", "neg,pos").returncode == 0
    proc = cli("ingest", "--data-dir", data, "--project", "p", str(items_file))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lfs = tmp_path / "lfs.py"
    lfs.write_text(LFS)
    assert cli("lfs", "--data-dir", data, "--project", "p", "--file", str(lfs)).returncode == 0
    src = tmp_path / "assertions.py"
    src.write_text(SOURCE)
    proc = cli("assertions", "--data-dir", data, "--project", "p", "--file", str(src))
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = cli("assertions", "--data-dir", data, "--project", "p", "--consistency", json.dumps(TRACK))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["name"], r["round"]) for r in rows] == [("quiet_but_positive", None), ("track", None)]
    proc = cli("round", "--data-dir", data, "--project", "p")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "track" in json.loads(proc.stdout)["metrics"]["assertions"]
    proc = cli("assertions", "--data-dir", data, "--project", "p")
    rows = {r["name"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert rows["track"]["round"] == 1 and rows["track"]["items"] > 0
    proc = cli("assertions", "--data-dir", data, "--project", "p", "--consistency", "{oops")
    assert proc.returncode == 2 and "not JSON" in proc.stderr
    proc = cli("assertions", "--data-dir", data, "--project", "p",
               "--consistency", json.dumps({**TRACK, "id_column": "nope"}))
    assert proc.returncode == 2 and "no item has a column 'nope'" in proc.stderr
