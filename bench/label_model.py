"""Label model at scale: labelloop's ``LabelModel`` against Snorkel's ``LabelModel`` in the same run.

    python -m bench.label_model --items 1000000 --lfs 50 --classes 10 --json

Synthetic votes (say so when quoting): true classes drawn from a skewed prior; each LF covers
5-40% of the items and is right 40-90% of the time it votes, wrong votes uniform over the other
classes. Both models fit with the same settings (epochs, lr, seed) and predict every item; accuracy
is against the true classes with the same tie rule for both. Each side runs in its own process, so
its peak resident memory (``ru_maxrss``) is its own: the votes (int8) are written once to a
temporary file and loaded by both. Fields: ``time_vs_snorkel`` (fit + predict, goal <= 1.0),
``memory_vs_snorkel`` (peak RSS, goal <= 0.5), ``accuracy_delta`` (labelloop minus Snorkel, goal
>= -0.005); ``*_above_start_mb`` is the peak over what the process held once the votes were loaded.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic_votes(n: int, m: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, m) int8 votes and (n,) true classes, generated block by block to bound memory."""
    rng = np.random.default_rng(seed)
    prior = rng.dirichlet(np.full(k, 5.0))
    coverage = rng.uniform(0.05, 0.40, size=m)
    accuracy = rng.uniform(0.40, 0.90, size=m)
    y = rng.choice(k, size=n, p=prior)
    votes = np.full((n, m), -1, dtype=np.int8)
    for start in range(0, n, 100_000):
        yb = y[start : start + 100_000]
        b = len(yb)
        votes_on = rng.random((b, m)) < coverage
        right = rng.random((b, m)) < accuracy
        wrong = (yb[:, None] + rng.integers(1, k, size=(b, m))) % k
        block = np.where(right, yb[:, None], wrong)
        votes[start : start + b] = np.where(votes_on, block, -1)
    return votes, y


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_side(side: str, votes_path: str, k: int, epochs: int) -> dict:
    """Fit and predict with one implementation, in this process; returns time, memory and preds."""
    import torch
    from snorkel.labeling.model import LabelModel as SnorkelLabelModel

    from labeling.label_model import LabelModel
    from labeling.ties import predict

    torch.set_num_threads(2)
    votes = np.load(votes_path)
    start_mb = _peak_mb()
    t0 = time.perf_counter()
    if side == "snorkel":
        model = SnorkelLabelModel(cardinality=k, verbose=False, device="cpu")
        model.fit(votes.astype(np.int64), n_epochs=epochs, lr=0.01, seed=0, log_freq=epochs + 1,
                  progress_bar=False)
        probs = model.predict_proba(votes.astype(np.int64))
    else:
        model = LabelModel(k, kind="snorkel", epochs=epochs, lr=0.01, seed=0, fit_on="all")
        probs = model.fit(votes).predict_proba(votes)
    seconds = time.perf_counter() - t0
    pred = predict(np.asarray(probs, dtype=np.float64))
    return {"seconds": seconds, "peak_mb": _peak_mb(), "above_start_mb": _peak_mb() - start_mb,
            "pred": pred}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--lfs", type=int, default=50)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--epochs", type=int, default=500, help="labelloop's default; Snorkel's is 100")
    p.add_argument("--json", action="store_true")
    p.add_argument("--side", choices=["snorkel", "labelloop"], help=argparse.SUPPRESS)
    p.add_argument("--votes", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.side:  # child process: one implementation
        res = run_side(args.side, args.votes, args.classes, args.epochs)
        np.save(args.out, res.pop("pred"))
        print(json.dumps(res))
        return 0

    votes, y = synthetic_votes(args.items, args.lfs, args.classes)
    sides = {}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "votes.npy", votes)
        del votes
        for side in ("snorkel", "labelloop"):
            print(f"fitting {side} on {args.items} x {args.lfs} x {args.classes} ...", file=sys.stderr)
            out = Path(tmp) / f"{side}.npy"
            proc = subprocess.run(
                [sys.executable, "-m", "bench.label_model", "--side", side, "--votes",
                 str(Path(tmp) / "votes.npy"), "--out", str(out), "--classes", str(args.classes),
                 "--epochs", str(args.epochs)],
                capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(f"{side} failed with exit code {proc.returncode}")
            sides[side] = json.loads(proc.stdout.strip().splitlines()[-1])
            sides[side]["accuracy"] = float((np.load(out) == y).mean())
    s, o = sides["snorkel"], sides["labelloop"]
    result = {
        "benchmark": "label_model", "items": args.items, "lfs": args.lfs, "classes": args.classes,
        "epochs": args.epochs,
        "time_vs_snorkel": round(o["seconds"] / s["seconds"], 3),
        "memory_vs_snorkel": round(o["peak_mb"] / s["peak_mb"], 3),
        "accuracy_delta": round(o["accuracy"] - s["accuracy"], 5),
        "seconds": {"snorkel": round(s["seconds"], 2), "labelloop": round(o["seconds"], 2)},
        "peak_mb": {"snorkel": round(s["peak_mb"]), "labelloop": round(o["peak_mb"])},
        "above_start_mb": {"snorkel": round(s["above_start_mb"]), "labelloop": round(o["above_start_mb"])},
        "accuracy": {"snorkel": round(s["accuracy"], 5), "labelloop": round(o["accuracy"], 5)},
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
