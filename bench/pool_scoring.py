"""Pool scoring: a linear end model over 1M items, entropy, top-k, through labelloop, against bare
scikit-learn + numpy (``predict_proba`` + entropy + ``argpartition``) in the same run.

    python -m bench.pool_scoring --items 1000000 --json

Synthetic dense features (32 columns, 10 classes; say so when quoting). labelloop's path is
``EndModel.predict_proba`` then ``strategies.select("entropy", ...)`` with its input validation,
random tie-breaks and reasons. Field ``vs_baseline`` is labelloop time / baseline time (goal <= 1.5).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from sklearn.linear_model import LogisticRegression

    from labeling.end_model import EndModel
    from strategies import QueryContext, select

    rng = np.random.default_rng(0)
    n, d, k_classes = args.items, 32, 10
    X = rng.normal(size=(n, d)).astype(np.float32)
    centers = rng.normal(size=(k_classes, d))
    y = (X @ centers.T + rng.normal(scale=2.0, size=(n, k_classes))).argmax(1)
    train = slice(0, 10_000)
    model = EndModel(k_classes, seed=0).fit(X[train], y[train])
    bare = LogisticRegression(max_iter=1000, random_state=0).fit(X[train], y[train])
    candidates = np.ones(n, dtype=bool)
    candidates[train] = False

    def ours():
        probs = model.predict_proba(X)
        ctx = QueryContext(n_classes=k_classes, candidates=candidates, probs=probs)
        return select("entropy", ctx, args.k, np.random.default_rng(1)).indices

    def baseline():
        probs = bare.predict_proba(X)
        ent = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(axis=1)
        ent[~candidates] = -np.inf
        top = np.argpartition(-ent, args.k)[: args.k]
        return top[np.argsort(-ent[top])]

    def best(fn):
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return out, min(times)

    picks, t_ours = best(ours)
    base, t_base = best(baseline)
    overlap = len(set(picks.tolist()) & set(base.tolist())) / args.k
    out = {"benchmark": "pool_scoring", "items": n, "k": args.k, "vs_baseline": round(t_ours / t_base, 3),
           "labelloop_s": round(t_ours, 3), "baseline_s": round(t_base, 3), "same_picks": round(overlap, 3)}
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
