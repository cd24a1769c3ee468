"""The review queue's use cases on both stores (SQLite and a real Redis): a round sends the top of
its label-error ranking to review, a reviewer keeps or corrects labels, and routing decisions made
on an older log do not stick."""

from __future__ import annotations

import numpy as np

from api.service import review, routing
from api.service.annotate import AnnotationIn, lease_batch, submit_annotations
from api.service.export import export_rows
from api.service.projects import update_settings
from api.service.rounds import run_round
from tests.api.test_quality_service import setup
from workers.executor import InProcessExecutor


def decide(store, who, lease, labels, comment="checked"):
    return submit_annotations(store, "p", who, [
        AnnotationIn(i, lease.id, "review", lab, comment) for i, lab in labels.items()], now=20.0)


def test_a_round_sends_the_top_label_errors_to_review_and_decisions_stick(either_store):
    store = either_store
    setup(store, wrong={"it3", "it4"})
    update_settings(store, "p", {"review_top_k": 3}, now=3.5)
    run_round(store, "p", InProcessExecutor(), now=4.0)
    assert store.queue_depth("p", 5.0)["review"] == 3
    assert lease_batch(store, "p", "carol", 50, now=5.0, rng=np.random.default_rng(0)).items == ()
    assert review.lease_review(store, "p", "ann", None, now=5.0)[0].items == ()  # she labeled all
    lease, _, extra = review.lease_review(store, "p", "rita", 10, now=5.0)
    got = {li.item.id: x for li, x in zip(lease.items, extra, strict=True)}
    assert len(got) == 3 and {"it3", "it4"} <= set(got)
    why = got["it3"]["review"]
    assert why["why"] == "label_error" and why["label"] == "neg" and why["suggested"] == "pos"
    assert why["label_quality"] < 0.5 and why["reasons"]
    assert [a["annotator"] for a in got["it3"]["answers"]] == ["ann", "bob"]
    other = next(i for i in got if i not in ("it3", "it4"))
    keep = int(other[2:]) % 2  # the right class: the reviewer keeps it
    decide(store, "rita", lease, {"it3": 1, "it4": 0, other: keep})
    rows = {r["id"]: r for r in export_rows(store, "p")}
    assert (rows["it3"]["label"], rows["it3"]["adjudicated"]) == ("pos", True)
    assert rows[other]["adjudicated"] and rows[other]["label"] == ["neg", "pos"][keep]
    assert store.queue_depth("p", 21.0)["review"] == 0
    log = store.annotations("p")
    assert sum(a.kind == "label" and a.item_id == "it3" for a in log) == 2  # nothing overwritten
    run_round(store, "p", InProcessExecutor(), now=30.0)  # three more, none of those decided
    lease2, _, _ = review.lease_review(store, "p", "rita", 10, now=31.0)
    assert len(lease2.items) == 3 and not {li.item.id for li in lease2.items} & set(got)


class SlowIndex(routing.AnswerIndex):
    """A replica whose first read of the log comes from before the latest submits."""

    def __init__(self, stale: dict) -> None:
        super().__init__()
        self.stale = stale

    def events(self, store, project_id, item_ids):
        if self.stale:
            out, self.stale = self.stale, {}
            return out
        return super().events(store, project_id, item_ids)


def test_a_decision_made_on_an_older_log_is_decided_again(either_store):
    store = either_store
    setup(store)  # ann and bob agree on every item (it needs 2)
    rng = np.random.default_rng(0)
    fast = routing.AnswerIndex()
    # bob corrects it0: disputed, a third annotator answers, still disputed: review (required 4)
    submit_annotations(store, "p", "bob", [AnnotationIn("it0", None, "correct", 1)], now=3.0)
    stale = fast.events(store, "p", ["it0"])  # what a slow replica read at this point
    [r] = routing.route_items(store, fast, "p", ["it0"], now=3.0)
    assert (r.required, r.pool) == (3, None)
    carol = lease_batch(store, "p", "carol", 1, now=4.0, rng=rng)
    assert [li.item.id for li in carol.items] == ["it0"]
    submit_annotations(store, "p", "carol", [AnnotationIn("it0", carol.id, "label", 0)], now=5.0)
    [r] = routing.route_items(store, fast, "p", ["it0"], now=5.0)
    assert (r.required, r.pool) == (4, "review")
    # the slow replica decides on the log before carol's answer (required 3, main pool), writes
    # it, sees that the log moved, decides again and puts it back under review
    [r] = routing.route_items(store, SlowIndex(stale), "p", ["it0"], now=6.0)
    assert (r.required, r.pool) == (4, "review")
    assert store.get_item("p", "it0").pool == "review"
    lease, _, extra = review.lease_review(store, "p", "rita", 5, now=7.0)
    assert [li.item.id for li in lease.items] == ["it0"]
    assert extra[0]["review"]["why"] == "disagreement"


def test_a_round_routes_answers_whose_routing_never_ran(either_store):
    store = either_store
    setup(store)
    # stored without routing, as by a replica that stopped before it routed them
    submit_annotations(store, "p", "bob", [AnnotationIn("it1", None, "correct", 0)], now=3.0)
    rng = np.random.default_rng(0)
    assert lease_batch(store, "p", "carol", 5, now=4.0, rng=rng).items == ()
    run_round(store, "p", InProcessExecutor(), now=5.0)
    carol = lease_batch(store, "p", "carol", 5, now=6.0, rng=rng)
    assert [li.item.id for li in carol.items] == ["it1"]
    # a retried submit (a duplicate of one stored before) routes again, to the same decision
    fix = [AnnotationIn("it2", None, "correct", 1, idempotency_key="k")]
    submit_annotations(store, "p", "bob", fix, now=7.0)
    again = submit_annotations(store, "p", "bob", fix, now=8.0)
    assert again[0].duplicate
    [r] = routing.route_submitted(store, routing.AnswerIndex(), "p", again, now=8.0)
    assert (r.item_id, r.required, r.pool) == ("it2", 3, None)
    dave = lease_batch(store, "p", "dave", 5, now=9.0, rng=rng)
    assert [li.item.id for li in dave.items] == ["it2"]  # carol holds it1
