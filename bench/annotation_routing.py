"""What disagreement routing and adjudication buy: final-label accuracy and label cost.

Part of ``bench.annotation_quality`` (its ``final_label_accuracy_gap`` and ``label_cost_ratio``).
Over real HTTP against one ``labelloop serve`` process (SQLite store), a random sample of a
WRENCH train split is labeled to the end three times, each in its own project with the same
redundancy (every item needs ``redundancy_k`` distinct annotators):

* ``clean``: five annotators who answer from the gold labels and never err;
* ``routed``: the noisy crowd (four wrong 5% of the time, one 30%) with disagreement routing on
  (``min_agreement``, ``max_required``) and a reviewer who leases the review queue
  (``POST /projects/{p}/review/leases``) and decides from the gold labels, wrong
  ``reviewer_error`` of the time;
* ``unrouted``: the same crowd with routing off (``min_agreement`` 0; label-error review, if
  ``review_top_k`` asks for it, stays on).

Annotators lease in a random order each pass, ten items a lease, until nothing is left for
anyone; then one round runs (its CROWDLAB annotator quality weighs the consensus vote, and its
end model labels an item without a human label). Final-label accuracy: the export's label against
the gold label over the sample (an item without a label counts as wrong). Cost: the answers in the log (``label`` and ``review``
events; skips and flags never happen here).
"""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
import numpy as np

__all__ = ["labeling_run", "routing_figures"]

BATCH = 10
REVIEWER = "reviewer"
MAX_PASSES = 10_000


def _answer(truth: int, error: float, n_classes: int, rng: np.random.Generator) -> int:
    if rng.random() >= error:
        return truth
    return int((truth + rng.integers(1, n_classes)) % n_classes)


def _ok(r: httpx.Response, *codes: int) -> dict | list:
    if r.status_code not in (codes or (200,)):
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:500]}")
    return r.json()


def _submit(c: httpx.Client, pid: str, who: str, lease: dict, answers: list[dict]) -> None:
    for a in answers:
        a["lease_id"] = lease["lease_id"]
    _ok(c.post(f"/projects/{pid}/annotations", json={"annotator": who, "annotations": answers}))


def _round(c: httpx.Client, pid: str, timeout: float = 600.0) -> None:
    job = _ok(c.post(f"/projects/{pid}/jobs", json={"kind": "round"}), 202)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _ok(c.get(f"/jobs/{job['id']}"))
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    if job["status"] != "succeeded":
        raise RuntimeError(f"round of {pid}: {job['status']} {job.get('error')}")


def _label_to_end(c: httpx.Client, pid: str, crowd: dict[str, float], gold: dict[str, int],
                  k: int, reviewer_error: float, rng: np.random.Generator) -> int:
    """Annotators (in a random order each pass) and the reviewer lease and answer until a pass
    finds nothing for anyone; how many answers were given."""
    total = 0
    for _ in range(MAX_PASSES):
        moved = 0
        for who in rng.permutation(list(crowd)).tolist():
            lease = _ok(c.post(f"/projects/{pid}/leases", json={"annotator": who, "size": BATCH}),
                        201)
            if lease["items"]:
                _submit(c, pid, who, lease, [
                    {"item_id": it["id"], "label": _answer(gold[it["id"]], crowd[who], k, rng)}
                    for it in lease["items"]])
                moved += len(lease["items"])
        review = _ok(c.post(f"/projects/{pid}/review/leases",
                            json={"annotator": REVIEWER, "size": BATCH}), 201)
        if review["items"]:
            _submit(c, pid, REVIEWER, review, [
                {"item_id": it["id"], "kind": "review", "comment": "decided from the guidelines",
                 "label": _answer(gold[it["id"]], reviewer_error, k, rng)}
                for it in review["items"]])
            moved += len(review["items"])
        if not moved:
            break
        total += moved
    return total


