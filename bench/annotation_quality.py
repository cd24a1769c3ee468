"""Annotation quality: does the service find the careless annotator and the wrong labels?

    python -m bench.annotation_quality --datasets wrench_youtube,wrench_sms --seeds 3 --json
    python -m bench.annotation_quality --parts routing --json     # the routing figures only

The real service in-process (SQLite store, the same use cases the HTTP routes call) on a WRENCH
train split with its precomputed LF votes:

* ``noisy_annotator_rank``: five simulated annotators answer from the gold labels, four wrong 5%
  of the time and one 30%; 40% of the items need three of them (``redundancy_fraction`` 0.4,
  ``redundancy_k`` 3). After the labels, a round, then ``GET /annotators``'s ranking: the worst
  place the 30% annotator took over the seeds (goal: last, ``== n_annotators``).
* ``injected_error_recall``: one annotator labels items from the queue; a share of the answers are
  deliberately flipped in the log. After a round, the share of flipped labels in the top 2 x
  (number flipped) of ``GET /label-errors`` (goal >= 0.7). Reported as the minimum and mean over
  the seeds.
* agreement: ``GET /agreement`` on the crowd's answers recomputed here straight from the answer
  log with ``sklearn.metrics.cohen_kappa_score`` and ``statsmodels``' ``fleiss_kappa``; the
  largest absolute difference (goal 0).

* ``final_label_accuracy_gap`` and ``label_cost_ratio`` (:mod:`bench.annotation_routing`, over
  real HTTP): a sample of ``--routing-items`` items labeled to the end by noise-free annotators,
  by the noisy crowd with disagreement routing and a reviewer (``--reviewer-error``), and by the
  noisy crowd without routing; every item needs ``--redundancy-k`` annotators. The gap is the
  noise-free run's final-label accuracy minus the noisy run's, the ratio the noisy run's answers
  (labels and review decisions) over the noise-free run's; both pooled over the seeds and
  datasets (goals: gap <= 0.01, ratio <= 1.3), and the same two without routing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATASETS = Path(os.environ.get("LABELLOOP_DATASETS",
                               Path(__file__).resolve().parents[2] / "shared" / "datasets"))
CROWD = {"ann0": 0.05, "ann1": 0.05, "ann2": 0.05, "ann3": 0.05, "noisy": 0.30}
NOISY = "noisy"
ROUND_EVERY = 100  # labels between rounds


def _answer(truth: int, error: float, n_classes: int, rng: np.random.Generator) -> int:
    if rng.random() >= error:
        return truth
    return int((truth + rng.integers(1, n_classes)) % n_classes)


def _project(store, data, seed: int, **settings) -> dict[str, int]:
    from api.service.ingest import ingest_records
    from api.service.projects import create_project

    create_project(store, "q", data.class_names, now=0.0, settings={
        "eval_fraction": 0.0, "seed": seed, "batch_size": 10, "lease_ttl_s": 3600,
        "retrain_every": 10**6, **settings})
    ingest_records(store, "q", data.pool, rng=np.random.default_rng(seed), now=0.0)
    return {r.id: int(r.gold) for r in data.pool}


def crowd_run(data, seed: int, budget: int) -> dict:
    """Five annotators label ``budget`` answers from the queue; returns the annotator ranking
    and the agreement figures with their independent recomputation."""
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import fleiss_kappa

    from api.service import quality
    from api.service.annotate import AnnotationIn, lease_batch, submit_annotations
    from api.service.rounds import run_round
    from api.storage.sqlite import SQLiteStore
    from workers.executor import InProcessExecutor

    rng = np.random.default_rng(seed)
    k = len(data.class_names)
    executor = InProcessExecutor()
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "q.db")
        try:
            gold = _project(store, data, seed, redundancy_fraction=0.4, redundancy_k=3)
            run_round(store, "q", executor, now=1.0)
            spent, clock, next_round = 0, 2.0, ROUND_EVERY
            while spent < budget:
                for who, error in CROWD.items():
                    lease = lease_batch(store, "q", who, 10, now=clock, rng=rng)
                    if lease.items:
                        submit_annotations(store, "q", who, [
                            AnnotationIn(li.item.id, lease.id, "label",
                                         _answer(gold[li.item.id], error, k, rng),
                                         time_spent_s=float(rng.gamma(4.0, 2.0)))
                            for li in lease.items], now=clock + 0.5)
                        spent += len(lease.items)
                    clock += 1.0
                if spent >= next_round:  # the queue follows the model
                    run_round(store, "q", executor, now=clock)
                    next_round += ROUND_EVERY
            run_round(store, "q", executor, now=clock + 1)
            people = quality.annotators(store, "q")
            agreement = quality.agreement(store, "q")
            # the same figures straight from the log, with the libraries
            names = sorted(CROWD)
            index = {it.id: it.seq for chunk in store.iter_items("q") for it in chunk}
            r = np.full((len(index), len(names)), -1)
            for a in store.annotations("q"):
                r[index[a.item_id], names.index(a.annotator)] = a.label
            m = (r >= 0).sum(axis=1)
            used = r[m == agreement["fleiss_kappa"]["ratings_per_item"]]
            table = np.stack([(used == c).sum(axis=1) for c in range(k)], axis=1)
            diffs = [abs(agreement["fleiss_kappa"]["value"] - fleiss_kappa(table))]
            for pair in agreement["pairs"]:
                a, b = (names.index(x) for x in pair["annotators"])
                both = (r[:, a] >= 0) & (r[:, b] >= 0)
                if pair["cohen_kappa"] is not None:
                    diffs.append(abs(pair["cohen_kappa"] - cohen_kappa_score(r[both, a], r[both, b])))
        finally:
            store.close()
    rank = next(p["rank"] for p in people if p["annotator"] == NOISY)
    return {
        "labels": spent,
        "noisy_rank": rank,
        "noisy_marked": next(p["below_others"] for p in people if p["annotator"] == NOISY),
        "others_marked": sum(p["below_others"] for p in people if p["annotator"] != NOISY),
        "rank_by": people[0]["rank_by"],
        "quality": {p["annotator"]: p["quality"]["value"] for p in people},
        "krippendorff_alpha": agreement["krippendorff_alpha"],
        "fleiss_kappa": agreement["fleiss_kappa"],
        "pairs": len(agreement["pairs"]),
        "agreement_max_abs_diff": float(max(diffs)),
    }


def flip_run(data, seed: int, budget: int, flip: float) -> dict:
    """One annotator labels ``budget`` queued items, ``flip`` of them deliberately wrong."""
    from api.service import quality
    from api.service.annotate import AnnotationIn, lease_batch, submit_annotations
    from api.service.rounds import run_round
    from api.storage.sqlite import SQLiteStore
    from workers.executor import InProcessExecutor

    rng = np.random.default_rng(1000 + seed)
    k = len(data.class_names)
    executor = InProcessExecutor()
    flipped: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "q.db")
        try:
            gold = _project(store, data, seed)
            run_round(store, "q", executor, now=1.0)
            spent, clock = 0, 2.0
            while spent < budget:
                lease = lease_batch(store, "q", "ann", min(ROUND_EVERY, budget - spent), now=clock,
                                    rng=rng)
                if not lease.items:
                    break
                answers = []
                for li in lease.items:
                    label = gold[li.item.id]
                    if rng.random() < flip:
                        label = _answer(label, 1.0, k, rng)
                        flipped.add(li.item.id)
                    answers.append(AnnotationIn(li.item.id, lease.id, "label", label))
                submit_annotations(store, "q", "ann", answers, now=clock + 0.5)
                spent += len(answers)
                clock += 1.0
                run_round(store, "q", executor, now=clock)  # the queue follows the model
            errors = quality.label_errors(store, "q", limit=2 * max(1, len(flipped)))
        finally:
            store.close()
    top = {x["id"] for x in errors["items"]}
    return {"labels": spent, "flipped": len(flipped),
            "recall_at_2x": len(top & flipped) / max(1, len(flipped))}


def _routing(args, data, seed: int, client, stream: int) -> dict:
    from bench.annotation_routing import routing_figures

    rng = np.random.default_rng(2000 + seed)
    pick = rng.choice(len(data.pool), size=min(args.routing_items, len(data.pool)), replace=False)
    routing = {k: v for k, v in (("min_agreement", args.min_agreement),
                                 ("max_required", args.max_required),
                                 ("review_top_k", args.review_top_k)) if v is not None}
    return routing_figures(
        client, f"{data.name.replace('_', '-')}-{seed}", [data.pool[i] for i in sorted(pick)],
        data.class_names, CROWD, seed=seed, routing=routing, reviewer_error=args.reviewer_error,
        settings={"redundancy_fraction": 1.0, "redundancy_k": args.redundancy_k}, stream=stream)


def _pooled(runs: list[dict], variant: str) -> tuple[float, float]:
    """Accuracy gap and cost ratio of ``variant`` against the clean runs, pooled over runs."""
    items = sum(r["clean"]["items"] for r in runs)
    gap = (sum(r["clean"]["accuracy"] * r["clean"]["items"] for r in runs)
           - sum(r[variant]["accuracy"] * r[variant]["items"] for r in runs)) / items
    return gap, sum(r[variant]["cost"] for r in runs) / sum(r["clean"]["cost"] for r in runs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="wrench_youtube,wrench_sms")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--parts", default="crowd,flip,routing",
                   help="which parts to run: crowd (ranking, agreement), flip (label errors), "
                        "routing (final-label accuracy and cost)")
    p.add_argument("--crowd-labels", type=int, default=600, help="answers the crowd gives")
    p.add_argument("--flip-labels", type=int, default=300, help="labels in the flipped run")
    p.add_argument("--flip", type=float, default=0.1, help="share of those flipped")
    p.add_argument("--routing-items", type=int, default=400, help="items labeled to the end")
    p.add_argument("--redundancy-k", type=int, default=2, help="annotators every item needs")
    p.add_argument("--min-agreement", type=float, default=None, help="default: the project's")
    p.add_argument("--max-required", type=int, default=None, help="default: the project's")
    p.add_argument("--review-top-k", type=int, default=None,
                   help="label-error review after the round (default: the project's)")
    p.add_argument("--reviewer-error", type=float, default=0.02)
    p.add_argument("--json", action="store_true", help="print the JSON summary last")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))
    from api.service.simulate import load_dataset

    started = time.perf_counter()
    per_dataset, ranks, recalls, diffs, routed = {}, [], [], [], []
    with contextlib.ExitStack() as stack:
        client = None
        if "routing" in parts:
            import httpx

            from tests.server import Server

            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            srv = Server(Path(tmp) / "data").start()
            stack.callback(srv.stop)
            client = stack.enter_context(httpx.Client(base_url=srv.url, timeout=120))
        for stream, name in enumerate(args.datasets.split(",")):
            path = Path(name) if Path(name).exists() else DATASETS / name
            data = load_dataset(path)
            runs = []
            for seed in range(args.seeds):
                run: dict = {"seed": seed}
                if "crowd" in parts:
                    run["crowd"] = crowd = crowd_run(data, seed, args.crowd_labels)
                    ranks.append(crowd["noisy_rank"])
                    diffs.append(crowd["agreement_max_abs_diff"])
                    print(f"{name} seed={seed}: noisy annotator rank {crowd['noisy_rank']}/"
                          f"{len(CROWD)}, alpha {crowd['krippendorff_alpha']['value']:.3f}",
                          file=sys.stderr)
                if "flip" in parts:
                    run["flipped"] = flipped = flip_run(data, seed, args.flip_labels, args.flip)
                    recalls.append(flipped["recall_at_2x"])
                    print(f"{name} seed={seed}: flipped-label recall@2x "
                          f"{flipped['recall_at_2x']:.3f} ({flipped['flipped']} flipped)",
                          file=sys.stderr)
                if "routing" in parts:
                    run["routing"] = r = _routing(args, data, seed, client, stream)
                    routed.append(r)
                    print(f"{name} seed={seed}: accuracy gap {r['accuracy_gap']:.4f} (no routing "
                          f"{r['accuracy_gap_no_routing']:.4f}), cost ratio {r['cost_ratio']:.3f}"
                          f", wrong {r['routed']['wrong']}", file=sys.stderr)
                runs.append(run)
            per_dataset[data.name] = runs
    summary: dict = {"benchmark": "annotation_quality", "args": vars(args),
                     "n_annotators": len(CROWD)}
    if ranks:
        summary.update(noisy_annotator_rank=max(ranks),
                       noisy_annotator_rank_goal_met=max(ranks) == len(CROWD),
                       agreement_max_abs_diff_vs_sklearn_statsmodels=max(diffs))
    if recalls:
        summary.update(injected_error_recall=min(recalls),
                       injected_error_recall_mean=float(np.mean(recalls)),
                       injected_error_recall_goal_met=min(recalls) >= 0.7)
    if routed:
        gap, ratio = _pooled(routed, "routed")
        gap0, ratio0 = _pooled(routed, "unrouted")
        summary.update(
            final_label_accuracy_gap=round(gap, 6), label_cost_ratio=round(ratio, 4),
            final_label_accuracy_gap_no_routing=round(gap0, 6),
            label_cost_ratio_no_routing=round(ratio0, 4),
            final_label_accuracy_gap_worst_run=round(max(r["accuracy_gap"] for r in routed), 6),
            label_cost_ratio_worst_run=round(max(r["cost_ratio"] for r in routed), 4),
            final_label_accuracy_gap_goal_met=gap <= 0.01, label_cost_ratio_goal_met=ratio <= 1.3)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["datasets"] = per_dataset
    if args.json:
        print(json.dumps(summary))
    else:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
