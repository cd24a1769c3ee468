"""Several strategies over several seeds in one call: "what would active learning save me?".

Every (strategy, seed) pair runs the real loop through :func:`api.service.simulate.simulate`, in
parallel processes where cores allow; with ``compare_no_weak`` every pair also runs without LFs.
The report gives each strategy's mean and spread of accuracy and macro-F1 at every label count,
and the labels it needs to reach random's final accuracy (the mean over seeds of random at the
full budget), as a mean and a standard deviation over the seeds that reach it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from api.service.simulate import SimDataset, simulate
from labeling.errors import InvalidInput

__all__ = ["BASELINE", "compare", "labels_to_reach", "summarize"]

BASELINE = "random"


def _one_thread() -> None:
    """Worker processes compute with one thread each: torch's default of a thread per core in
    every worker oversubscribes the cores and slows the label-model fit many times over."""
    import torch

    torch.set_num_threads(1)


def _run(job: tuple) -> dict:
    data, kwargs = job
    return simulate(data, **kwargs)


def labels_to_reach(curve: list[dict], target: float) -> int | None:
    """The first label count at which ``curve`` reaches ``target`` accuracy, or None."""
    for point in curve:
        if point["accuracy"] >= target - 1e-9:
            return int(point["labels"])
    return None


def _series(runs: list[dict], key: str) -> tuple[list[float], list[float]]:
    values = np.array([[p[key] for p in r["curve"]] for r in runs], dtype=float)
    return values.mean(0).round(4).tolist(), values.std(0).round(4).tolist()


def summarize(runs: list[dict]) -> dict[str, Any]:
    """Per strategy (and "<strategy>/no-weak"): labels, accuracy and macro-F1 mean and std over
    seeds, the label model's accuracy, and ``labels_to_reach_random`` (None without random)."""
    groups: dict[str, list[dict]] = {}
    for r in runs:
        groups.setdefault(r["strategy"] + ("" if r["weak"] else "/no-weak"), []).append(r)
    target = None
    if BASELINE in groups:
        target = float(np.mean([r["curve"][-1]["accuracy"] for r in groups[BASELINE]]))
    out: dict[str, Any] = {}
    for name, group in groups.items():
        group.sort(key=lambda r: r["seed"])
        acc_mean, acc_std = _series(group, "accuracy")
        f1_mean, f1_std = _series(group, "macro_f1")
        lm = [r["label_model"]["accuracy"] for r in group if r["label_model"]["accuracy"] is not None]
        entry: dict[str, Any] = {
            "weak": group[0]["weak"], "seeds": [r["seed"] for r in group],
            "labels": [p["labels"] for p in group[0]["curve"]],
            "accuracy_mean": acc_mean, "accuracy_std": acc_std,
            "macro_f1_mean": f1_mean, "macro_f1_std": f1_std,
            "label_model_accuracy": round(float(np.mean(lm)), 4) if lm else None,
            "labels_to_reach_random": None,
        }
        if target is not None:
            need = [labels_to_reach(r["curve"], target) for r in group]
            reached = [n for n in need if n is not None]
            entry["labels_to_reach_random"] = {
                "target_accuracy": round(target, 4), "per_seed": need,
                "mean": float(np.mean(reached)) if reached else None,
                "std": float(np.std(reached)) if reached else None,
                "reached": len(reached), "seeds": len(need),
            }
        out[name] = entry
    return out


def compare(
    data: SimDataset, *, strategies: list[str], seeds: list[int], budget: int, batch_size: int,
    init: int = 0, use_weak: bool = True, compare_no_weak: bool = False,
    strategy_params: dict[str, Any] | None = None, eval_fraction: float | None = None,
    workers: int | None = None, progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run every strategy on every seed (and without LFs too with ``compare_no_weak``).

    Parameters
    ----------
    data : the pool and test split (one split for every run; seeds vary the loop itself)
    strategies, seeds : the runs; ``strategies`` should include "random", the baseline
    workers : parallel processes; None = as many as cores and runs allow; 1 = in this process
    progress : called with (runs done, runs total)

    Returns
    -------
    {"dataset", "strategies", "seeds", "budget", "batch_size", "init", "summary" (see
    :func:`summarize`), "runs" (each run's single-strategy result)}.
    """
    if not strategies or len(set(strategies)) != len(strategies):
        raise InvalidInput(f"strategies must be distinct names, got {strategies}")
    if not seeds:
        raise InvalidInput("seeds must name at least one seed")
    weak_modes = [use_weak] + ([False] if compare_no_weak and use_weak else [])
    jobs = [(data, {"strategy": s, "budget": budget, "batch_size": batch_size, "seed": seed,
                    "init": init, "use_weak": weak, "strategy_params": strategy_params,
                    "eval_fraction": eval_fraction})
            for weak in weak_modes for s in strategies for seed in seeds]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(workers or cores or 1, len(jobs))
    runs: list[dict] = []
    if progress is not None:
        progress(0, len(jobs))
    if workers <= 1:
        for job in jobs:
            runs.append(_run(job))
            if progress is not None:
                progress(len(runs), len(jobs))
    else:
        ctx = multiprocessing.get_context("spawn")  # no forked torch or sqlite state
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                 initializer=_one_thread) as pool:
            for run in pool.map(_run, jobs):
                runs.append(run)
                if progress is not None:
                    progress(len(runs), len(jobs))
    return {"dataset": data.name, "strategies": list(strategies), "seeds": list(seeds),
            "budget": budget, "batch_size": batch_size, "init": init, "weak": use_weak,
            "compare_no_weak": len(weak_modes) > 1, "summary": summarize(runs), "runs": runs}
