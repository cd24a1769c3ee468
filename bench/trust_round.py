"""The trust step of one round with LFs: what ``labeling.trust.choose_trust`` chooses and its cost.

    python -m bench.trust_round --dataset wrench_chemprot --labels 200 --seed 0 --json

The dataset's pool (as ``bench.label_efficiency`` loads it) is featurized, Snorkel's label model
fitted on its LF votes, and ``--labels`` random items get their gold label, as in a ``random``
round; then ``choose_trust`` runs once. Reported: its CPU seconds (BLAS on one thread, so on a
shared machine CPU time is the figure to compare, not wall time), wall seconds, and the choice
with every candidate's cross-fitted accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="wrench_chemprot")
    p.add_argument("--labels", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from bench.label_efficiency import _load
    from labeling.features import Featurizer
    from labeling.frame import items_frame
    from labeling.label_model import LabelModel
    from labeling.trust import choose_trust

    threadpool_limits(1)
    data = _load(args.dataset, 0)
    X = Featurizer().fit_transform(items_frame(data.pool))
    votes = np.array([r.votes for r in data.pool], dtype=np.int8)
    gold = np.array([r.gold for r in data.pool])
    k = len(data.class_names)
    lm = LabelModel(k).fit(votes)  # as a round: Snorkel, or majority vote with too few LFs
    human = np.full(len(gold), -1)
    rows = np.random.default_rng(args.seed).choice(len(gold), args.labels, replace=False)
    human[rows] = gold[rows]
    wall, cpu = time.perf_counter(), time.process_time()
    trust = choose_trust(X, human, k, votes=votes, label_models={lm.kind_: lm.predict_proba(votes)},
                         seed=args.seed)
    out = {"benchmark": "trust_round", "dataset": args.dataset, "labels": args.labels,
           "seed": args.seed, "cpu_s": round(time.process_time() - cpu, 1),
           "wall_s": round(time.perf_counter() - wall, 1), "trust": trust.as_dict()}
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
