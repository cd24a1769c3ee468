"""Redundant labeling over real HTTP against a real ``labelloop serve`` process, on each store."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def client(served_client):  # tests/conftest.py: a real server on each store
    return served_client


def lease(c, who, size=10):
    r = c.post("/projects/p/leases", json={"annotator": who, "size": size})
    assert r.status_code == 201, r.text
    return r.json()


def submit(c, who, lease_body, labels):
    anns = [{"item_id": it["id"], "lease_id": lease_body["lease_id"], "label": labels[it["id"]],
             "idempotency_key": f"{who}-{it['id']}"} for it in lease_body["items"]]
    r = c.post("/projects/p/annotations", json={"annotator": who, "annotations": anns})
    assert r.status_code == 200, r.text
    return r.json()


def test_two_annotators_both_get_the_redundant_items_and_export_uses_agreement(client):
    c = client
    r = c.post("/projects", json={"id": "p", "classes": ["neg", "pos"], "settings": {
        "eval_fraction": 0.0, "retrain_every": 10**6, "redundancy_fraction": 1.0, "redundancy_k": 2,
        "min_agreement": 0.0}})  # no disagreement routing here (tests/api/test_review_http.py)
    assert r.status_code == 201, r.text
    assert r.json()["settings"]["redundancy_k"] == 2
    items = [{"id": f"it{k}", "text": f"item {k}"} for k in range(3)]
    assert c.post("/projects/p/items", json={"items": items}).status_code == 201

    alice, bob = lease(c, "alice"), lease(c, "bob")
    ids = ["it0", "it1", "it2"]
    assert sorted(i["id"] for i in alice["items"]) == ids
    assert sorted(i["id"] for i in bob["items"]) == ids  # both hold every item at once
    again = lease(c, "alice")
    assert again["items"] == [] and again["exhausted"] is False  # never twice to alice
    carol = lease(c, "carol")
    assert carol["items"] == [] and carol["exhausted"] is False  # a hold may still expire

    submit(c, "alice", alice, {"it0": "pos", "it1": "neg", "it2": "pos"})
    stats = c.get("/projects/p/stats").json()["queue"]
    assert (stats["done"], stats["leased"]) == (0, 3)  # one label of two each
    replay = submit(c, "alice", alice, {"it0": "pos", "it1": "neg", "it2": "pos"})
    assert all(x["duplicate"] for x in replay["results"])
    submit(c, "bob", bob, {"it0": "pos", "it1": "pos", "it2": "pos"})
    stats = c.get("/projects/p/stats").json()["queue"]
    assert (stats["done"], stats["open"], stats["leased"]) == (3, 0, 0)
    assert lease(c, "carol")["exhausted"] is True

    rows = {row["id"]: row for row in map(json.loads, c.get("/projects/p/export").text.splitlines())}
    assert (rows["it0"]["source"], rows["it0"]["label"], rows["it0"]["agreement"]) == ("human", "pos", 1.0)
    assert rows["it0"]["n_annotators"] == 2
    # alice and bob disagree on it1: no agreed human label, so a model (none yet) speaks for it
    assert rows["it1"]["source"] != "human" and rows["it1"]["agreement"] == 0.5
    assert rows["it1"]["n_annotators"] == 2


def test_bad_redundancy_settings_are_refused_by_name(client):
    c = client
    assert c.post("/projects", json={"id": "p", "classes": ["a", "b"]}).status_code == 201
    for bad, name in (({"redundancy_k": 1}, "redundancy_k"), ({"redundancy_k": "2"}, "redundancy_k"),
                      ({"redundancy_fraction": 1.5}, "redundancy_fraction"),
                      ({"redundancy_fraction": True}, "redundancy_fraction")):
        r = c.patch("/projects/p/settings", json=bad)
        assert r.status_code == 422 and name in r.text, r.text
    assert c.get("/projects/p").json()["settings"]["redundancy_fraction"] == 0.0  # nothing stored


def test_resume_and_per_annotator_idempotency_keys_over_http(client):
    """A restarted tool gets its live leases back; bob's key is not alice's; the same key with
    another payload is a 409 naming it and stores nothing."""
    c = client
    assert c.post("/projects", json={"id": "p", "classes": ["neg", "pos"], "settings": {
        "eval_fraction": 0.0, "retrain_every": 10**6}}).status_code == 201
    items = [{"id": f"it{k}", "text": f"item {k}"} for k in range(6)]
    assert c.post("/projects/p/items", json={"items": items}).status_code == 201
    alice, bob = lease(c, "alice", 2), lease(c, "bob", 2)
    a0, a1 = (i["id"] for i in alice["items"])
    b0 = bob["items"][0]["id"]
    live = c.get("/projects/p/leases", params={"annotator": "alice"})
    assert live.status_code == 200, live.text
    assert [(x["lease_id"], sorted(i["id"] for i in x["items"])) for x in live.json()] == [
        (alice["lease_id"], sorted([a0, a1]))]
    assert {i["id"]: i["text"] for i in live.json()[0]["items"]}[a0] == f"item {a0[2:]}"

    def one(who, body, item, value, key="k"):
        return c.post("/projects/p/annotations", json={"annotator": who, "annotations": [
            {"item_id": item, "lease_id": body["lease_id"], "label": value, "idempotency_key": key}]})

    assert one("bob", bob, b0, "neg").json()["results"][0]["duplicate"] is False
    mine = one("alice", alice, a0, "pos")
    assert mine.status_code == 200 and mine.json()["results"][0]["duplicate"] is False
    assert one("alice", alice, a0, "pos").json()["results"][0]["duplicate"] is True
    clash = one("alice", alice, a1, "neg")
    assert clash.status_code == 409 and "'k'" in clash.json()["detail"], clash.text
    stored = c.get("/projects/p/annotations").json()
    assert [(a["annotator"], a["item_id"], a["label"]) for a in stored] == [("bob", b0, 0), ("alice", a0, 1)]
    assert [[i["id"] for i in x["items"]] for x in
            c.get("/projects/p/leases", params={"annotator": "alice"}).json()] == [[a1]]
    assert c.get("/projects/p/leases").status_code == 422  # the annotator is required
