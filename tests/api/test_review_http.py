"""Disagreement routing, the review queue, corrections and the consensus in export, over real HTTP
against a real ``labelloop serve`` process, on each store; then annotators and a reviewer leasing
at once."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter

import httpx
import pytest

from tests.server import Server

ROUTED = {"eval_fraction": 0.0, "retrain_every": 10**6, "redundancy_fraction": 1.0,
          "redundancy_k": 2, "max_required": 3, "min_agreement": 1.0}


@pytest.fixture
def client(served_client):  # tests/conftest.py: a real server on each store
    return served_client


def make_project(c, n, **settings):
    r = c.post("/projects", json={"id": "p", "classes": ["neg", "pos"],
                                  "settings": {**ROUTED, **settings}})
    assert r.status_code == 201, r.text
    items = [{"id": f"it{k}", "text": f"item {k}"} for k in range(n)]
    assert c.post("/projects/p/items", json={"items": items}).status_code == 201


def lease(c, who, size=10, review=False):
    r = c.post(f"/projects/p/{'review/' if review else ''}leases",
               json={"annotator": who, "size": size})
    assert r.status_code == 201, r.text
    return r.json()


def submit(c, who, body, labels, kind="label", comment=""):
    anns = [{"item_id": i, "lease_id": body["lease_id"] if body else None, "label": lab,
             "kind": kind, "comment": comment} for i, lab in labels.items()]
    return c.post("/projects/p/annotations", json={"annotator": who, "annotations": anns})


def export(c):
    return {row["id"]: row for row in map(json.loads, c.get("/projects/p/export").text.splitlines())}


def ids(body):
    return sorted(i["id"] for i in body["items"])


def test_disagreement_goes_to_a_third_annotator_then_to_review_and_the_decision_is_the_label(client):
    c = client
    make_project(c, 3)
    alice, bob = lease(c, "alice"), lease(c, "bob")
    assert submit(c, "alice", alice, {"it0": "pos", "it1": "pos", "it2": "pos"}).status_code == 200
    assert submit(c, "bob", bob, {"it0": "pos", "it1": "neg", "it2": "pos"}).status_code == 200
    # it1 is disputed: it asks for a third annotator, never alice or bob again
    assert lease(c, "alice")["items"] == [] and lease(c, "bob")["items"] == []
    carol = lease(c, "carol")
    assert ids(carol) == ["it1"]
    assert c.get("/projects/p/stats").json()["queue"]["review"] == 0
    assert submit(c, "carol", carol, {"it1": "neg"}).status_code == 200
    # still disputed at max_required (2 to 1): the review queue, not the pool
    assert lease(c, "dave")["items"] == []
    assert c.get("/projects/p/stats").json()["queue"]["review"] == 1
    assert lease(c, "alice", review=True)["items"] == []  # she answered it
    rita = lease(c, "rita", review=True)
    [item] = rita["items"]
    assert item["id"] == "it1" and item["review"]["why"] == "disagreement"
    assert item["review"]["annotators"] == 3 and item["review"]["agreement"] == pytest.approx(2 / 3)
    assert [(a["annotator"], a["label"], a["kind"]) for a in item["answers"]] == [
        ("alice", "pos", "label"), ("bob", "neg", "label"), ("carol", "neg", "label")]
    assert rita["classes"] == [{"name": "neg", "description": ""},
                               {"name": "pos", "description": ""}]
    assert lease(c, "sam", review=True)["items"] == []  # rita holds it
    r = submit(c, "rita", rita, {"it1": "pos"}, kind="review")
    assert r.status_code == 422 and "comment" in r.text  # a decision says why
    r = submit(c, "rita", rita, {"it1": "pos"}, kind="review", comment="the guidelines: pos")
    assert r.status_code == 200, r.text
    rows = export(c)
    assert (rows["it1"]["label"], rows["it1"]["source"], rows["it1"]["adjudicated"]) == (
        "pos", "human", True)
    assert rows["it1"]["confidence"] == 1.0 and rows["it1"]["n_annotators"] == 3
    assert rows["it0"]["adjudicated"] is False and rows["it0"]["agreement"] == 1.0
    log = c.get("/projects/p/annotations").json()
    assert [(a["annotator"], a["kind"], a["comment"]) for a in log if a["item_id"] == "it1"][-1] == (
        "rita", "review", "the guidelines: pos")
    assert lease(c, "sam", review=True)["exhausted"] is True


def test_a_review_decision_only_on_an_item_of_the_review_queue(client):
    c = client
    make_project(c, 1)
    rita = lease(c, "rita")  # a reviewer leasing the pool answers as one more annotator
    assert ids(rita) == ["it0"]
    r = submit(c, "rita", rita, {"it0": "pos"}, kind="review", comment="looks positive")
    assert r.status_code == 422 and "not in the review queue" in r.text
    assert c.get("/projects/p/annotations").json() == []
    assert submit(c, "rita", rita, {"it0": "pos"}).status_code == 200


def test_a_correction_replaces_the_answer_and_can_reopen_the_item(client):
    c = client
    make_project(c, 2)
    alice, bob = lease(c, "alice"), lease(c, "bob")
    submit(c, "alice", alice, {"it0": "pos", "it1": "neg"})
    submit(c, "bob", bob, {"it0": "pos", "it1": "neg"})
    assert lease(c, "carol")["exhausted"] is True
    r = submit(c, "carol", None, {"it0": "neg"}, kind="correct")
    assert r.status_code == 409  # carol never answered it0
    r = submit(c, "bob", bob, {"it0": "neg"}, kind="correct")
    assert r.status_code == 422 and "lease_id" in r.text
    r = submit(c, "bob", None, {"it0": "neg"}, kind="correct")
    assert r.status_code == 200, r.text
    assert export(c)["it0"]["agreement"] == 0.5  # bob's answer is now "neg"
    carol = lease(c, "carol")  # the correction made it0 disputed: one more annotator
    assert ids(carol) == ["it0"] and lease(c, "bob")["items"] == []
    submit(c, "carol", carol, {"it0": "pos"})
    r = submit(c, "alice", None, {"it1": "pos"}, kind="correct")
    assert r.status_code == 200
    rows = export(c)
    assert (rows["it0"]["label"], rows["it0"]["n_annotators"]) == ("pos", 3)


def test_bad_review_settings_are_refused_by_name(client):
    c = client
    make_project(c, 1)
    for bad in ({"max_required": 0}, {"min_agreement": 1.5}, {"review_top_k": -1},
                {"max_required": "3"}):
        r = c.patch("/projects/p/settings", json=bad)
        assert r.status_code in (400, 422) and next(iter(bad)) in r.text, r.text
    assert c.get("/projects/p").json()["settings"]["max_required"] == 3


def test_annotators_and_a_reviewer_leasing_at_once(client):
    """Four annotators answer at random (so many items are disputed) while a reviewer drains the
    review queue, all at once: no one gets an item twice, every item ends agreed or decided."""
    c = client
    n = 30
    make_project(c, n, batch_size=4)
    errors: list[str] = []
    stop = threading.Event()

    def annotator(name: str, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=c.base_url, timeout=60) as mine:
            while not stop.is_set():
                got = lease(mine, name, 4)
                if got["exhausted"]:
                    return
                if not got["items"]:
                    time.sleep(0.05)  # the rest is held by others or under review
                    continue
                labels = {i["id"]: rng.choice(["neg", "pos"]) for i in got["items"]}
                r = submit(mine, name, got, labels)
                if r.status_code != 200:
                    errors.append(f"{name}: {r.status_code} {r.text}")
                    return

    def reviewer() -> None:
        with httpx.Client(base_url=c.base_url, timeout=60) as mine:
            while not stop.is_set():
                got = lease(mine, "rita", 3, review=True)
                for it in got["items"]:
                    if it["review"]["why"] != "disagreement" or len(it["answers"]) < 3:
                        errors.append(f"review item {it['id']}: {it['review']} {it['answers']}")
                if not got["items"]:
                    time.sleep(0.05)
                else:
                    r = submit(mine, "rita", got, {i["id"]: "pos" for i in got["items"]},
                               kind="review", comment="decided")
                    if r.status_code != 200:
                        errors.append(f"rita: {r.status_code} {r.text}")

    workers = [threading.Thread(target=annotator, args=(f"a{k}", k)) for k in range(4)]
    for t in workers:
        t.start()
    rev = threading.Thread(target=reviewer)
    rev.start()
    for t in workers:
        t.join(timeout=240)
    deadline = time.monotonic() + 60
    while c.get("/projects/p/stats").json()["queue"]["review"] and time.monotonic() < deadline:
        time.sleep(0.1)  # the reviewer drains what the annotators left
    stop.set()
    rev.join(timeout=60)
    assert not errors, errors[:3]
    log = c.get("/projects/p/annotations").json()
    pairs = Counter((a["item_id"], a["annotator"]) for a in log)
    assert max(pairs.values()) == 1  # nobody answered an item twice, the reviewer included
    rows = export(c)
    for item_id, row in rows.items():
        answers = [a for a in log if a["item_id"] == item_id and a["kind"] == "label"]
        labels = {a["label"] for a in answers}
        if row["adjudicated"]:
            assert len(answers) == 3 and len(labels) == 2 and row["label"] == "pos"
        else:  # agreed by the first two (a third answer follows only a disagreement)
            assert len(labels) == 1 and len(answers) == 2, (item_id, answers)
    assert sum(r["adjudicated"] for r in rows.values()) > 0


TOKENS = {"rita": "reviewer-token-0123456789", "alice": "alice-token-0123456789",
          "admin": "admin-token-0123456789"}


def test_the_review_queue_and_decisions_need_the_reviewer_role(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps([
        {"token": TOKENS["rita"], "name": "rita", "role": "reviewer", "projects": ["p"]},
        {"token": TOKENS["alice"], "name": "alice", "role": "annotator", "projects": ["p"]}]))
    srv = Server(tmp_path / "data", env={"LABELLOOP_TOKENS_FILE": str(tokens),
                                         "LABELLOOP_ADMIN_TOKEN": TOKENS["admin"]}).start()

    def as_(who):
        return httpx.Client(base_url=srv.url, timeout=60,
                            headers={"authorization": f"Bearer {TOKENS[who]}"})

    try:
        with as_("admin") as c:
            make_project(c, 2, redundancy_fraction=0.0)
        with as_("alice") as c:
            r = c.post("/projects/p/review/leases", json={"annotator": "alice"})
            assert r.status_code == 403 and "reviewer" in r.text
            mine = lease(c, "alice", 1)
            [first] = ids(mine)
            r = submit(c, "alice", mine, {first: "pos"}, kind="review", comment="mine")
            assert r.status_code == 403 and "reviewer" in r.text
            assert submit(c, "alice", mine, {first: "pos"}).status_code == 200
        with as_("rita") as c:
            assert lease(c, "rita", review=True)["items"] == []  # nothing is under review
            r = c.post("/projects/p/review/leases", json={"annotator": "sam"})
            assert r.status_code == 403  # a reviewer acts only as themselves
            got = lease(c, "rita")  # and can annotate like anyone
            assert ids(got) == sorted({"it0", "it1"} - {first})
            assert c.get("/projects/p/export").status_code == 403  # not an engineer
    finally:
        srv.stop()


def test_the_python_client_corrects_and_reviews(client):
    from api.client import Client, Conflict

    make_project(client, 1)
    with Client(str(client.base_url)) as api:
        for who, label in (("alice", "pos"), ("bob", "pos")):
            with api.lease("p", who) as got:
                api.submit("p", who, [got.answer(got.items[0], label=label)])
        with pytest.raises(Conflict):
            api.correct("p", "carol", "it0", "neg")  # carol never answered it0
        api.correct("p", "bob", "it0", "neg")
        with api.lease("p", "carol") as got:
            api.submit("p", "carol", [got.answer("it0", label="neg")])
        with api.review_lease("p", "rita") as got:
            [item] = got.items
            assert [a["label"] for a in item["answers"]] == ["pos", "pos", "neg", "neg"]
            assert [a["kind"] for a in item["answers"]] == ["label", "label", "correct", "label"]
            api.submit("p", "rita", [got.answer(item, label="neg", kind="review",
                                                comment="bob's correction is right")])
    assert export(client)["it0"]["adjudicated"] is True
