"""The lease route's batch (``lease_answers``) on both stores: answers in order, a request refused
alone comes back as its error with nothing of it written, and the answer carries the project's
render fields."""

from __future__ import annotations

import json

import numpy as np

from api.schemas import lease_json
from api.service.annotate import lease_answers
from api.service.projects import create_project
from api.service.render import LeaseRenderer
from api.storage.records import Item
from labeling.errors import InvalidInput, NotFound


def test_a_batch_answers_each_request_and_refuses_bad_ones_alone(either_store):
    store = either_store
    for pid in ("p", "q"):
        create_project(store, pid, ["neg", "pos"], now=0.0, settings={"eval_fraction": 0.0})
        store.add_items(pid, [Item(f"{pid}{k}", text=f"item {k}") for k in range(6)],
                        on_conflict="reject", rand_keys=np.linspace(0, 1, 6))
    got = lease_answers(store, [("p", "ann", 2), ("nope", "ann", 2), ("q", "ann", 3),
                                ("p", "bob", 0), ("p", "bob", None)],
                        now=1.0, rng=np.random.default_rng(0), renderer=LeaseRenderer())
    first, unknown, other, bad_size, default = got
    assert isinstance(unknown, NotFound) and "nope" in str(unknown)
    assert isinstance(bad_size, InvalidInput) and "size" in str(bad_size)
    assert [len(a["items"]) for a in (first, other, default)] == [2, 3, 4]
    assert {it["id"][0] for it in other["items"]} == {"q"}
    assert first["classes"] == [{"name": "neg", "description": ""},
                                {"name": "pos", "description": ""}]
    assert (first["show_suggestions"], first["exhausted"]) == (False, False)
    assert all("suggestion" not in it for it in first["items"])
    # nothing of the refused requests was written: bob holds only his default-size lease
    held = store.leases("p", "bob", now=1.5)
    assert [x.id for x in held] == [default["lease_id"]]
    taken = {it["id"] for a in (first, default) for it in a["items"]}
    assert len(taken) == 6  # p's six items, none handed out twice


def test_lease_json_writes_what_orjson_cannot_through_the_model():
    doc = {"lease_id": "lease-1", "project_id": "p", "annotator": "a", "expires_at": 2.0,
           "exhausted": False, "classes": [], "guidelines_version": 1, "show_suggestions": False,
           "items": [{"id": "x", "text": None, "features": {"f": float("nan")},
                      "meta": {"big": 2**70}, "reasons": {}}]}
    got = json.loads(lease_json(doc))
    assert got["items"][0]["meta"] == {"big": 2**70}
    assert got["items"][0]["features"] == {"f": None}
    assert "suggestion" not in got["items"][0]
    assert json.loads(lease_json([doc])) == [got]
