"""Answers made in Label Studio, on both stores: appended without a lease, idempotent, counted;
retractions; and the lease path still needs its lease."""

from __future__ import annotations

import pytest

from api.service.annotate import AnnotationIn, submit_annotations, submit_external
from api.service.rounds import human_labels, load_pool
from labeling.errors import Conflict, InvalidInput, NotFound
from tests.store_contract import T0, make_project


def ext(item, kind="label", label=1, key=None):
    return AnnotationIn(item, None, kind, label if kind == "label" else None, idempotency_key=key)


def test_external_answers_append_once_and_count(either_store):
    store = either_store
    pid = make_project(store, n_items=4)
    got = submit_external(store, pid, [("ls:1", ext("i0", key="k0")), ("ls:2", ext("i0", label=0, key="k1")),
                                       ("ls:1", ext("i1", kind="skip", key="k2"))], now=T0)
    assert [r.duplicate for r in got] == [False, False, False]
    assert [r.annotation.lease_id for r in got] == [None, None, None]
    assert store.count_labels(pid) == 2
    again = submit_external(store, pid, [("ls:1", ext("i0", key="k0"))], now=T0 + 1)
    assert again[0].duplicate and store.count_labels(pid) == 2
    assert len(store.annotations(pid)) == 3
    # i0 has its label: a lease no longer offers it; i2, i3 (and i1, only skipped) still come
    lease = store.lease(pid, "bob", 10, n_eval=0, now=T0, ttl=60, lease_id="lease-b")
    assert "i0" not in lease.item_ids and {"i2", "i3"} <= set(lease.item_ids)


def test_retraction_withdraws_in_consensus(either_store):
    store = either_store
    pid = make_project(store, n_items=3)
    submit_external(store, pid, [("ls:1", ext("i0", label=1, key="a")),
                                 ("ls:1", ext("i0", label=0, key="b")),  # a correction
                                 ("ls:1", ext("i1", label=1, key="c"))], now=T0)
    human, _, n = human_labels(load_pool(store, pid), store.annotations(pid))
    assert human.tolist() == [0, 1, -1] and n.tolist() == [1, 1, 0]
    submit_external(store, pid, [("ls:1", ext("i1", kind="retract", key="d"))], now=T0 + 1)
    human, _, n = human_labels(load_pool(store, pid), store.annotations(pid))
    assert human.tolist() == [0, -1, -1] and n.tolist() == [1, 0, 0]
    assert store.count_labels(pid) == 3  # the log keeps every label event


def test_external_answers_are_checked_first(either_store):
    store = either_store
    pid = make_project(store, n_items=2)
    with pytest.raises(NotFound, match="nope"):
        submit_external(store, pid, [("ls:1", ext("i0", key="x")), ("ls:1", ext("nope"))], now=T0)
    with pytest.raises(InvalidInput, match="lease_id must be None"):
        submit_external(store, pid, [("ls:1", AnnotationIn("i0", "lease-1", "label", 1))], now=T0)
    with pytest.raises(InvalidInput, match="kind must be one of"):
        submit_external(store, pid, [("ls:1", ext("i0", kind="maybe"))], now=T0)
    assert store.annotations(pid) == []  # nothing half-stored


def test_the_lease_path_still_needs_a_lease(either_store):
    store = either_store
    pid = make_project(store, n_items=2)
    with pytest.raises(InvalidInput, match="lease_id must be a lease id"):
        submit_annotations(store, pid, "ann", [AnnotationIn("i0", None, "label", 1)], now=T0)
    with pytest.raises(InvalidInput, match="kind must be one of"):
        submit_annotations(store, pid, "ann", [AnnotationIn("i0", "lease-x", "retract")], now=T0)
    with pytest.raises(Conflict):
        submit_annotations(store, pid, "ann", [AnnotationIn("i0", "lease-x", "label", 1)], now=T0)
