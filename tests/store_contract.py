"""The store contract: every backend runs these tests (see tests/api/test_store_*.py).

A backend test module subclasses :class:`StoreContract` and provides a ``store`` fixture that
yields an empty store.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from api.storage.records import (
    Annotation,
    AssertionRecord,
    ClassSpec,
    Item,
    Job,
    LeaseRequest,
    LFRecord,
    Project,
    ProjectSettings,
    Round,
)
from labeling.errors import Conflict, InvalidInput, NotFound, StaleToken

T0 = 1_000.0


def make_project(store, pid="p1", n_items=10, n_eval=0):
    store.create_project(Project(pid, (ClassSpec("neg"), ClassSpec("pos")), ProjectSettings()))
    items = [
        Item(id=f"i{k}", text=f"text {k}", gold=k % 2, is_eval=k < n_eval, votes=(k % 2, -1))
        for k in range(n_items)
    ]
    store.add_items(pid, items, on_conflict="reject", rand_keys=np.arange(n_items, dtype=float))
    return pid


def set_queue(store, pid, ids, reasons):
    """Rank ``ids`` first (best first), as a round does."""
    number = len(store.list_rounds(pid)) + 1
    store.commit_round(pid, arrays={}, queue=(ids, [1.0] * len(ids), reasons),
                       rnd=Round(pid, number, f"m{number}", T0, 0, {}, {}, "test"))


def label(pid, item_id, annotator, lease_id, value=1, key=None, kind="label"):
    return Annotation(pid, item_id, annotator, kind, label=value if kind == "label" else None,
                      lease_id=lease_id, idempotency_key=key)


def answer_while(store, change, workers, *, size, tries):
    """Run ``change()`` on one thread while each of ``workers`` ((annotator, pool, kind)) leases
    ``size`` items of its pool of project p1 and answers them, until nothing is left for it once
    ``change`` has returned. Fails on any thread's exception or hang; returns each item's
    annotators in log order, after checking that none answered an item twice."""
    import threading
    import time

    errors: list[BaseException] = []
    settled = threading.Event()

    def changer() -> None:
        try:
            change()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            settled.set()

    def work(who: str, pool: str, kind: str) -> None:
        try:
            for n in range(tries):
                lease = store.lease("p1", who, size, n_eval=0, now=T0, ttl=1e6,
                                    lease_id=f"L{who}-{n}", pool=pool)
                if lease.item_ids:
                    store.submit([label("p1", i, who, lease.id, kind=kind)
                                  for i in lease.item_ids], now=T0)
                elif lease.exhausted and settled.is_set():
                    return
                else:
                    time.sleep(0.001)
            raise AssertionError(f"{who} never ran out of items")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=changer)] + [
        threading.Thread(target=work, args=w) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads), errors
    by_item: dict[str, list[str]] = {}
    for a in store.annotations("p1"):
        by_item.setdefault(a.item_id, []).append(a.annotator)
    assert all(len(set(w)) == len(w) for w in by_item.values())
    return by_item


class StoreContract:
    # -- projects ---------------------------------------------------------------------
    def test_project_roundtrip_and_conflict(self, store):
        make_project(store)
        p = store.get_project("p1")
        assert p.class_names == ["neg", "pos"] and p.settings == ProjectSettings()
        with pytest.raises(Conflict):
            store.create_project(p)
        with pytest.raises(NotFound):
            store.get_project("nope")
        store.update_settings("p1", ProjectSettings(batch_size=7))
        assert store.get_project("p1").settings.batch_size == 7
        assert [x.id for x in store.list_projects()] == ["p1"]

    # -- items ------------------------------------------------------------------------
    def test_items_in_seq_order_with_fields(self, store):
        make_project(store, n_items=25)
        chunks = list(store.iter_items("p1", chunk=10))
        assert [len(c) for c in chunks] == [10, 10, 5]
        items = [it for c in chunks for it in c]
        assert [it.seq for it in items] == list(range(25))
        assert items[3].votes == (1, -1) and items[3].gold == 1 and items[3].text == "text 3"
        assert store.count_items("p1") == 25
        assert store.get_item("p1", "i4").seq == 4
        with pytest.raises(NotFound):
            store.get_item("p1", "missing")

    def test_repeated_id_rejected_whole(self, store):
        make_project(store, n_items=3)
        batch = [Item(id="new1", text="a"), Item(id="i1", text="b")]
        with pytest.raises(Conflict, match="i1"):
            store.add_items("p1", batch, on_conflict="reject", rand_keys=np.zeros(2))
        assert store.count_items("p1") == 3  # nothing half-stored
        with pytest.raises(Conflict):
            store.add_items("p1", [Item(id="x", text="a")] * 2, on_conflict="upsert",
                            rand_keys=np.zeros(2))
        ins, upd = store.add_items("p1", batch, on_conflict="upsert", rand_keys=np.zeros(2))
        assert (ins, upd) == (1, 1)
        assert store.get_item("p1", "i1").text == "b" and store.get_item("p1", "i1").seq == 1
        assert store.get_item("p1", "new1").seq == 3

    # -- leases -----------------------------------------------------------------------
    def test_lease_follows_queue_then_pool(self, store):
        make_project(store, n_items=6)
        set_queue(store, "p1", ["i4", "i2"], [{"strategy": "s", "value": 0.9}] * 2)
        lease = store.lease("p1", "ann", 3, n_eval=0, now=T0, ttl=60, lease_id="L1")
        assert lease.item_ids == ("i4", "i2", "i0")
        assert lease.items[0].reasons["strategy"] == "s"
        assert lease.expires_at == T0 + 60

    def test_no_item_to_two_annotators_until_expiry(self, store):
        make_project(store, n_items=4)
        a = store.lease("p1", "a", 3, n_eval=0, now=T0, ttl=60, lease_id="La")
        b = store.lease("p1", "b", 3, n_eval=0, now=T0 + 1, ttl=60, lease_id="Lb")
        assert not set(a.item_ids) & set(b.item_ids) and len(b.item_ids) == 1
        assert store.lease("p1", "c", 3, n_eval=0, now=T0 + 2, ttl=60, lease_id="Lc").item_ids == ()
        c = store.lease("p1", "c", 5, n_eval=0, now=T0 + 60.5, ttl=60, lease_id="Lc2")
        assert set(c.item_ids) == set(a.item_ids)  # expired items come back
        with pytest.raises(Conflict):  # the late holder can no longer submit
            store.submit([label("p1", a.item_ids[0], "a", "La")], now=T0 + 62)

    def test_submit_is_idempotent_and_append_only(self, store):
        make_project(store, n_items=3)
        lease = store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="L")
        ann = label("p1", lease.item_ids[0], "a", "L", key="k1")
        results = [store.submit([ann], now=T0 + 1)[0] for _ in range(3)]
        assert [r.duplicate for r in results] == [False, True, True]
        assert store.count_labels("p1") == 1 and len(store.annotations("p1")) == 1
        assert store.annotations("p1")[0].label == 1
        # a done item is never offered again
        later = store.lease("p1", "b", 5, n_eval=0, now=T0 + 100, ttl=60, lease_id="L2")
        assert lease.item_ids[0] not in later.item_ids

    def test_submit_rejects_foreign_or_unknown_lease_and_stores_nothing(self, store):
        make_project(store, n_items=3)
        lease = store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="L")
        good = label("p1", lease.item_ids[0], "a", "L")
        with pytest.raises(Conflict):
            store.submit([good, label("p1", lease.item_ids[1], "mallory", "L")], now=T0)
        with pytest.raises(Conflict):
            store.submit([label("p1", "i2", "a", "L")], now=T0)  # not in the lease
        assert store.annotations("p1") == []  # all or nothing
        store.submit([good], now=T0)
        with pytest.raises(Conflict):  # already answered, no key
            store.submit([good], now=T0)

    def test_skip_returns_item_to_others_flag_removes_it(self, store):
        make_project(store, n_items=2)
        lease = store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="L")
        store.submit([label("p1", "i0", "a", "L", kind="skip"),
                      label("p1", "i1", "a", "L", kind="flag")], now=T0)
        assert lease.item_ids == ("i0", "i1")
        assert store.lease("p1", "a", 5, n_eval=0, now=T0, ttl=60, lease_id="L2").item_ids == ()
        assert store.lease("p1", "b", 5, n_eval=0, now=T0, ttl=60, lease_id="L3").item_ids == ("i0",)
        depth = store.queue_depth("p1", now=T0)
        assert depth["flagged"] == 1 and depth["total"] == 2

    def test_release_and_renew(self, store):
        make_project(store, n_items=3)
        store.lease("p1", "a", 3, n_eval=0, now=T0, ttl=60, lease_id="L")
        with pytest.raises(Conflict):
            store.release("L", "b", now=T0)
        assert store.release("L", "a", item_ids=["i0"], now=T0) == 1
        assert store.lease("p1", "b", 5, n_eval=0, now=T0, ttl=60, lease_id="Lb").item_ids == ("i0",)
        renewed = store.renew("L", "a", now=T0 + 50, ttl=60)
        assert renewed.expires_at == T0 + 110 and set(renewed.item_ids) == {"i1", "i2"}
        # Lb expired at T0+60; the renewed lease L still holds i1 and i2
        assert store.lease("p1", "c", 5, n_eval=0, now=T0 + 100, ttl=60, lease_id="Lc").item_ids == ("i0",)
        with pytest.raises(Conflict):
            store.renew("L", "a", now=T0 + 200, ttl=60)
        with pytest.raises(NotFound):
            store.renew("nope", "a", now=T0, ttl=60)

    def test_eval_items_mixed_at_requested_count(self, store):
        make_project(store, n_items=10, n_eval=3)
        lease = store.lease("p1", "a", 4, n_eval=1, now=T0, ttl=60, lease_id="L")
        flags = [li.eval for li in lease.items]
        assert sum(flags) == 1 and len(flags) == 4
        assert [li.reasons["strategy"] for li in lease.items if li.eval] == ["evaluation_slice"]
        depth = store.queue_depth("p1", now=T0)
        assert depth["eval"] == 3 and depth["leased"] == 4

    def test_expire_sweep_counts(self, store):
        make_project(store, n_items=3)
        store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=10, lease_id="L")
        assert store.expire(T0 + 5) == 0
        assert store.queue_depth("p1", now=T0 + 5)["leased"] == 2
        assert store.queue_depth("p1", now=T0 + 11)["leased"] == 0  # expired, not yet swept
        assert store.expire(T0 + 11) == 2
        assert store.queue_depth("p1", now=T0 + 11)["leased"] == 0

    def test_thousands_of_expired_holds_come_back(self, store):
        make_project(store, n_items=2500)
        for k, size in enumerate((1000, 1000, 500)):
            store.lease("p1", f"a{k}", size, n_eval=0, now=T0, ttl=60, lease_id=f"L{k}")
        late = store.lease("p1", "b", 1000, n_eval=0, now=T0 + 61, ttl=60, lease_id="Lb")
        assert len(late.item_ids) == 1000
        store.expire(T0 + 61)
        depth = store.queue_depth("p1", now=T0 + 61)
        assert depth["leased"] == 1000 and depth["open"] == 2500
        rest = store.lease("p1", "c", 1000, n_eval=0, now=T0 + 62, ttl=60, lease_id="Lc")
        assert len(rest.item_ids) == 1000 and not set(rest.item_ids) & set(late.item_ids)

    def test_the_sweep_ends_every_expired_hold_at_once(self, store):
        make_project(store, n_items=2500)
        for k, size in enumerate((1000, 1000, 500)):
            store.lease("p1", f"a{k}", size, n_eval=0, now=T0, ttl=60, lease_id=f"L{k}")
        assert store.expire(T0 + 61) == 2500
        assert store.expire(T0 + 62) == 0
        assert all(store.get_lease(f"L{k}").item_ids == () for k in range(3))

    def test_a_lease_never_runs_before_a_sweep_that_ran_first(self, store):
        """Replicas read their own clocks, and a call may wait after reading it: a lease stamped
        before the end of a hold that a sweep already ended runs at the sweep's time."""
        make_project(store, n_items=2)
        store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=10, lease_id="La")
        assert store.expire(T0 + 20) == 2
        late = store.lease("p1", "b", 2, n_eval=0, now=T0 + 5, ttl=10, lease_id="Lb")
        assert late.item_ids == ("i0", "i1") and late.expires_at == T0 + 30
        assert store.get_lease("Lb").expires_at == T0 + 30
        assert store.lease("p1", "c", 1, n_eval=0, now=T0 + 1, ttl=10, lease_id="Lc").expires_at == T0 + 30

    def test_bad_lease_size(self, store):
        make_project(store)
        with pytest.raises(InvalidInput):
            store.lease("p1", "a", -1, n_eval=0, now=T0, ttl=1, lease_id="L")
        with pytest.raises(NotFound):
            store.lease("nope", "a", 1, n_eval=0, now=T0, ttl=1, lease_id="L")

    def test_an_annotator_never_holds_one_item_twice(self, store):
        make_project(store, n_items=8)
        store.update_settings("p1", ProjectSettings(redundancy_fraction=1.0, redundancy_k=2))
        got = [store.lease("p1", who, 3, n_eval=0, now=T0, ttl=60, lease_id=lid).item_ids
               for who, lid in (("a", "La"), ("b", "Lb"), ("a", "La2"))]
        # a's second lease skips what a holds; b may share a's items (each needs 2 annotators)
        assert got == [("i0", "i1", "i2"), ("i0", "i1", "i2"), ("i3", "i4", "i5")]
        assert store.get_lease("Lb").item_ids == ("i0", "i1", "i2")
        assert store.queue_depth("p1", now=T0)["leased"] == 9
        third = store.lease("p1", "c", 8, n_eval=0, now=T0, ttl=60, lease_id="Lc")
        assert third.item_ids == ("i3", "i4", "i5", "i6", "i7")  # i0-i2 have their two holders

    def test_a_refused_lease_leaves_nothing_behind(self, store):
        make_project(store, n_items=4)
        with pytest.raises(NotFound, match="nope"):
            store.lease("nope", "b", 2, n_eval=0, now=T0, ttl=60, lease_id="Lb")
        with pytest.raises(InvalidInput):
            store.lease("p1", "c", -1, n_eval=0, now=T0, ttl=60, lease_id="Lc")
        for lid in ("Lb", "Lc"):
            with pytest.raises(NotFound):
                store.get_lease(lid)
        assert store.queue_depth("p1", now=T0)["leased"] == 0

    def test_leases_in_one_batch_are_each_atomic(self, store):
        make_project(store, n_items=4)
        store.lease("p1", "x", 1, n_eval=0, now=T0, ttl=1, lease_id="Lx")  # expires before the batch
        a, b, bad, c = store.lease_many([
            LeaseRequest("p1", "a", 2, 0, 60, "La"), LeaseRequest("nope", "b", 2, 0, 60, "Lb"),
            LeaseRequest("p1", "b", -1, 0, 60, "Lbad"), LeaseRequest("p1", "c", 5, 0, 60, "Lc")],
            now=T0 + 2)
        assert (a.item_ids, c.item_ids) == (("i0", "i1"), ("i2", "i3"))  # i0 came back from Lx
        assert isinstance(b, NotFound) and isinstance(bad, InvalidInput)
        assert a.expires_at == T0 + 62 and store.get_lease("Lc").item_ids == ("i2", "i3")
        for lid in ("Lb", "Lbad"):
            with pytest.raises(NotFound):
                store.get_lease(lid)
        assert store.queue_depth("p1", now=T0 + 2)["leased"] == 4

    # -- resume: an annotator's live leases -----------------------------------------------
    def test_live_leases_of_an_annotator_with_their_items(self, store):
        make_project(store, n_items=6, n_eval=1)
        set_queue(store, "p1", ["i3"], [{"strategy": "s"}])
        store.lease("p1", "a", 2, n_eval=1, now=T0, ttl=60, lease_id="L1")
        store.lease("p1", "b", 1, n_eval=0, now=T0, ttl=60, lease_id="Lb")
        store.lease("p1", "a", 2, n_eval=0, now=T0 + 1, ttl=10, lease_id="L2")
        store.submit([label("p1", "i3", "a", "L1")], now=T0 + 2)
        got = store.leases("p1", "a", now=T0 + 2)
        assert [(x.id, x.item_ids, x.expires_at) for x in got] == [
            ("L1", ("i0",), T0 + 60), ("L2", ("i2", "i4"), T0 + 11)]
        first = got[0].items[0]
        assert first.eval and first.item.text == "text 0" and first.reasons == {"strategy": "evaluation_slice"}
        assert [x.id for x in store.leases("p1", "a", now=T0 + 12)] == ["L1"]  # L2 expired
        store.release("L1", "a", now=T0 + 13)
        assert store.leases("p1", "a", now=T0 + 13) == []
        assert [x.id for x in store.leases("p1", "b", now=T0 + 13)] == ["Lb"]
        with pytest.raises(NotFound):
            store.leases("nope", "a", now=T0)

    # -- idempotency keys belong to (project, annotator) ----------------------------------
    def test_one_key_from_two_annotators_is_two_submissions(self, store):
        make_project(store, n_items=4)
        store.lease("p1", "bob", 1, n_eval=0, now=T0, ttl=60, lease_id="Lb")
        store.lease("p1", "alice", 1, n_eval=0, now=T0, ttl=60, lease_id="La")
        bob = store.submit([label("p1", "i0", "bob", "Lb", value=0, key="k")], now=T0 + 1)[0]
        alice = store.submit([label("p1", "i1", "alice", "La", value=1, key="k")], now=T0 + 1)[0]
        assert not bob.duplicate and not alice.duplicate
        assert (alice.annotation.item_id, alice.annotation.label) == ("i1", 1)
        assert [(a.annotator, a.item_id, a.label) for a in store.annotations("p1")] == [
            ("bob", "i0", 0), ("alice", "i1", 1)]
        again = store.submit([label("p1", "i1", "alice", "La", value=1, key="k")], now=T0 + 2)[0]
        assert again.duplicate and again.annotation.seq == alice.annotation.seq

    def test_one_key_with_another_payload_is_a_conflict_naming_it(self, store):
        make_project(store, n_items=4)
        store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="L")
        store.submit([label("p1", "i0", "a", "L", value=0, key="k-7")], now=T0 + 1)
        for changed in (label("p1", "i0", "a", "L", value=1, key="k-7"),
                        label("p1", "i1", "a", "L", value=0, key="k-7"),
                        label("p1", "i0", "a", "L", key="k-7", kind="skip")):
            with pytest.raises(Conflict, match="k-7"):
                store.submit([changed], now=T0 + 2)
        with pytest.raises(Conflict, match="k-7"):  # all or nothing: i1 is not stored either
            store.submit([label("p1", "i1", "a", "L", key="k-8"),
                          label("p1", "i0", "a", "L", value=1, key="k-7")], now=T0 + 2)
        assert [(a.item_id, a.label) for a in store.annotations("p1")] == [("i0", 0)]
        assert store.get_lease("L").item_ids == ("i1",)

    # -- require: per-item answers, changed after ingest ----------------------------------
    def test_raising_required_reopens_an_answered_item_for_others(self, store):
        make_project(store, n_items=2)
        store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="La")
        store.submit([label("p1", "i0", "a", "La"), label("p1", "i1", "a", "La")], now=T0)
        assert store.queue_depth("p1", now=T0)["done"] == 2
        assert store.lease("p1", "b", 5, n_eval=0, now=T0, ttl=60, lease_id="Lb").exhausted
        assert store.require("p1", {"i1": 3}, now=T0 + 1) == 1
        depth = store.queue_depth("p1", now=T0 + 1)
        assert (depth["done"], depth["open"]) == (1, 1)
        assert store.lease("p1", "a", 5, n_eval=0, now=T0 + 1, ttl=60, lease_id="La2").exhausted
        assert store.lease("p1", "b", 5, n_eval=0, now=T0 + 1, ttl=60, lease_id="Lb2").item_ids == ("i1",)
        assert store.lease("p1", "c", 5, n_eval=0, now=T0 + 1, ttl=60, lease_id="Lc").item_ids == ("i1",)
        assert store.lease("p1", "d", 5, n_eval=0, now=T0 + 1, ttl=60, lease_id="Ld").item_ids == ()
        store.submit([label("p1", "i1", "b", "Lb2"), label("p1", "i1", "c", "Lc")], now=T0 + 2)
        assert store.queue_depth("p1", now=T0 + 2)["done"] == 2

    def test_lowering_required_closes_an_item_whose_answers_suffice(self, store):
        self._redundant(store, 3, k=3)
        store.lease("p1", "a", 3, n_eval=0, now=T0, ttl=60, lease_id="La")
        store.lease("p1", "b", 1, n_eval=0, now=T0, ttl=60, lease_id="Lb")
        store.submit([label("p1", "i0", "a", "La"), label("p1", "i1", "a", "La")], now=T0)
        store.require("p1", {"i0": 1, "i1": 2}, now=T0 + 1)
        # i0 is done; i1 has one label and b holds nothing of it: one more; i2 still needs 3
        depth = store.queue_depth("p1", now=T0 + 1)
        assert (depth["done"], depth["open"]) == (1, 2)
        assert store.lease("p1", "c", 5, n_eval=0, now=T0 + 1, ttl=60, lease_id="Lc").item_ids == ("i1", "i2")
        assert store.lease("p1", "d", 5, n_eval=0, now=T0 + 1, ttl=60, lease_id="Ld").item_ids == ("i2",)
        # b's live hold on i0 may still be answered, and adds a label past what it needed
        assert not store.submit([label("p1", "i0", "b", "Lb")], now=T0 + 2)[0].duplicate
        store.require("p1", {"i2": 1}, now=T0 + 3)  # held by a, c and d: it leaves the pool
        assert store.lease("p1", "e", 5, n_eval=0, now=T0 + 3, ttl=60, lease_id="Le").item_ids == ()

    def test_require_is_all_or_nothing(self, store):
        make_project(store, n_items=2)
        with pytest.raises(NotFound, match="nope"):
            store.require("p1", {"i0": 2, "nope": 2}, now=T0)
        for bad in (0, -1, 1.5, True):
            with pytest.raises(InvalidInput, match="i1"):
                store.require("p1", {"i0": 2, "i1": bad}, now=T0)
        with pytest.raises(NotFound):
            store.require("p9", {"i0": 2}, now=T0)
        store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="La")
        # i0 still needs one answer: nobody else may take it
        assert store.lease("p1", "b", 2, n_eval=0, now=T0, ttl=60, lease_id="Lb").item_ids == ()

    def test_settings_change_keeps_required_unless_redundancy_changes(self, store):
        make_project(store, n_items=1)
        store.require("p1", {"i0": 2}, now=T0)
        store.update_settings("p1", ProjectSettings(batch_size=7), guidelines="new")
        store.lease("p1", "a", 1, n_eval=0, now=T0, ttl=60, lease_id="La")
        assert store.lease("p1", "b", 1, n_eval=0, now=T0, ttl=60, lease_id="Lb").item_ids == ("i0",)
        store.update_settings("p1", ProjectSettings(redundancy_fraction=1.0, redundancy_k=3))
        assert store.lease("p1", "c", 1, n_eval=0, now=T0, ttl=60, lease_id="Lc").item_ids == ("i0",)

    def test_require_under_concurrent_leases(self, store):
        """Threads lease and answer while another thread raises and lowers what a third of the
        items need, then settles them at 2: no annotator answers an item twice, the other items
        get exactly one answer, and every item ends done with at least what it needs."""
        make_project(store, n_items=40)

        def change() -> None:
            for k in range(30):
                store.require("p1", {f"i{j}": 1 + (k + j) % 3 for j in range(0, 40, 3)}, now=T0)
            store.require("p1", {f"i{j}": 2 for j in range(0, 40, 3)}, now=T0)

        by_item = answer_while(store, change, [(f"w{k}", "main", "label") for k in range(4)],
                               size=3, tries=2000)
        assert all(len(by_item[f"i{j}"]) == 1 for j in range(40) if j % 3)
        assert all(2 <= len(by_item[f"i{j}"]) <= 3 for j in range(0, 40, 3))
        depth = store.queue_depth("p1", now=T0)
        assert (depth["done"], depth["open"], depth["leased"]) == (40, 0, 0)

    # -- redundancy: some items need k distinct annotators ------------------------------
    def _redundant(self, store, n_items, fraction=1.0, k=2):
        make_project(store, n_items=n_items)
        store.update_settings("p1", ProjectSettings(redundancy_fraction=fraction, redundancy_k=k))

    def test_redundant_items_go_to_k_distinct_annotators_then_are_done(self, store):
        self._redundant(store, 3)
        a = store.lease("p1", "a", 5, n_eval=0, now=T0, ttl=60, lease_id="La")
        assert a.item_ids == ("i0", "i1", "i2")
        again = store.lease("p1", "a", 5, n_eval=0, now=T0, ttl=60, lease_id="La2")
        assert again.item_ids == () and not again.exhausted  # never twice to one annotator
        b = store.lease("p1", "b", 5, n_eval=0, now=T0, ttl=60, lease_id="Lb")
        assert b.item_ids == ("i0", "i1", "i2")
        c = store.lease("p1", "c", 5, n_eval=0, now=T0, ttl=60, lease_id="Lc")
        assert c.item_ids == () and not c.exhausted  # full now, but a hold may still expire
        assert store.queue_depth("p1", now=T0)["leased"] == 6
        store.submit([label("p1", i, "a", "La") for i in a.item_ids], now=T0 + 1)
        depth = store.queue_depth("p1", now=T0 + 1)
        assert (depth["done"], depth["open"], depth["leased"]) == (0, 3, 3)  # one label of two
        with pytest.raises(Conflict):  # a second label by the same annotator
            store.submit([label("p1", "i0", "a", "La", key="again")], now=T0 + 1)
        store.submit([label("p1", i, "b", "Lb", value=0) for i in b.item_ids], now=T0 + 2)
        depth = store.queue_depth("p1", now=T0 + 2)
        assert (depth["done"], depth["open"], depth["leased"]) == (3, 0, 0)
        assert store.count_labels("p1") == 6
        done = store.lease("p1", "c", 5, n_eval=0, now=T0 + 3, ttl=60, lease_id="Lc2")
        assert done.item_ids == () and done.exhausted

    def test_redundancy_sample_is_a_hash_of_the_item_id(self, store):
        from api.storage.records import required_answers

        self._redundant(store, 120, fraction=0.3, k=3)
        holders: dict[str, int] = {}
        for who in "abcde":
            for iid in store.lease("p1", who, 500, n_eval=0, now=T0, ttl=60,
                                   lease_id=f"L{who}").item_ids:
                holders[iid] = holders.get(iid, 0) + 1
        want = {f"i{k}": required_answers(f"i{k}", 0.3, 3) for k in range(120)}
        assert holders == want
        assert 20 <= sum(v == 3 for v in want.values()) <= 55  # about 30% of 120

    def test_expiry_returns_only_the_expired_holders_slot(self, store):
        self._redundant(store, 1)
        store.lease("p1", "a", 1, n_eval=0, now=T0, ttl=10, lease_id="La")
        store.lease("p1", "b", 1, n_eval=0, now=T0, ttl=100, lease_id="Lb")
        assert store.lease("p1", "c", 1, n_eval=0, now=T0 + 5, ttl=100, lease_id="Lc0").item_ids == ()
        assert store.lease("p1", "c", 1, n_eval=0, now=T0 + 20, ttl=100, lease_id="Lc").item_ids == ("i0",)
        assert store.lease("p1", "d", 1, n_eval=0, now=T0 + 21, ttl=100, lease_id="Ld").item_ids == ()
        with pytest.raises(Conflict):  # a's hold expired
            store.submit([label("p1", "i0", "a", "La")], now=T0 + 22)
        assert store.expire(T0 + 22) == 0  # the lease already ended a's hold
        store.submit([label("p1", "i0", "b", "Lb"), label("p1", "i0", "c", "Lc")], now=T0 + 23)
        assert store.queue_depth("p1", now=T0 + 23)["done"] == 1
        assert store.lease("p1", "a", 1, n_eval=0, now=T0 + 24, ttl=100, lease_id="La2").exhausted

    def test_leased_items_come_back_as_stored(self, store):
        store.create_project(Project("p1", (ClassSpec("neg"), ClassSpec("pos")), ProjectSettings()))
        odd = Item("odd", text="12345678901234567890123 digits", features={"x": float("nan"), "y": 1.5},
                   meta={"big": 2**70, "ok": [1, "two"]}, votes=(1, -1))
        plain = Item("plain", text="plain", meta={"n": 2**63})
        store.add_items("p1", [odd, plain], on_conflict="reject", rand_keys=np.array([0.0, 1.0]))
        got = {li.item.id: li.item for li in store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60,
                                                         lease_id="L").items}
        assert got["odd"].text == odd.text and np.isnan(got["odd"].features["x"])
        assert got["odd"].features["y"] == 1.5 and got["odd"].votes == (1, -1)
        assert got["odd"].meta == {"big": 2**70, "ok": [1, "two"]} and type(got["odd"].meta["big"]) is int
        assert got["plain"].meta == {"n": 2**63} and type(got["plain"].meta["n"]) is int

    def test_thousands_of_holds_expire_at_once(self, store):
        """More expired holds than one lease ends: the lease ends a share and still gets its
        items, the sweep ends the rest, and every item comes back."""
        make_project(store, n_items=4500)  # more than a Lua call can take at once, for Redis
        for k in range(225):
            assert len(store.lease("p1", f"a{k}", 20, n_eval=0, now=T0, ttl=10, lease_id=f"L{k:03d}").item_ids) == 20
        assert len(store.lease("p1", "z", 10, n_eval=0, now=T0 + 11, ttl=100, lease_id="Lz").item_ids) == 10
        store.expire(T0 + 12)
        assert store.queue_depth("p1", T0 + 12)["leased"] == 10
        assert len(store.lease("p1", "y", 1000, n_eval=0, now=T0 + 13, ttl=100, lease_id="Ly").item_ids) == 1000
        assert store.queue_depth("p1", T0 + 13)["open"] == 4500

    def test_thousands_of_items_left_without_room_by_a_settings_change(self, store):
        """Lowering k leaves held items in the pool with no room left: a lease that walks past
        thousands of them takes them out and still gets what is open."""
        self._redundant(store, 9000)
        assert len(store.lease("p1", "a", 1000, n_eval=0, now=T0, ttl=600, lease_id="L0").item_ids) == 1000
        for k in range(1, 9):
            store.lease("p1", "a", 1000, n_eval=0, now=T0, ttl=600, lease_id=f"L{k}")
        store.update_settings("p1", ProjectSettings(redundancy_fraction=0.0, redundancy_k=1))
        assert store.lease("p1", "b", 5, n_eval=0, now=T0 + 1, ttl=600, lease_id="Lb").item_ids == ()
        store.release("L8", "a", now=T0 + 2)
        assert len(store.lease("p1", "b", 5, n_eval=0, now=T0 + 3, ttl=600, lease_id="Lb2").item_ids) == 5

    def test_two_holds_of_one_item_expire_in_one_lease(self, store):
        self._redundant(store, 1, k=3)
        for who, ttl in (("a", 10), ("b", 10), ("c", 100)):
            assert store.lease("p1", who, 1, n_eval=0, now=T0, ttl=ttl, lease_id=f"L{who}").item_ids == ("i0",)
        assert store.lease("p1", "d", 1, n_eval=0, now=T0 + 5, ttl=100, lease_id="Ld0").item_ids == ()
        # a's and b's holds end in the next lease: two slots come back, c's stays
        assert store.lease("p1", "d", 1, n_eval=0, now=T0 + 20, ttl=100, lease_id="Ld").item_ids == ("i0",)
        assert store.lease("p1", "e", 1, n_eval=0, now=T0 + 20, ttl=100, lease_id="Le").item_ids == ("i0",)
        assert store.lease("p1", "f", 1, n_eval=0, now=T0 + 20, ttl=100, lease_id="Lf").item_ids == ()
        assert store.queue_depth("p1", now=T0 + 20)["leased"] == 3

    def test_expire_sweep_ends_one_redundant_hold(self, store):
        self._redundant(store, 1)
        store.lease("p1", "a", 1, n_eval=0, now=T0, ttl=10, lease_id="La")
        store.lease("p1", "b", 1, n_eval=0, now=T0, ttl=100, lease_id="Lb")
        assert store.expire(T0 + 11) == 1
        assert store.queue_depth("p1", now=T0 + 11)["leased"] == 1
        assert store.lease("p1", "c", 1, n_eval=0, now=T0 + 12, ttl=100, lease_id="Lc").item_ids == ("i0",)
        assert store.lease("p1", "a", 1, n_eval=0, now=T0 + 12, ttl=100, lease_id="La2").item_ids == ()

    def test_expired_items_go_back_to_their_own_pool(self, store):
        make_project(store, n_items=4, n_eval=2)
        a = store.lease("p1", "a", 2, n_eval=2, now=T0, ttl=10, lease_id="La")
        assert [(li.item.id, li.eval) for li in a.items] == [("i0", True), ("i1", True)]
        assert store.expire(T0 + 11) == 2
        b = store.lease("p1", "b", 4, n_eval=0, now=T0 + 12, ttl=10, lease_id="Lb")
        # the pool first, then the evaluation slice, which the expired items went back to
        assert [(li.item.id, li.eval) for li in b.items] == [("i2", False), ("i3", False),
                                                            ("i0", True), ("i1", True)]

    def test_an_expired_hold_gives_back_no_item_that_another_holder_flagged(self, store):
        self._redundant(store, 1)
        store.lease("p1", "a", 1, n_eval=0, now=T0, ttl=10, lease_id="La")
        store.lease("p1", "b", 1, n_eval=0, now=T0, ttl=100, lease_id="Lb")
        store.submit([label("p1", "i0", "b", "Lb", kind="flag")], now=T0 + 1)
        assert store.expire(T0 + 11) == 1
        assert store.lease("p1", "c", 1, n_eval=0, now=T0 + 12, ttl=100, lease_id="Lc").item_ids == ()

    def test_a_hold_taken_before_a_redundancy_cut_gives_back_no_full_item(self, store):
        self._redundant(store, 1)
        store.lease("p1", "a", 1, n_eval=0, now=T0, ttl=10, lease_id="La")
        store.lease("p1", "b", 1, n_eval=0, now=T0, ttl=100, lease_id="Lb")
        store.submit([label("p1", "i0", "b", "Lb")], now=T0 + 1)
        store.update_settings("p1", ProjectSettings())  # one annotator each: i0 is done
        assert store.expire(T0 + 11) == 1
        assert store.lease("p1", "c", 1, n_eval=0, now=T0 + 12, ttl=100, lease_id="Lc").item_ids == ()
        assert store.queue_depth("p1", now=T0 + 12)["done"] == 1

    def test_redundant_skip_release_and_flag(self, store):
        self._redundant(store, 2, k=3)
        for who in "ab":
            store.lease("p1", who, 2, n_eval=0, now=T0, ttl=60, lease_id=f"L{who}")
        store.submit([label("p1", "i0", "a", "La", kind="skip"),
                      label("p1", "i1", "a", "La", kind="flag")], now=T0)
        assert store.release("Lb", "b", item_ids=["i0"], now=T0) == 1
        # i0: a skipped, b released, nobody holds it; i1: flagged, gone for everyone
        assert store.lease("p1", "a", 5, n_eval=0, now=T0, ttl=60, lease_id="La2").item_ids == ()
        assert store.lease("p1", "b", 5, n_eval=0, now=T0, ttl=60, lease_id="Lb2").item_ids == ("i0",)
        assert store.lease("p1", "c", 5, n_eval=0, now=T0, ttl=60, lease_id="Lc").item_ids == ("i0",)
        assert store.lease("p1", "d", 5, n_eval=0, now=T0, ttl=60, lease_id="Ld").item_ids == ("i0",)
        assert store.lease("p1", "e", 5, n_eval=0, now=T0, ttl=60, lease_id="Le").item_ids == ()
        depth = store.queue_depth("p1", now=T0)
        assert (depth["flagged"], depth["open"], depth["done"], depth["leased"]) == (1, 1, 0, 4)

    def test_nothing_left_is_said_only_when_true(self, store):
        make_project(store, n_items=2)
        a = store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="La")
        b = store.lease("p1", "b", 2, n_eval=0, now=T0, ttl=60, lease_id="Lb")
        assert b.item_ids == () and not b.exhausted  # a's holds may come back
        store.submit([label("p1", "i0", "a", "La")], now=T0)
        store.release("La", "a", item_ids=["i1"], now=T0)
        assert store.lease("p1", "b", 2, n_eval=0, now=T0, ttl=60, lease_id="Lb2").item_ids == ("i1",)
        assert not store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="La2").exhausted
        store.submit([label("p1", "i1", "b", "Lb2")], now=T0)
        assert store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="La3").exhausted
        assert a.exhausted is False

    # -- pools: gold items mixed in, the review queue, moves between pools --------------
    def _pools(self, store, n_main=6, n_gold=3, n_eval=2):
        """Items m0.. (main), g0.. (gold), e0.. (evaluation slice), pool order as numbered."""
        store.create_project(Project("p1", (ClassSpec("neg"), ClassSpec("pos")), ProjectSettings()))
        items = ([Item(f"m{k}", text=f"m{k}") for k in range(n_main)]
                 + [Item(f"g{k}", text=f"g{k}", gold=1, pool="gold") for k in range(n_gold)]
                 + [Item(f"e{k}", text=f"e{k}", is_eval=True) for k in range(n_eval)])
        keys = np.concatenate([np.arange(n) / 10 for n in (n_main, n_gold, n_eval)])
        store.add_items("p1", items, on_conflict="reject", rand_keys=keys)

    def test_items_enter_their_pool(self, store):
        self._pools(store)
        assert [(store.get_item("p1", i).pool, store.get_item("p1", i).is_eval)
                for i in ("m0", "g0", "e0")] == [("main", False), ("gold", False), ("eval", True)]
        with pytest.raises(InvalidInput, match="'review'"):  # review is entered by require
            store.add_items("p1", [Item("r", pool="review")], on_conflict="reject",
                            rand_keys=np.zeros(1))
        with pytest.raises(InvalidInput, match="'nope'"):
            store.add_items("p1", [Item("x"), Item("r", pool="nope")], on_conflict="reject",
                            rand_keys=np.zeros(2))
        assert store.count_items("p1") == 11
        depth = store.queue_depth("p1", now=T0)
        assert {k: depth[k] for k in ("total", "open", "gold", "review", "eval", "done")} == {
            "total": 11, "open": 8, "gold": 3, "review": 0, "eval": 2, "done": 0}

    def test_gold_items_mixed_in_look_like_pool_order(self, store):
        from api.storage.rules import mix_gold

        self._pools(store)
        set_queue(store, "p1", ["m5"], [{"strategy": "s"}])
        lease = store.lease("p1", "a", 6, n_eval=1, n_gold=2, now=T0, ttl=60, lease_id="L1")
        ordinary = ["e0", "m5", "m0", "m1"]  # eval first, the queue, pool order
        assert list(lease.item_ids) == mix_gold(ordinary, ["g0", "g1"], 2, 4, "L1")
        by_id = {li.item.id: li for li in lease.items}
        assert by_id["g0"].reasons == by_id["m0"].reasons == {"strategy": "pool_order"}
        assert (by_id["g0"].pool, by_id["g0"].eval, by_id["e0"].pool, by_id["e0"].eval) == (
            "gold", False, "eval", True)
        assert set(store.lease("p1", "a", 2, n_eval=0, n_gold=5, now=T0, ttl=60,
                               lease_id="L2").item_ids) == {"g2", "m2"}  # a holds g0, g1
        # without n_gold no gold item is handed out; gold items already answered are skipped
        assert not {"g0", "g1", "g2"} & set(store.lease("p1", "b", 9, n_eval=0, now=T0, ttl=60,
                                                        lease_id="L3").item_ids)
        store.submit([label("p1", "g0", "a", "L1")], now=T0)
        store.release("L1", "a", now=T0)
        store.release("L2", "a", now=T0)
        got = store.lease("p1", "a", 3, n_eval=0, n_gold=3, now=T0, ttl=60, lease_id="L4")
        assert set(got.item_ids) == {"g1", "g2", "m5"}  # a answered g0

    def test_gold_comes_only_beside_other_items_and_exhausted_ignores_it(self, store):
        self._pools(store, n_main=1, n_gold=2, n_eval=0)
        assert store.lease("p1", "a", 1, n_eval=0, n_gold=1, now=T0, ttl=60,
                           lease_id="La").item_ids == ("g0",)  # m0 is left for a: gold may fill
        lease = store.lease("p1", "b", 1, n_eval=0, now=T0, ttl=60, lease_id="Lb")
        store.submit([label("p1", "m0", "b", "Lb")], now=T0)
        store.release("La", "a", now=T0)
        left = store.lease("p1", "a", 3, n_eval=0, n_gold=2, now=T0, ttl=60, lease_id="La2")
        assert left.item_ids == () and left.exhausted  # only gold items left for a
        assert store.queue_depth("p1", now=T0)["gold"] == 2 and lease.item_ids == ("m0",)

    def test_review_pool_is_first_in_first_out_and_skips_what_the_reviewer_answered(self, store):
        self._pools(store, n_main=4, n_gold=1, n_eval=1)
        store.lease("p1", "a", 4, n_eval=0, now=T0, ttl=60, lease_id="La")
        store.submit([label("p1", f"m{k}", "a", "La") for k in range(4)], now=T0)
        empty = store.lease("p1", "r", 5, n_eval=0, now=T0, ttl=60, lease_id="Lr0", pool="review")
        assert empty.item_ids == () and empty.exhausted
        store.require("p1", {"m3": 2, "m1": 2}, now=T0, pool="review")
        store.require("p1", {"e0": 1, "m0": 2}, now=T0, pool="review")
        depth = store.queue_depth("p1", now=T0)
        assert (depth["review"], depth["open"], depth["done"]) == (4, 0, 1)
        mine = store.lease("p1", "a", 5, n_eval=0, now=T0, ttl=60, lease_id="La2", pool="review")
        assert mine.item_ids == ("e0",) and mine.items[0].pool == "review"  # a answered the others
        assert mine.items[0].reasons == {"strategy": "review"} and not mine.items[0].eval
        assert store.lease("p1", "a", 5, n_eval=0, now=T0, ttl=60, lease_id="La3",
                           pool="review").exhausted is False  # a holds e0
        got = store.lease("p1", "r", 2, n_eval=0, now=T0, ttl=60, lease_id="Lr", pool="review")
        assert got.item_ids == ("m3", "m1")
        store.require("p1", {"m3": 3}, now=T0, pool="review")  # already there: keeps its place
        assert store.lease("p1", "s", 9, n_eval=0, now=T0, ttl=60, lease_id="Ls",
                           pool="review").item_ids == ("m3", "m0")  # m1 and e0 are full
        # the main pools know nothing of review items: only gold is left there
        left = store.lease("p1", "t", 9, n_eval=5, n_gold=5, now=T0, ttl=60, lease_id="Lt")
        assert left.item_ids == () and left.exhausted
        with pytest.raises(InvalidInput, match="gold"):
            store.lease("p1", "a", 1, n_eval=0, now=T0, ttl=60, lease_id="Lx", pool="gold")

    def test_main_pool_leases_never_take_review_items(self, store):
        self._pools(store, n_main=2, n_gold=0, n_eval=0)
        store.require("p1", {"m0": 1}, now=T0, pool="review")
        got = store.lease("p1", "a", 5, n_eval=0, now=T0, ttl=60, lease_id="La")
        assert got.item_ids == ("m1",)
        store.submit([label("p1", "m1", "a", "La")], now=T0)
        assert store.lease("p1", "a", 5, n_eval=0, now=T0, ttl=60, lease_id="La2").exhausted
        review = store.lease("p1", "a", 5, n_eval=0, now=T0, ttl=60, lease_id="La3", pool="review")
        assert review.item_ids == ("m0",)

    def test_require_moves_items_between_pools_all_or_nothing(self, store):
        self._pools(store, n_main=3, n_gold=1, n_eval=1)
        with pytest.raises(InvalidInput, match="'archive'"):
            store.require("p1", {"m0": 2}, now=T0, pool="archive")
        with pytest.raises(NotFound, match="nope"):
            store.require("p1", {"m0": 2, "nope": 1}, now=T0, pool="review")
        assert store.get_item("p1", "m0").pool == "main"
        assert store.queue_depth("p1", now=T0)["review"] == 0
        assert store.require("p1", {"m0": 1, "e0": 1, "g0": 1}, now=T0, pool="review") == 3
        assert {i: store.get_item("p1", i).pool for i in ("m0", "e0", "g0")} == dict.fromkeys(
            ("m0", "e0", "g0"), "review")
        store.require("p1", {"m0": 1, "e0": 1}, now=T0, pool="main")  # home again
        store.require("p1", {"m1": 1}, now=T0, pool="gold")
        assert [store.get_item("p1", i).pool for i in ("m0", "e0", "m1", "g0")] == [
            "main", "eval", "gold", "review"]
        got = store.lease("p1", "a", 9, n_eval=0, now=T0, ttl=60, lease_id="La")
        assert got.item_ids == ("m0", "m2", "e0")  # in pool order again, eval last
        assert store.lease("p1", "b", 1, n_eval=0, n_gold=1, now=T0, ttl=60,
                           lease_id="Lb").item_ids == ()  # m1 is gold now, and nothing else left
        depth = store.queue_depth("p1", now=T0)
        assert (depth["open"], depth["gold"], depth["review"]) == (3, 1, 1)

    def test_review_answers_count_like_labels(self, store):
        self._pools(store, n_main=1, n_gold=0, n_eval=0)
        store.lease("p1", "a", 1, n_eval=0, now=T0, ttl=60, lease_id="La")
        store.submit([label("p1", "m0", "a", "La", value=0)], now=T0)
        store.require("p1", {"m0": 2}, now=T0, pool="review")
        store.lease("p1", "r", 1, n_eval=0, now=T0, ttl=60, lease_id="Lr", pool="review")
        decision = Annotation("p1", "m0", "r", "review", label=1, comment="the text says so")
        with pytest.raises(Conflict):  # a review needs a live hold, as a label does
            store.submit([replace(decision, lease_id="La")], now=T0)
        got = store.submit([replace(decision, lease_id="Lr")], now=T0)[0].annotation
        assert (got.kind, got.label, got.comment) == ("review", 1, "the text says so")
        assert store.count_labels("p1") == 2
        depth = store.queue_depth("p1", now=T0)
        assert (depth["done"], depth["review"]) == (1, 0)
        assert store.lease("p1", "s", 1, n_eval=0, now=T0, ttl=60, lease_id="Ls",
                           pool="review").exhausted

    def test_a_correction_supersedes_its_annotators_answer_and_changes_no_count(self, store):
        make_project(store, n_items=2)
        store.lease("p1", "a", 1, n_eval=0, now=T0, ttl=60, lease_id="La")
        store.submit([label("p1", "i0", "a", "La", value=0)], now=T0)
        fix = Annotation("p1", "i0", "a", "correct", label=1, comment="misread", idempotency_key="c1")
        for wrong in (replace(fix, annotator="b"), replace(fix, item_id="i1")):
            with pytest.raises(Conflict, match=f"{wrong.item_id}.*{wrong.annotator}"):
                store.submit([wrong], now=T0 + 1)
        with pytest.raises(InvalidInput, match="lease"):
            store.submit([replace(fix, lease_id="La")], now=T0 + 1)
        assert len(store.annotations("p1")) == 1  # nothing stored
        before = store.queue_depth("p1", now=T0 + 1)
        first = store.submit([fix], now=T0 + 1)[0]
        again = store.submit([fix], now=T0 + 2)[0]
        assert not first.duplicate and again.duplicate and again.annotation.seq == first.annotation.seq
        assert [(x.kind, x.label) for x in store.annotations("p1")] == [("label", 0), ("correct", 1)]
        assert store.queue_depth("p1", now=T0 + 2) == before and store.count_labels("p1") == 1
        store.lease("p1", "b", 1, n_eval=0, now=T0, ttl=60, lease_id="Lb")  # holds i1
        with pytest.raises(Conflict, match="i1"):  # a hold is not an answer
            store.submit([Annotation("p1", "i1", "b", "correct", label=0)], now=T0 + 3)
        # an answer and its correction in one submission
        both = store.submit([label("p1", "i1", "b", "Lb", value=0),
                             Annotation("p1", "i1", "b", "correct", label=1)], now=T0 + 3)
        assert [r.annotation.kind for r in both] == ["label", "correct"]
        assert store.queue_depth("p1", now=T0 + 3)["done"] == 2

    def test_guidelines_version_is_stored_with_each_answer(self, store):
        make_project(store, n_items=2)
        store.lease("p1", "a", 2, n_eval=0, now=T0, ttl=60, lease_id="La")
        got = store.submit([replace(label("p1", "i0", "a", "La"), guidelines_version=3),
                            label("p1", "i1", "a", "La")], now=T0)
        assert [r.annotation.guidelines_version for r in got] == [3, None]
        assert [a.guidelines_version for a in store.annotations("p1")] == [3, None]

    def test_main_and_review_leases_at_once(self, store):
        """Annotators lease the main pool and reviewers the review pool while another thread
        moves a third of the items back and forth between them: nobody answers an item twice,
        and no item gets more answers than it requires."""
        import time

        make_project(store, n_items=30)
        moved = {f"i{j}": 2 for j in range(0, 30, 3)}
        store.require("p1", moved, now=T0)

        def change() -> None:
            for k in range(20):
                store.require("p1", moved, now=T0, pool="review" if k % 2 else "main")
                time.sleep(0.002)
            store.require("p1", moved, now=T0, pool="review")

        by_item = answer_while(store, change, [
            ("a", "main", "label"), ("b", "main", "label"), ("c", "main", "label"),
            ("r1", "review", "review"), ("r2", "review", "review")], size=2, tries=3000)
        assert {i: len(w) for i, w in by_item.items()} == {
            f"i{j}": moved.get(f"i{j}", 1) for j in range(30)}
        depth = store.queue_depth("p1", now=T0)
        assert (depth["done"], depth["open"], depth["review"], depth["leased"]) == (30, 0, 0, 0)

    # -- locks with fencing tokens -----------------------------------------------------
    def test_lock_expiry_renewal_and_fenced_job_writes(self, store):
        make_project(store)
        store.create_job(Job("j1", "p1", "round", "running", T0))
        name = "job:p1:round"
        t1 = store.acquire_lock(name, "a", 30, now=T0)
        assert t1 is not None
        assert store.acquire_lock(name, "b", 30, now=T0 + 10) is None
        assert store.acquire_lock(name, "a", 30, now=T0 + 10) is None  # not re-entrant
        assert store.renew_lock(name, "a", t1, 30, now=T0 + 20)  # a's heartbeat: until T0+50
        assert store.acquire_lock(name, "b", 30, now=T0 + 40) is None
        assert not store.renew_lock(name, "b", t1, 30, now=T0 + 40)  # not b's hold
        store.update_job("j1", fence=(name, t1), done=1)
        t2 = store.acquire_lock(name, "b", 30, now=T0 + 51)  # a stopped renewing: reclaimed
        assert t2 is not None and t2 > t1
        assert not store.renew_lock(name, "a", t1, 30, now=T0 + 52)  # a learns it lost the lock
        with pytest.raises(StaleToken, match="fencing"):  # a's late write is refused whole
            store.update_job("j1", fence=(name, t1), status="succeeded", done=9)
        assert (store.get_job("j1").status, store.get_job("j1").done) == ("running", 1)
        store.update_job("j1", fence=(name, t2), status="failed", error="lock expired")
        assert not store.release_lock(name, "a")
        assert store.release_lock(name, "b")
        t3 = store.acquire_lock(name, "a", 30, now=T0 + 53)
        assert t3 is not None and t3 > t2
        assert store.acquire_lock("other", "a", 30, now=T0) == 1  # one counter per lock name
        with pytest.raises(InvalidInput):
            store.acquire_lock("x", "a", 0, now=T0)

    # -- LFs, votes, arrays, rounds, jobs -------------------------------------------------
    def test_lfs_and_votes(self, store):
        make_project(store)
        store.put_lfs("p1", [LFRecord("a", "v1", "source", "src"), LFRecord("b", "v2", "votes", "0")])
        store.put_lfs("p1", [LFRecord("a", "v3", "source", "src2")])
        lfs = store.list_lfs("p1")
        assert [(lf.name, lf.version) for lf in lfs] == [("a", "v3"), ("b", "v2")]
        store.deactivate_lf("p1", "b")
        assert not store.list_lfs("p1")[1].active
        votes, faults, err = store.get_votes("p1", "v3")
        assert votes.dtype == np.int8 and votes.size == 0 and faults == 0 and err is None
        store.put_votes("p1", "v3", np.array([1, -1, 0], dtype=np.int8), 2, "ValueError: x")
        votes, faults, err = store.get_votes("p1", "v3")
        assert votes.tolist() == [1, -1, 0] and faults == 2 and err == "ValueError: x"

    def test_votes_written_under_a_fence_only_while_its_token_is_the_latest(self, store):
        make_project(store)
        name = "job:p1:apply_lfs"
        t1 = store.acquire_lock(name, "a", 30, now=T0)
        store.put_votes("p1", "v1", np.array([1, 0], dtype=np.int8), 0, None, fence=(name, t1))
        t2 = store.acquire_lock(name, "b", 30, now=T0 + 31)  # a stalled past its hold
        with pytest.raises(StaleToken, match="fencing"):
            store.put_votes("p1", "v1", np.array([0, 0, 0], dtype=np.int8), 1, "late", fence=(name, t1))
        votes, faults, err = store.get_votes("p1", "v1")
        assert votes.tolist() == [1, 0] and faults == 0 and err is None
        store.put_votes("p1", "v1", np.array([0, 1, 1], dtype=np.int8), 0, None, fence=(name, t2))
        assert store.get_votes("p1", "v1")[0].tolist() == [0, 1, 1]

    def test_assertions_kept_apart_from_lfs(self, store):
        make_project(store)
        assert store.list_assertions("p1") == []
        store.put_assertions("p1", [AssertionRecord("track", "v1", "consistency", '{"a":1}', True, 5.0),
                                    AssertionRecord("caps", "v2", "source", "src")])
        store.deactivate_assertion("p1", "track")
        store.put_assertions("p1", [AssertionRecord("caps", "v3", "source", "src2")])
        got = store.list_assertions("p1")
        assert [(a.name, a.version, a.kind, a.active) for a in got] == [
            ("track", "v1", "consistency", False), ("caps", "v3", "source", True)]
        assert got[0].source == '{"a":1}' and got[0].created_at == 5.0
        assert store.list_lfs("p1") == []  # an assertion is not a labeling function
        store.put_assertions("p1", [AssertionRecord("track", "v4", "consistency", "{}")])
        assert [(a.name, a.active) for a in store.list_assertions("p1")] == [("track", True), ("caps", True)]
        with pytest.raises(NotFound, match="assertion 'nope'"):
            store.deactivate_assertion("p1", "nope")
        with pytest.raises(NotFound):
            store.put_assertions("nope", [AssertionRecord("x", "v", "source", "s")])
        with pytest.raises(NotFound):
            store.list_assertions("nope")

    def test_arrays_roundtrip(self, store):
        make_project(store)
        assert store.get_array("p1", "probs") is None
        arr = np.random.default_rng(0).random((5, 3)).astype(np.float32)
        store.commit_round("p1", arrays={"probs": arr}, queue=([], [], []),
                           rnd=Round("p1", 1, "m1", T0, 0, {}, {}, "s"))
        out = store.get_array("p1", "probs")
        assert out.dtype == np.float32 and np.array_equal(out, arr)

    def test_rounds(self, store):
        make_project(store)
        assert store.latest_round("p1") is None
        for n in (1, 2):
            store.commit_round("p1", arrays={}, queue=([], [], []), rnd=Round(
                "p1", n, f"m{n}", T0, n * 10, {"accuracy": 0.5}, {"kind": "mv"}, "entropy", {"t": n}))
        assert store.latest_round("p1").model_version == "m2"
        assert store.list_rounds("p1")[0].strategy_state == {"t": 1}

    # -- a round's outputs in one atomic, fenced step ---------------------------------------
    def _round_outputs(self, number, ids, value):
        arrays = {"probs": np.full((6, 2), value, dtype=np.float32),
                  "lm_covered": np.arange(6) % 2 == 0}
        queue = (ids, [1.0 - k / 10 for k in range(len(ids))],
                 [{"strategy": f"s{number}", "rank": k} for k in range(len(ids))])
        rnd = Round("p1", number, f"m{number}", T0 + number, number * 10, {"accuracy": value},
                    {"kind": "mv"}, "entropy", {"t": number})
        return arrays, queue, rnd

    def _queue_order(self, store, lease_id):
        """The ranked queue as a lease sees it (then pool order): (item id, reasons) pairs."""
        lease = store.lease("p1", f"reader-{lease_id}", 6, n_eval=0, now=T0, ttl=60,
                            lease_id=lease_id)
        return [(li.item.id, li.reasons) for li in lease.items]

    def test_commit_round_with_the_current_token_lands_whole(self, store):
        make_project(store, n_items=6)
        name = "job:p1:round"
        token = store.acquire_lock(name, "a", 30, now=T0)
        arrays, queue, rnd = self._round_outputs(1, ["i4", "i2"], 0.25)
        store.commit_round("p1", arrays=arrays, queue=queue, rnd=rnd, fence=(name, token))
        for key, want in arrays.items():
            got = store.get_array("p1", key)
            assert got.dtype == want.dtype and got.shape == want.shape
            assert got.tobytes() == want.tobytes()
        assert store.list_rounds("p1") == [rnd]
        assert self._queue_order(store, "L")[:3] == [
            ("i4", {"strategy": "s1", "rank": 0}), ("i2", {"strategy": "s1", "rank": 1}),
            ("i0", {"strategy": "pool_order"})]

    def test_commit_round_with_a_stale_token_writes_nothing(self, store):
        make_project(store, n_items=6)
        name = "job:p1:round"
        t1 = store.acquire_lock(name, "a", 30, now=T0)
        first = self._round_outputs(1, ["i4", "i2"], 0.25)
        store.commit_round("p1", arrays=first[0], queue=first[1], rnd=first[2], fence=(name, t1))
        t2 = store.acquire_lock(name, "b", 30, now=T0 + 31)  # a stalled past its hold: b took over
        assert t2 is not None and t2 > t1
        arrays, queue, rnd = self._round_outputs(2, ["i0", "i5", "i1"], 0.75)
        arrays["assertion_votes"] = np.zeros((6, 1), dtype=np.int8)  # a name not stored before
        with pytest.raises(StaleToken, match="fencing"):
            store.commit_round("p1", arrays=arrays, queue=queue, rnd=rnd, fence=(name, t1))
        with pytest.raises(Conflict):  # a lock never taken has no token to match
            store.commit_round("p1", arrays=arrays, queue=queue, rnd=rnd, fence=("job:p1:x", 1))
        for key, want in first[0].items():  # the earlier outputs, byte for byte
            got = store.get_array("p1", key)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
        assert store.get_array("p1", "assertion_votes") is None
        assert store.list_rounds("p1") == [first[2]]
        assert [i for i, _ in self._queue_order(store, "L1")][:2] == ["i4", "i2"]
        # the new holder's commit lands
        store.commit_round("p1", arrays=arrays, queue=queue, rnd=rnd, fence=(name, t2))
        assert store.latest_round("p1") == rnd and len(store.list_rounds("p1")) == 2
        assert store.get_array("p1", "probs").tobytes() == arrays["probs"].tobytes()
        assert store.get_array("p1", "assertion_votes").tobytes() == bytes(6)

    def test_commit_round_without_a_fence(self, store):
        make_project(store, n_items=6)
        first = self._round_outputs(1, ["i4", "i2"], 0.25)
        store.commit_round("p1", arrays=first[0], queue=first[1], rnd=first[2], fence=None)
        second = self._round_outputs(2, ["i3"], 0.5)
        store.commit_round("p1", arrays={"probs": second[0]["probs"]}, queue=second[1],
                           rnd=second[2])
        assert store.list_rounds("p1") == [first[2], second[2]]
        assert store.get_array("p1", "probs").tobytes() == second[0]["probs"].tobytes()
        kept = store.get_array("p1", "lm_covered")  # an array the second commit left alone
        assert kept.tobytes() == first[0]["lm_covered"].tobytes()
        # the queue is replaced whole: nothing of the first one is left
        assert self._queue_order(store, "L") == [("i3", {"strategy": "s2", "rank": 0})] + [
            (f"i{k}", {"strategy": "pool_order"}) for k in (0, 1, 2, 4, 5)]

    def test_commit_round_checks_its_arguments(self, store):
        make_project(store, n_items=6)
        arrays, (ids, scores, reasons), rnd = self._round_outputs(1, ["i4", "i2"], 0.25)
        with pytest.raises(InvalidInput, match="project"):
            store.commit_round("p2", arrays=arrays, queue=(ids, scores, reasons), rnd=rnd)
        with pytest.raises(InvalidInput, match="scores"):
            store.commit_round("p1", arrays=arrays, queue=(ids, scores[:1], reasons), rnd=rnd)
        with pytest.raises(NotFound):
            store.commit_round("nope", arrays=arrays, queue=(ids, scores, reasons),
                               rnd=Round("nope", 1, "m", T0, 0, {}, {}, "s"))
        assert store.list_rounds("p1") == [] and store.get_array("p1", "probs") is None

    def test_one_job_of_a_kind(self, store):
        make_project(store)
        store.create_job(Job("j1", "p1", "round", "queued", T0))
        with pytest.raises(Conflict):
            store.create_job(Job("j2", "p1", "round", "queued", T0))
        store.create_job(Job("j3", "p1", "export", "queued", T0))
        store.update_job("j1", status="succeeded", done=3, total=3)
        store.create_job(Job("j4", "p1", "round", "queued", T0))
        assert store.get_job("j1").done == 3
        assert [j.id for j in store.list_jobs("p1")] == ["j1", "j3", "j4"]
        with pytest.raises(NotFound):
            store.get_job("zzz")
