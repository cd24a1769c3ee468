"""Gold items in leases once a round has ranked the queue, on both stores (SQLite and a real
Redis): they carry the strategy's reasons like the items beside them and sit anywhere, also
when a tool resumes its leases."""

from __future__ import annotations

import json

import numpy as np

from api.service.annotate import AnnotationIn, lease_batch, live_leases, submit_annotations
from api.service.gold import mark_gold
from api.service.ingest import ingest_records
from api.service.projects import create_project
from api.service.render import LeaseRenderer
from api.service.rounds import run_round
from labeling.ingest import Record
from workers.executor import InProcessExecutor

WORDS = {0: ["awful", "bad", "poor", "dull"], 1: ["great", "good", "fine", "nice"]}


def test_gold_items_look_like_the_ranked_items_beside_them(either_store):
    store = either_store
    create_project(store, "p", ["neg", "pos"], now=0.0, settings={
        "eval_fraction": 0.0, "retrain_every": 10**6, "gold_rate": 0.3, "strategy": "entropy"})
    records = [Record(f"it{k}", f"{WORDS[k % 2][k % 4]} {WORDS[(k // 2) % 2][k % 3]} thing {k}")
               for k in range(300)]
    ingest_records(store, "p", records, rng=np.random.default_rng(0), now=0.0)
    gold = {f"it{k}": k % 2 for k in range(0, 300, 3)}
    mark_gold(store, "p", labels=gold, now=1.0, owner="eng")
    rng = np.random.default_rng(1)
    for t in range(4):
        lease = lease_batch(store, "p", "ann", 10, now=2.0 + t, rng=rng)
        submit_annotations(store, "p", "ann", [AnnotationIn(li.item.id, lease.id, "label",
                                                            int(li.item.id[2:]) % 2)
                                               for li in lease.items], now=2.5 + t)
    run_round(store, "p", InProcessExecutor(), now=10.0)

    places, seen = [], 0
    for t in range(15):
        lease = lease_batch(store, "p", "bob", 10, now=11.0 + t, rng=rng)
        assert len(lease.items) == 10 and lease.item_ids == tuple(li.item.id for li in lease.items)
        kinds = {json.dumps(sorted(li.reasons)) for li in lease.items}
        assert len(kinds) == 1, lease.items  # one shape of reasons for all
        assert {li.reasons["strategy"] for li in lease.items} == {"entropy"}
        values = [li.reasons["value"] for li in lease.items]
        assert values == sorted(values, reverse=True)  # best first, gold items included
        places += [i for i, li in enumerate(lease.items) if li.item.id in gold]
        seen += sum(li.item.id in gold for li in lease.items)
    assert 15 <= seen <= 80  # 150 items at 0.3: 45 +- 6
    # anywhere in the batch (placement is drawn per lease id: bounds that ~45 draws always meet)
    assert min(places) <= 2 and max(places) >= 7 and len(set(places)) >= 5
    resumed = live_leases(store, "p", "bob", now=30.0, renderer=LeaseRenderer())
    assert len(resumed) == 15  # what a restarted tool gets back
    for doc in resumed:
        assert {json.dumps(sorted(it["reasons"])) for it in doc["items"]} == {
            '["predicted", "scorer", "strategy", "value"]'}
