"""Simulation: the real loop, in-process, with an oracle annotator answering from gold labels.

Both a user feature ("what would active learning save me?") and the evaluation harness. The pool
and the held-out evaluation split come from a WRENCH folder (train / test) or from one labeled
file split with a stratified random ``test_fraction``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from api.service.annotate import AnnotationIn, lease_batch, submit_annotations
from api.service.ingest import ingest_records
from api.service.projects import create_project
from api.service.rounds import run_round
from api.storage.records import Item
from api.storage.sqlite import SQLiteStore
from labeling.errors import InvalidInput
from labeling.frame import items_frame
from labeling.ingest import Delimited, Record, infer_class_names, read_records, read_wrench
from labeling.metrics import evaluate
from workers.executor import Executor, InProcessExecutor

__all__ = ["SimDataset", "load_dataset", "simulate"]

ORACLE = "oracle"


@dataclass
class SimDataset:
    name: str
    pool: list[Record]
    test: list[Record]
    class_names: list[str]


def load_dataset(
    path: str | Path, *, label_column: str = "label", test_fraction: float = 0.3, seed: int = 0,
    class_names: list[str] | None = None, layout: Delimited | None = None,
    duplicates: str | None = None, **columns: Any,
) -> SimDataset:
    """The pool and the held-out test split of a WRENCH folder or of one labeled file.

    A WRENCH folder's pool is ``train``, or ``valid`` when it ships without train (as ChemProt
    does); its test split is ``test``. A file is split with a stratified random ``test_fraction``;
    its classes are ``class_names`` in that order, or else the label column's values, sorted
    (:func:`~labeling.ingest.infer_class_names`). ``duplicates`` resolves ids repeated in the
    file ("reject", "first", "last"); by default every row is its own sample."""
    path = Path(path)
    if path.is_dir():
        ds = read_wrench(path)
        pool_split = "train" if "train" in ds.splits else "valid"
        if pool_split not in ds.splits or "test" not in ds.splits:
            raise InvalidInput(f"{path}: a WRENCH folder needs test.json and train.json "
                               "(or valid.json, the pool when train.json is absent)")
        pool, test, names = ds.splits[pool_split], ds.splits["test"], ds.class_names
    else:
        if not 0.0 < test_fraction < 1.0:
            raise InvalidInput(f"test_fraction must be in (0, 1), got {test_fraction}")
        names = list(class_names) if class_names else infer_class_names(
            path, label_column=label_column, fmt=columns.get("fmt"), layout=layout)
        if len(names) < 2:
            raise InvalidInput(f"{path}: the label column {label_column!r} holds {len(names)} "
                               f"class(es) {names}; a simulation needs at least 2")
        records = list(read_records(path, label_column=label_column, class_names=names,
                                    layout=layout, duplicates=duplicates, **columns))
        if len({r.id for r in records}) < len(records):  # repeated rows are separate samples here
            records = [replace(r, id=f"row{i}") for i, r in enumerate(records)]
        if any(r.gold is None for r in records):
            raise InvalidInput(f"{path}: every row needs a label in column {label_column!r}")
        from sklearn.model_selection import train_test_split

        gold = [r.gold for r in records]
        pool, test = train_test_split(records, test_size=test_fraction, random_state=seed,
                                      stratify=gold)
    missing = [r.id for r in pool + test if r.gold is None]
    if missing:
        raise InvalidInput(f"{path}: {len(missing)} rows have no gold label (first {missing[0]!r})")
    return SimDataset(path.name, pool, test, list(names))


def simulate(
    data: SimDataset,
    *,
    strategy: str,
    budget: int,
    batch_size: int,
    seed: int,
    init: int = 0,
    use_weak: bool = True,
    strategy_params: dict[str, Any] | None = None,
    eval_fraction: float | None = None,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run the loop until ``budget`` human labels are spent; return the learning curve, and in
    ``labeled_ids`` the pool ids in the order the oracle labeled them.

    ``eval_fraction`` reserves a random evaluation slice of the pool, labeled by the oracle when
    it comes up in batches and counted in the budget; by default none, except for ``auto``, whose
    bandit is rewarded on that slice (0.1)."""
    if eval_fraction is None:
        eval_fraction = 0.1 if strategy == "auto" else 0.0
    if budget < 1 or batch_size < 1 or init < 0 or init > budget:
        raise InvalidInput(
            f"need budget >= 1, batch_size >= 1 and 0 <= init <= budget; got budget={budget}, "
            f"batch_size={batch_size}, init={init}"
        )
    executor = executor or InProcessExecutor()
    rng = np.random.default_rng(seed)
    clock = iter(range(10**9))
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "sim.db")
        try:
            create_project(
                store, "sim", data.class_names,
                settings={"strategy": strategy, "strategy_params": strategy_params or {},
                          "batch_size": batch_size, "eval_fraction": eval_fraction, "seed": seed,
                          "queue_size": max(4 * batch_size, 200), "lease_ttl_s": 3600},
                now=0.0,
            )
            ingest_records(store, "sim", data.pool, rng=rng, now=0.0)
            test_items = [Item(r.id, i, r.text, r.features, r.meta, r.votes) for i, r in enumerate(data.test)]
            test_frame = items_frame(test_items)
            y_test = np.array([r.gold for r in data.test])
            gold = {r.id: r.gold for r in data.pool}
            spent, order = 0, []

            def label(n: int) -> int:
                lease = lease_batch(store, "sim", ORACLE, n, now=float(next(clock)), rng=rng)
                order.extend(li.item.id for li in lease.items)
                if lease.items:
                    submit_annotations(
                        store, "sim", ORACLE,
                        [AnnotationIn(li.item.id, lease.id, "label", int(gold[li.item.id]))
                         for li in lease.items],
                        now=float(next(clock)),
                    )
                return len(lease.items)

            if init:
                spent += label(init)
            curve, lm_report = [], None
            while True:
                _, out = run_round(store, "sim", executor, now=float(next(clock)),
                                   use_weak=use_weak, extra=(test_frame, None))
                k = len(data.class_names)
                probs = out.extra_probs if out.extra_probs is not None else np.full((len(y_test), k), 1.0 / k)
                point = evaluate(y_test, probs)
                curve.append({"labels": spent, "accuracy": point["accuracy"],
                              "macro_f1": point["macro_f1"]})
                if lm_report is None and out.extra_lm_probs is not None:
                    lm_report = {
                        "accuracy": evaluate(y_test, out.extra_lm_probs)["accuracy"],
                        "coverage": float(out.extra_lm_covered.mean()),
                        "kind": out.label_model.get("kind"),
                    }
                if progress is not None:
                    progress(spent, budget)
                if spent >= budget:
                    break
                got = label(min(batch_size, budget - spent))
                if got == 0:
                    break
                spent += got
        finally:
            store.close()
    return {
        "dataset": data.name, "strategy": strategy, "seed": seed, "budget": budget,
        "batch_size": batch_size, "init": init, "weak": use_weak, "eval_fraction": eval_fraction,
        "label_model": lm_report or {"accuracy": None, "coverage": None, "kind": "none"},
        "curve": curve, "labeled_ids": order,
    }