def labeling_run(c: httpx.Client, pid: str, records: list, class_names: list[str],
                 crowd: dict[str, float], *, settings: dict, reviewer_error: float,
                 rng: np.random.Generator) -> dict:
    """Label ``records`` (with gold labels) in a new project ``pid`` until nothing is left, run
    a round, answer what it sent to the review queue (``review_top_k``); returns accuracy, cost,
    how many items were routed and adjudicated, and where the wrong final labels came from."""
    k = len(class_names)
    gold = {r.id: int(r.gold) for r in records}
    _ok(c.post("/projects", json={"id": pid, "classes": class_names, "settings": {
        "eval_fraction": 0.0, "retrain_every": 10**6, "lease_ttl_s": 3600.0, **settings}}), 201)
    _ok(c.post(f"/projects/{pid}/items", json={"items": [
        {"id": r.id, "text": r.text} for r in records]}), 201)
    _label_to_end(c, pid, crowd, gold, k, reviewer_error, rng)
    _round(c, pid)  # its CROWDLAB annotator quality weighs the vote; review_top_k fills the queue
    after_round = _label_to_end(c, pid, crowd, gold, k, reviewer_error, rng)
    queue = _ok(c.get(f"/projects/{pid}/stats"))["queue"]
    export = c.get(f"/projects/{pid}/export", params={"include_text": "false"})
    rows = [json.loads(line) for line in export.text.splitlines()]
    wrong = [row for row in rows if row["label"] != class_names[gold[row["id"]]]]
    events = _ok(c.get(f"/projects/{pid}/annotations"))
    kinds = Counter(e["kind"] for e in events)
    per_item = Counter(e["item_id"] for e in events if e["kind"] == "label")
    base = settings.get("redundancy_k", 1) if settings.get("redundancy_fraction") else 1
    return {
        "items": len(rows), "accuracy": 1 - len(wrong) / len(rows),
        "no_label": sum(row["label"] is None for row in rows),
        "cost": kinds["label"] + kinds["review"], "labels": kinds["label"],
        "reviews": kinds["review"], "answers_after_round": after_round,
        "routed": sum(n > base for n in per_item.values()),
        "adjudicated": len({e["item_id"] for e in events if e["kind"] == "review"}),
        # wrong final labels: a reviewer's decision, or the annotators' unanimous / split vote
        "wrong": {"adjudicated": sum(r["adjudicated"] for r in wrong),
                  "unanimous": sum(not r["adjudicated"] and r["agreement"] == 1.0 for r in wrong),
                  "split": sum(not r["adjudicated"] and r["agreement"] < 1.0 for r in wrong)},
        "left_open": {x: queue.get(x, 0) for x in ("open", "leased", "review")},
    }


def routing_figures(c: httpx.Client, tag: str, records: list, class_names: list[str],
                    crowd: dict[str, float], *, seed: int, settings: dict,
                    routing: dict, reviewer_error: float, stream: int = 0) -> dict:
    """The clean, routed and unrouted runs on the same items, and the gaps and cost ratios;
    ``stream`` keeps the answers' random draws of different datasets apart."""
    runs = {}
    for variant, crowd_of, extra in (
            ("clean", dict.fromkeys(crowd, 0.0), routing),
            ("routed", crowd, routing),
            ("unrouted", crowd, {**routing, "min_agreement": 0.0})):
        runs[variant] = labeling_run(
            c, f"{tag}-{variant}", records, class_names, crowd_of,
            settings={**settings, **extra}, reviewer_error=reviewer_error,
            rng=np.random.default_rng([seed, stream, len(runs)]))
    clean = runs["clean"]
    return {
        **runs,
        "accuracy_gap": clean["accuracy"] - runs["routed"]["accuracy"],
        "cost_ratio": runs["routed"]["cost"] / clean["cost"],
        "accuracy_gap_no_routing": clean["accuracy"] - runs["unrouted"]["accuracy"],
        "cost_ratio_no_routing": runs["unrouted"]["cost"] / clean["cost"],
    }
