"""Gold items mixed into leases, and guideline versions on answers, over real HTTP against a
real ``labelloop serve`` process on each store."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from api.client import Client
from tests.server import ROOT

CLASSES = ["neg", "pos"]
ITEM_KEYS = {"id", "text", "features", "meta", "reasons"}


@pytest.fixture
def client(served_client):  # tests/conftest.py: a real server on each store
    return served_client


def truth(item_id: str) -> int:
    return int(item_id[2:]) % 2


def project(c: httpx.Client, n_items: int, **settings) -> None:
    r = c.post("/projects", json={"id": "p", "classes": CLASSES, "settings": {
        "eval_fraction": 0.0, "retrain_every": 10**6, "batch_size": 10, **settings}})
    assert r.status_code == 201, r.text
    items = [{"id": f"it{k}", "text": f"item number {k}"} for k in range(n_items)]
    assert c.post("/projects/p/items", json={"items": items}).status_code == 201


def lease(c: httpx.Client, who: str) -> dict:
    r = c.post("/projects/p/leases", json={"annotator": who, "size": 10})
    assert r.status_code == 201, r.text
    return r


def answer(c: httpx.Client, who: str, body: dict, label=truth) -> None:
    anns = [{"item_id": it["id"], "lease_id": body["lease_id"], "label": label(it["id"])}
            for it in body["items"]]
    r = c.post("/projects/p/annotations", json={"annotator": who, "annotations": anns})
    assert r.status_code == 200, r.text


def test_gold_items_come_at_the_rate_once_per_annotator_and_unmarked(client):
    c = client
    bad = c.patch("/projects/p", json={})
    assert bad.status_code == 404
    project(c, 400)
    for wrong in (0.9, -0.1, "0.2", None, True):
        r = c.patch("/projects/p/settings", json={"gold_rate": wrong})
        assert r.status_code == 422 and "gold_rate" in r.text, r.text
    r = c.patch("/projects/p/settings", json={"gold_rate": 0.2})
    assert r.status_code == 200 and r.json()["settings"]["gold_rate"] == 0.2
    gold = {f"it{k}": CLASSES[truth(f"it{k}")] for k in range(0, 400, 5)}  # 80 items
    r = c.post("/projects/p/gold", json={"labels": gold})
    assert r.status_code == 200 and r.json()["gold"] == 80, r.text
    assert c.get("/projects/p/stats").json()["queue"]["gold"] == 80

    seen: dict[str, list[str]] = {}
    places = []
    for who in ("ann0", "ann1", "ann2"):
        for _ in range(10):
            r = lease(c, who)
            assert "gold" not in r.text  # nothing in the body names gold
            body = r.json()
            assert len(body["items"]) == 10
            shapes = {json.dumps(it["reasons"], sort_keys=True) for it in body["items"]}
            assert len(shapes) == 1  # gold items have the pool-order items' reasons
            for place, it in enumerate(body["items"]):
                assert set(it) == ITEM_KEYS
                seen.setdefault(who, []).append(it["id"])
                if it["id"] in gold:
                    places.append(place)
            # ann2 answers every gold item wrong
            answer(c, who, body, (lambda i: 1 - truth(i)) if who == "ann2" else truth)
    for who, ids in seen.items():
        got = [i for i in ids if i in gold]
        assert len(got) == len(set(got)), f"{who} got a gold item twice"
        assert 5 <= len(got) <= 35, (who, len(got))  # 100 items at 0.2: 20 +- 4 (binomial)
    assert len(set(places)) > 3  # gold items are not always in one place
    # a gold item goes to every annotator; an ordinary item (required 1) to one
    ordinary = [i for ids in seen.values() for i in ids if i not in gold]
    assert len(ordinary) == len(set(ordinary))

    people = {a["annotator"]: a for a in c.get("/projects/p/annotators").json()}
    for who, ids in seen.items():
        n = sum(i in gold for i in ids)
        assert people[who]["gold_accuracy"] == {"value": 0.0 if who == "ann2" else 1.0,
                                                "n_items": n}
    rows = {json.loads(x)["id"]: json.loads(x) for x in c.get("/projects/p/export").text.splitlines()}
    assert all(rows[i]["label"] == gold[i] and rows[i]["gold"] for i in gold)  # ann2's never count

    # unmarked, a gold item nobody answered is an ordinary item again, leased once
    answered = {i for ids in seen.values() for i in ids}
    back = sorted(set(gold) - answered)[:3]
    r = c.post("/projects/p/gold", json={"unmark": back})
    assert r.status_code == 200 and r.json() == {"gold": 77, "marked": 0, "unmarked": 3}
    assert c.get("/projects/p/stats").json()["queue"]["gold"] == 77
    # new redundancy settings draw every item's answers again; gold items stay open to everyone
    for fraction in (0.5, 0.0):
        r = c.patch("/projects/p/settings", json={"gold_rate": 0.0,
                                                  "redundancy_fraction": fraction})
        assert r.status_code == 200
        assert c.get("/projects/p/stats").json()["queue"]["gold"] == 77
    later: list[str] = []
    while True:
        body = lease(c, "ann3").json()
        if not body["items"]:
            break
        later += [it["id"] for it in body["items"]]
        answer(c, "ann3", body)
    assert set(back) <= set(later) and not set(later) & (set(gold) - set(back))
    assert lease(c, "ann4").json()["exhausted"] is True  # gold items do not keep anyone busy


def test_answers_record_the_guidelines_version_and_agreement_shows_each(client):
    c = client
    project(c, 10, redundancy_fraction=1.0, redundancy_k=2)
    r = c.patch("/projects/p", json={"guidelines": "Spam sells something."})
    assert r.status_code == 200, r.text
    assert (r.json()["guidelines"], r.json()["settings"]["guidelines_version"]) == (
        "Spam sells something.", 2)
    again = c.patch("/projects/p", json={"guidelines": "Spam sells something."})
    assert again.json()["settings"]["guidelines_version"] == 2  # the same text: no new version

    for who in ("alice", "bob"):  # under version 2 they agree on everything
        body = lease(c, who).json()
        assert body["guidelines_version"] == 2
        answer(c, who, body)
    for bad, name in (({"guidelines": 5}, "guidelines"),
                      ({"guidelines": "x", "settings": {"guidelines_version": 0}},
                       "guidelines_version"),
                      ({"guidelines": "x", "color": "red"}, "color")):
        r = c.patch("/projects/p", json=bad)
        assert r.status_code == 422 and name in r.text, r.text
    assert c.get("/projects/p").json()["guidelines"] == "Spam sells something."  # nothing stored
    with Client(str(c.base_url)) as api:  # the Python client's way, the version given
        got = api.update_guidelines("p", "Spam sells or links.", guidelines_version=7)
    assert got["settings"]["guidelines_version"] == 7
    more = [{"id": f"new{k}", "text": f"another item {k}"} for k in range(10)]
    assert c.post("/projects/p/items", json={"items": more}).status_code == 201
    for who in ("carol", "dave"):  # under version 7 dave says "pos" to everything
        body = lease(c, who).json()
        assert sorted(it["id"] for it in body["items"]) == sorted(m["id"] for m in more)
        answer(c, who, body, (lambda i: 1) if who == "dave" else (lambda i: int(i[3:]) % 2))

    events = c.get("/projects/p/annotations").json()
    assert {(e["annotator"], e["guidelines_version"]) for e in events} == {
        ("alice", 2), ("bob", 2), ("carol", 7), ("dave", 7)}
    r = c.get("/projects/p/agreement", params={"by": "guidelines_version"})
    assert r.status_code == 200, r.text
    versions = r.json()["versions"]
    assert [v["guidelines_version"] for v in versions] == [2, 7]
    assert [v["n_items"] for v in versions] == [10, 10]
    assert versions[0]["krippendorff_alpha"]["value"] == pytest.approx(1.0)
    assert versions[1]["krippendorff_alpha"]["value"] < 0.3
    assert versions[1]["pairs"][0]["annotators"] == ["carol", "dave"]
    assert c.get("/projects/p/agreement").json()["versions"] is None
    assert c.get("/projects/p/agreement", params={"by": "shoe"}).status_code == 422
    rows = {json.loads(x)["id"]: json.loads(x) for x in c.get("/projects/p/export").text.splitlines()}
    assert {rows[i]["guidelines_version"] for i in rows if i.startswith("new")} == {7}
    assert {rows[f"it{k}"]["guidelines_version"] for k in range(10)} == {2}
    out = subprocess.run([sys.executable, "-m", "api.cli", "quality", "--project", "p",
                          "--by-version", *c.cli_args], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["agreement"]["versions"] == versions
