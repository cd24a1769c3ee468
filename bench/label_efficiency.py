"""Label efficiency: the real loop in simulation, strategies against random, over seeds.

    python -m bench.label_efficiency --datasets wrench_youtube,wrench_sms \
        --strategies random,entropy --seeds 5 --budget 100 --batch-size 20 --json

Prints a markdown table (mean +- std test accuracy at each label count, and the labels each
strategy needs to reach what random reaches at the full budget), then one JSON object last.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

DATASETS = Path(os.environ.get("LABELLOOP_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def _digits_csv() -> Path:
    """scikit-learn's digits (1797 x 64 pixels, 10 classes) as a CSV: the numeric dataset."""
    import tempfile

    import pandas as pd
    from sklearn.datasets import load_digits

    path = Path(tempfile.gettempdir()) / "labelloop-digits.csv"
    if not path.exists():
        X, y = load_digits(return_X_y=True)
        frame = pd.DataFrame(X, columns=[f"px{i}" for i in range(X.shape[1])])
        frame["label"] = y
        frame.to_csv(path.with_suffix(".tmp"), index=False)
        path.with_suffix(".tmp").rename(path)
    return path


def _cosine(name: str):
    """A COSINE text set (cosine_imdb, cosine_yelp): pool = dev split, evaluation = test split. Its
    only weak signal is the rules' majority vote (``major``), used as one vote column."""
    from api.service.simulate import SimDataset
    from labeling.ingest import Record

    def split(file: str, prefix: str) -> list:
        rows = json.loads((DATASETS / name / file).read_text(encoding="utf-8"))
        return [Record(f"{prefix}{i}", r["text"], gold=int(r["label"]), votes=(int(r["major"]),))
                for i, r in enumerate(rows)]

    return SimDataset(name, split("dev_data.json", "d"), split("test_data.json", "t"), ["neg", "pos"])


def _one_thread() -> None:
    """Each worker process computes with one thread: torch's default (a thread per core) in
    every worker oversubscribes the cores and slows the label-model fit many times over."""
    import torch

    torch.set_num_threads(1)


def _run(job: tuple) -> dict:
    dataset, strategy, seed, budget, batch, init, weak = job
    from api.service.simulate import load_dataset, simulate

    if dataset.startswith("cosine_"):
        data = _cosine(dataset)
    else:
        path = _digits_csv() if dataset == "digits" else (
            Path(dataset) if Path(dataset).exists() else DATASETS / dataset)
        data = load_dataset(path, seed=seed)
    if dataset == "digits":
        data.name = "digits"
    return simulate(data, strategy=strategy, budget=budget, batch_size=batch, seed=seed, init=init,
                    use_weak=weak)


def labels_to_reach(curve: list[dict], target: float) -> float:
    for point in curve:
        if point["accuracy"] >= target - 1e-9:
            return point["labels"]
    return float("inf")


def summarize(results: list[dict]) -> dict:
    out: dict = {}
    for r in results:
        key = (r["dataset"], r["strategy"] + ("" if r["weak"] else "/no-weak"))
        out.setdefault(key, []).append(r)
    summary = {}
    for (dataset, name), runs in sorted(out.items()):
        labels = [p["labels"] for p in runs[0]["curve"]]
        acc = np.array([[p["accuracy"] for p in r["curve"]] for r in runs])
        summary.setdefault(dataset, {})[name] = {
            "labels": labels, "mean": acc.mean(0).round(4).tolist(), "std": acc.std(0).round(4).tolist(),
            "runs": runs,
        }
    for strategies in summary.values():
        base = strategies.get("random")
        if base is None:
            continue
        target = base["mean"][-1]
        for s in strategies.values():
            need = [labels_to_reach(r["curve"], target) for r in s["runs"]]
            finite = [n for n in need if np.isfinite(n)]
            s["labels_to_random_final"] = {
                "target_accuracy": target, "mean": float(np.mean(finite)) if finite else None,
                "std": float(np.std(finite)) if finite else None,
                "reached": f"{len(finite)}/{len(need)}",
            }
    return summary


def markdown(summary: dict) -> str:
    lines = []
    for dataset, strategies in summary.items():
        labels = next(iter(strategies.values()))["labels"]
        lines.append(f"\n**{dataset}** (test accuracy, mean +- std over seeds)\n")
        lines.append("| strategy | " + " | ".join(str(n) for n in labels) + " | labels to reach random@max |")
        lines.append("|---|" + "---|" * (len(labels) + 1))
        for name, s in strategies.items():
            cells = [f"{m:.3f} +- {sd:.3f}" for m, sd in zip(s["mean"], s["std"], strict=True)]
            reach = s.get("labels_to_random_final", {})
            r = (f"{reach['mean']:.0f} +- {reach['std']:.0f} ({reach['reached']})"
                 if reach.get("mean") is not None else "not reached")
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {r} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="wrench_youtube,wrench_sms")
    p.add_argument("--strategies", default="random,entropy")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--init", type=int, default=0)
    p.add_argument("--no-weak", action="store_true", help="ignore labeling functions")
    p.add_argument("--also-no-weak", help="comma-separated strategies to run without weak labels too")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--plot-dir")
    p.add_argument("--json", action="store_true", help="print the JSON summary last")
    args = p.parse_args(argv)
    jobs = [(d, s, seed, args.budget, args.batch_size, args.init, not args.no_weak)
            for d in args.datasets.split(",") for s in args.strategies.split(",")
            for seed in range(args.seeds)]
    if args.also_no_weak:
        jobs += [(d, s, seed, args.budget, args.batch_size, args.init, False)
                 for d in args.datasets.split(",") if d != "digits"
                 for s in args.also_no_weak.split(",") for seed in range(args.seeds)]
    with ProcessPoolExecutor(max_workers=args.workers, initializer=_one_thread) as pool:
        results = []
        for k, r in enumerate(pool.map(_run, jobs), 1):
            results.append(r)
            print(f"[{k}/{len(jobs)}] {r['dataset']} {r['strategy']} seed={r['seed']}: "
                  f"acc@{r['curve'][-1]['labels']}={r['curve'][-1]['accuracy']:.3f}", file=sys.stderr)
    summary = summarize(results)
    print(markdown(summary))
    if args.plot_dir:
        from api.service.plots import plot_curves

        Path(args.plot_dir).mkdir(parents=True, exist_ok=True)
        for dataset in summary:
            plot_curves([r for r in results if r["dataset"] == dataset],
                        Path(args.plot_dir) / f"{dataset}.png")
    if args.json:
        slim = {d: {s: {k: v for k, v in body.items() if k != "runs"} for s, body in st.items()}
                for d, st in summary.items()}
        print(json.dumps({"benchmark": "label_efficiency", "args": vars(args), "summary": slim}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
