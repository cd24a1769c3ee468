"""Quality use cases on both stores (SQLite and a real Redis): the round's label-error ranking,
gold items (marking, the lock, training on the known answer), agreement and annotators."""

from __future__ import annotations

import numpy as np
import pytest

from api.service import quality
from api.service.annotate import AnnotationIn, lease_batch, submit_annotations
from api.service.export import export_rows
from api.service.gold import list_gold, mark_gold
from api.service.ingest import ingest_records
from api.service.projects import create_project
from api.service.rounds import run_round
from labeling.errors import Conflict, InvalidInput, NotFound
from labeling.ingest import Record
from workers.executor import InProcessExecutor

WORDS = {0: ["awful", "bad", "poor"], 1: ["great", "good", "fine"]}
N = 60


def setup(store, wrong: set[str] = frozenset()):
    """60 items (the first 40 carry a file label), two annotators label all; item ids in
    ``wrong`` get the wrong class from both."""
    create_project(store, "p", ["neg", "pos"], now=0.0, settings={
        "eval_fraction": 0.0, "redundancy_fraction": 1.0, "redundancy_k": 2})
    records = [Record(f"it{k}", f"{WORDS[k % 2][k % 3]} thing {k}", gold=k % 2 if k < 40 else None)
               for k in range(N)]
    ingest_records(store, "p", records, rng=np.random.default_rng(0), now=0.0)
    rng = np.random.default_rng(1)
    for who in ("ann", "bob"):
        while (lease := lease_batch(store, "p", who, 20, now=1.0, rng=rng)).items:
            submit_annotations(store, "p", who, [
                AnnotationIn(li.item.id, lease.id, "label",
                             (int(li.item.id[2:]) % 2) ^ (li.item.id in wrong))
                for li in lease.items], now=2.0)


def test_round_ranks_labels_and_gold_trains_on_the_known_answer(either_store):
    store = either_store
    setup(store, wrong={"it3", "it4"})
    marked = mark_gold(store, "p", labels={"it4": "neg"}, now=3.0, owner="eng")
    assert marked == {"gold": 1, "marked": 1, "unmarked": 0}
    rnd, _ = run_round(store, "p", InProcessExecutor(), now=4.0)
    assert rnd.metrics["label_errors"]["ranked"] == N - 1  # the gold item is not ranked
    errors = quality.label_errors(store, "p", limit=N)
    assert errors["round"] == 1 and errors["n_ranked"] == N - 1
    ids = [x["id"] for x in errors["items"]]
    assert "it4" not in ids
    assert ids.index("it3") < 5  # both annotators gave it the wrong class; the model disagrees
    assert errors["items"][ids.index("it3")]["suggested"] == "pos"
    rows = {r["id"]: r for r in export_rows(store, "p")}
    assert rows["it4"]["gold"] and rows["it4"]["label"] == "neg"  # the answers said "pos"
    assert rows["it4"]["label_quality"] is None and rows["it3"]["label_quality"] < 0.5


def test_gold_from_file_labels_and_refusals_store_nothing(either_store):
    store = either_store
    setup(store)
    with pytest.raises(InvalidInput, match="it50"):  # no label in its file
        mark_gold(store, "p", from_file=True, ids=["it1", "it50"], now=3.0, owner="eng")
    with pytest.raises(NotFound, match="nope"):
        mark_gold(store, "p", from_file=True, ids=["it1", "nope"], now=3.0, owner="eng")
    with pytest.raises(InvalidInput, match="from_file"):
        mark_gold(store, "p", labels={"it1": 1}, ids=["it1"], now=3.0, owner="eng")
    assert list_gold(store, "p") == []
    assert mark_gold(store, "p", from_file=True, ids=["it1", "it2"], now=3.0,
                     owner="eng")["gold"] == 2
    assert list_gold(store, "p") == [{"id": "it1", "label": "pos"}, {"id": "it2", "label": "neg"}]
    assert mark_gold(store, "p", from_file=True, now=3.0, owner="eng")["gold"] == 40


def test_a_gold_change_under_way_refuses_a_second(either_store):
    store = either_store
    setup(store)
    assert store.acquire_lock("gold:p", "other-replica", 60.0, 3.0) is not None
    with pytest.raises(Conflict, match="under way"):
        mark_gold(store, "p", labels={"it1": "pos"}, now=3.0, owner="eng")
    assert list_gold(store, "p") == []
    store.release_lock("gold:p", "other-replica")
    assert mark_gold(store, "p", labels={"it1": "pos"}, now=4.0, owner="eng")["gold"] == 1


def test_agreement_and_annotators_read_the_log_of_either_store(either_store):
    store = either_store
    setup(store, wrong={"it3"})
    got = quality.agreement(store, "p")
    assert got["n_items"] == N and got["fleiss_kappa"]["ratings_per_item"] == 2
    assert got["pairs"] == [{"annotators": ["ann", "bob"], "cohen_kappa": 1.0, "n_items": N}]
    people = quality.annotators(store, "p")
    assert {p["annotator"] for p in people} == {"ann", "bob"}
    assert all(p["quality"]["value"] is None and p["quality_note"] for p in people)  # no round
    assert quality.label_errors(store, "p")["note"]
    with pytest.raises(InvalidInput, match="limit"):
        quality.label_errors(store, "p", limit=0)
