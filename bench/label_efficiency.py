"""Label efficiency: the real loop in simulation, strategies against random, over seeds.

    python -m bench.label_efficiency --datasets wrench_youtube,wrench_sms \
        --strategies random,entropy --seeds 5 --budget 100 --batch-size 20 --json

Prints a markdown table (mean +- std test accuracy at each label count, and the labels each
strategy needs to reach what random reaches at the full budget), a table of the weak-supervision
goals, then one JSON object last.

``--peer random,margin`` runs the plainest alternative a user has in the same run, on the same
splits, seeds and batches: a modAL-style loop, scikit-learn ``LogisticRegression`` on TF-IDF word
1-2-grams (numeric sets: standardised features), its ``C`` chosen by 5-fold cross-validation on
the labels in hand, random or margin sampling, no LFs (rows ``peer-random``, ``peer-margin``).

Datasets are read from ``../shared/datasets`` or ``LABELLOOP_DATASETS``. ``wrench_chemprot`` has
no train split: its pool is ``valid``. ``wrench_spouse_test`` is one CSV (9 LF columns), split 70/30.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
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

    pool, test = split("dev_data.json", "d"), split("test_data.json", "t")
    k = max(r.gold for r in pool + test) + 1
    return SimDataset(name, pool, test, ["neg", "pos"] if k == 2 else [str(c) for c in range(k)])


def _load(dataset: str, seed: int):
    """The SimDataset of a benchmark dataset name (or a path)."""
    from api.service.simulate import SimDataset, load_dataset
    from labeling.ingest import read_wrench

    if dataset.startswith("cosine_"):
        return _cosine(dataset)
    if dataset == "wrench_chemprot":  # valid and test only: the pool is valid
        ds = read_wrench(DATASETS / dataset)
        return SimDataset(dataset, ds.splits["valid"], ds.splits["test"], ds.class_names)
    if dataset == "wrench_spouse_test":
        data = load_dataset(DATASETS / dataset / "test_spouse_snorkel.csv", seed=seed,
                            text_column="sentence",
                            vote_columns=[f"LF{i}" for i in range(1, 10)],
                            class_names=["no", "spouse"])
        data.name = dataset
        return data
    path = _digits_csv() if dataset == "digits" else (
        Path(dataset) if Path(dataset).exists() else DATASETS / dataset)
    data = load_dataset(path, seed=seed)
    if dataset == "digits":
        data.name = "digits"
    return data


def peer(data, *, strategy: str, budget: int, batch_size: int, seed: int,
         first: list[str] | None = None) -> dict:
    """The modAL-style loop: LogisticRegression on TF-IDF word 1-2-grams (or scaled numeric
    features), C by cross-validation on the labels in hand, random or margin sampling, no LFs.
    ``first``: the ids of its first batch (the loop's own first batch, so that the two are
    compared on the same labels, not on two random draws); None = a random draw.
    Returns a curve in :func:`api.service.simulate.simulate`'s shape."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    from labeling.metrics import evaluate

    if strategy not in ("random", "margin"):
        raise SystemExit(f"peer strategy must be random or margin, got {strategy!r}")
    k = len(data.class_names)
    if all(r.text for r in data.pool):
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        X = vec.fit_transform([r.text for r in data.pool])
        X_test = vec.transform([r.text for r in data.test])
    else:
        scaler = StandardScaler()
        X = scaler.fit_transform(pd.DataFrame([r.features for r in data.pool]).fillna(0).to_numpy())
        X_test = scaler.transform(pd.DataFrame([r.features for r in data.test]).fillna(0).to_numpy())
    y = np.array([r.gold for r in data.pool])
    y_test = np.array([r.gold for r in data.test])
    rng = np.random.default_rng(seed)
    labeled = np.zeros(len(y), dtype=bool)
    curve, probs_pool = [], None
    while True:
        rows = np.flatnonzero(labeled)
        probs_test = np.full((len(y_test), k), 1.0 / k)
        if len(rows):
            classes, counts = np.unique(y[rows], return_counts=True)
            if len(classes) == 1:
                model = None
                probs_test[:] = 0.0
                probs_test[:, classes[0]] = 1.0
            else:
                folds = min(5, int(counts.min()))
                model = (GridSearchCV(LogisticRegression(max_iter=1000),
                                      {"C": np.logspace(-2, 3, 6).tolist()},
                                      cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
                         if folds >= 2 else LogisticRegression(max_iter=1000))
                model.fit(X[rows], y[rows])
                probs_test = np.zeros((len(y_test), k))
                probs_test[:, model.classes_] = model.predict_proba(X_test)
                probs_pool = np.zeros((len(y), k))
                probs_pool[:, model.classes_] = model.predict_proba(X)
        point = evaluate(y_test, probs_test)
        curve.append({"labels": int(labeled.sum()), "accuracy": point["accuracy"],
                      "macro_f1": point["macro_f1"]})
        if labeled.sum() >= budget:
            break
        open_rows = np.flatnonzero(~labeled)
        take = min(batch_size, budget - int(labeled.sum()), len(open_rows))
        if take == 0:
            break
        if first is not None and not len(rows):
            position = {r.id: i for i, r in enumerate(data.pool)}
            pick = np.array([position[i] for i in first[:take]], dtype=np.int64)
        elif strategy == "margin" and probs_pool is not None and len(rows):
            top2 = np.sort(probs_pool[open_rows], axis=1)[:, -2:]
            pick = open_rows[np.argsort(top2[:, 1] - top2[:, 0], kind="stable")[:take]]
        else:
            pick = rng.choice(open_rows, take, replace=False)
        labeled[pick] = True
    return {"dataset": data.name, "strategy": f"peer-{strategy}", "seed": seed, "budget": budget,
            "batch_size": batch_size, "init": 0, "weak": True, "curve": curve,
            "label_model": {"accuracy": None, "coverage": None, "kind": "none"}}


def _one_thread() -> None:
    """Each worker process computes with one thread: torch's default (a thread per core) in
    every worker oversubscribes the cores and slows the label-model fit many times over."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)  # BLAS too, for the same reason


def _run(job: tuple) -> dict:
    dataset, strategy, seed, budget, batch, init, weak = job
    from api.service.simulate import simulate

    data = _load(dataset, seed)
    if strategy.startswith("peer-"):
        # the loop's first batch without LFs (the same for every strategy: no model yet)
        first = simulate(data, strategy="random", budget=batch, batch_size=batch, seed=seed,
                         use_weak=False)["labeled_ids"]
        return peer(data, strategy=strategy[5:], budget=budget, batch_size=batch, seed=seed,
                    first=first)
    result = simulate(data, strategy=strategy, budget=budget, batch_size=batch, seed=seed,
                      init=init, use_weak=weak)
    del result["labeled_ids"]  # the runs file keeps curves
    return result


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


def goals(summary: dict, lm_accuracy: dict[str, float]) -> dict:
    """Per dataset and strategy with LFs: the worst gap, over label counts >= 50 (``<= 50`` for the
    label model), of the issue's comparisons; a goal holds when its gap is >= its threshold."""
    out: dict = {}
    for dataset, strategies in summary.items():
        peers = [strategies[p]["mean"] for p in ("peer-random", "peer-margin") if p in strategies]
        best_peer = np.max(peers, axis=0) if peers else None
        rows = {}
        for name, s in strategies.items():
            if name.startswith("peer-") or name.endswith("/no-weak"):
                continue
            labels, mean = np.array(s["labels"]), np.array(s["mean"])
            budgets = labels >= 50
            row = {}
            base = strategies.get(f"{name}/no-weak")
            if base is not None:
                row["lfs_vs_no_lfs"] = float((mean - np.array(base["mean"]))[budgets].min())
                if best_peer is not None:
                    row["no_lfs_vs_peer"] = float((np.array(base["mean"]) - best_peer)[budgets].min())
            if best_peer is not None:
                row["lfs_vs_peer"] = float((mean - best_peer)[budgets].min())
            if lm_accuracy.get(dataset) is not None:
                row["lfs_vs_label_model_0_50"] = float(mean[labels <= 50].min() - lm_accuracy[dataset])
            rows[name] = {k: round(v, 4) for k, v in row.items()}
        out[dataset] = rows
    return out


THRESHOLDS = {"lfs_vs_no_lfs": -0.01, "no_lfs_vs_peer": -0.01, "lfs_vs_peer": 0.0,
              "lfs_vs_label_model_0_50": -0.01}


def goals_markdown(table: dict) -> str:
    lines = ["\n**Goals** (worst gap over label counts >= 50 in points; met when >= the goal)\n",
             "| dataset | strategy | " + " | ".join(f"{k} (>= {100 * v:+.0f})" for k, v in THRESHOLDS.items()) + " |",
             "|---|---|" + "---|" * len(THRESHOLDS)]
    for dataset, rows in table.items():
        for name, row in rows.items():
            cells = [(f"{100 * row[k]:+.1f} " + ("met" if row[k] >= v - 1e-9 else "**not met**"))
                     if k in row else "-" for k, v in THRESHOLDS.items()]
            lines.append(f"| {dataset} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    p.add_argument("--peer", help="comma-separated peer strategies (random, margin) to run too")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--plot-dir")
    p.add_argument("--json", action="store_true", help="print the JSON summary last")
    p.add_argument("--runs-out", help="append each finished run to this JSON-lines file; runs "
                   "it already holds (same dataset, strategy, seed, weak labels, budget) are skipped")
    p.add_argument("--runs-in", help="summarize the runs of this JSON-lines file; run nothing")
    args = p.parse_args(argv)
    if args.runs_in:
        results = [json.loads(line) for line in Path(args.runs_in).read_text().splitlines() if line]
        return _report(results, args)
    jobs = [(d, s, seed, args.budget, args.batch_size, args.init, not args.no_weak)
            for d in args.datasets.split(",") for s in args.strategies.split(",")
            for seed in range(args.seeds)]
    if args.also_no_weak:
        jobs += [(d, s, seed, args.budget, args.batch_size, args.init, False)
                 for d in args.datasets.split(",") if d != "digits"
                 for s in args.also_no_weak.split(",") for seed in range(args.seeds)]
    if args.peer:
        jobs += [(d, f"peer-{s}", seed, args.budget, args.batch_size, 0, True)
                 for d in args.datasets.split(",") for s in args.peer.split(",")
                 for seed in range(args.seeds)]
    names = args.datasets.split(",")
    if args.runs_out and Path(args.runs_out).exists():  # resume: runs already logged are kept
        done = {(r["dataset"], r["strategy"], r["seed"], r["weak"]) for r in
                map(json.loads, Path(args.runs_out).read_text().splitlines()) if r["budget"] == args.budget}
        jobs = [j for j in jobs if (j[0], j[1], j[2], j[6]) not in done]
    # a dataset's runs together, seed by seed, so that a run cut short leaves whole seeds behind
    jobs.sort(key=lambda job: (names.index(job[0]), job[2]))
    with ProcessPoolExecutor(max_workers=args.workers, initializer=_one_thread) as pool:
        results = []
        futures = [pool.submit(_run, job) for job in jobs]
        for k, future in enumerate(as_completed(futures), 1):
            r = future.result()
            results.append(r)
            if args.runs_out:
                with open(args.runs_out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(r) + "\n")
            print(f"[{k}/{len(jobs)}] {r['dataset']} {r['strategy']} seed={r['seed']}: "
                  f"acc@{r['curve'][-1]['labels']}={r['curve'][-1]['accuracy']:.3f}", file=sys.stderr)
    return _report(results, args)


def _report(results: list[dict], args) -> int:
    """Print the tables (and the JSON summary with ``--json``) of finished runs."""
    summary = summarize(results)
    lm_acc: dict[str, list] = {}
    for r in results:
        if r["label_model"].get("accuracy") is not None:
            lm_acc.setdefault(r["dataset"], []).append(r["label_model"]["accuracy"])
    goal_table = goals(summary, {d: float(np.mean(v)) for d, v in lm_acc.items()})
    print(markdown(summary))
    print(goals_markdown(goal_table))
    if args.plot_dir:
        from api.service.plots import plot_curves

        Path(args.plot_dir).mkdir(parents=True, exist_ok=True)
        for dataset in summary:
            plot_curves([r for r in results if r["dataset"] == dataset],
                        Path(args.plot_dir) / f"{dataset}.png")
    if args.json:
        slim = {d: {s: {k: v for k, v in body.items() if k != "runs"} for s, body in st.items()}
                for d, st in summary.items()}
        print(json.dumps({"benchmark": "label_efficiency", "args": vars(args), "summary": slim,
                          "label_model_accuracy": {d: round(float(np.mean(v)), 4)
                                                   for d, v in lm_acc.items()},
                          "goals": goal_table}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
