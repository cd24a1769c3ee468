"""Labeling-function use cases: register from source or a module, load, apply incrementally, analyse.

Votes are cached per (LF version, item): a changed LF re-runs alone and new items run only the
LFs they lack (the cache of a version covers items ``seq`` 0..len-1).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from api.storage.base import Store
from api.storage.records import LFRecord
from labeling.analysis import lf_summary
from labeling.errors import LFLoadError
from labeling.validation import check_item_id
from workers import sandbox, user_code
from workers.executor import Executor
from workers.lf_tasks import LFSpec

__all__ = ["lf_analysis", "lf_report", "lf_set_version", "register_and_check", "register_lfs",
           "specs", "vote_matrix"]

CHECK_SAMPLE = 500  # items of the pool that registration applies new LFs to

Progress = Callable[[int, int], None]


def register_lfs(
    store: Store, project_id: str, *, source: str | None = None, module: str | None = None,
    now: float,
) -> list[LFRecord]:
    """Load LFs from Python ``source`` text or an importable ``module`` and register them. The
    source is loaded (executed) in a sandbox worker, never in this process."""
    store.get_project(project_id)
    if (source is None) == (module is None):
        raise LFLoadError("give exactly one of source (Python text) or module (an importable name)")
    if module is not None:
        source = sandbox.shared().run(user_code.module_source, module)
    if not isinstance(source, str):
        raise LFLoadError(f"source must be a str of Python code, got {type(source).__name__}")
    found = sandbox.shared().run(user_code.describe_lfs, source)
    for name, _ in found:  # names come from running the code: the id rule applies
        check_item_id(name, "LF name")
    records = [LFRecord(name, version, "source", source, True, now) for name, version in found]
    store.put_lfs(project_id, records)
    return records


def register_and_check(
    store: Store, project_id: str, executor: Executor, *, source: str | None = None,
    module: str | None = None, now: float,
) -> tuple[list[LFRecord], dict[str, list[dict]]]:
    """:func:`register_lfs`, then the new LFs applied to the first :data:`CHECK_SAMPLE` pool
    items: per-LF findings (faults on every item, votes outside -1..K-1, no votes) from
    :func:`labeling.lf_checks.check_lfs`."""
    from labeling.lf_checks import check_lfs

    records = register_lfs(store, project_id, source=source, module=module, now=now)
    sample = next(iter(store.iter_items(project_id, chunk=CHECK_SAMPLE)), [])
    if not records or not sample:
        return records, {}
    from labeling.frame import items_frame

    n_classes = store.get_project(project_id).n_classes
    result = executor.apply_lfs(specs(records), items_frame(sample), n_classes)
    return records, check_lfs([r.name for r in records], result.votes, result.faults,
                              result.first_errors, n_classes)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def specs(records: Sequence[LFRecord]) -> list[LFSpec]:
    """What executors need to load the LFs of ``records`` wherever they run."""
    return [(r.name, r.kind, r.source) for r in records]


def lf_set_version(records: Sequence[LFRecord]) -> str:
    text = ",".join(sorted(f"{r.name}={r.version}" for r in records if r.active))
    return _digest(text)


def vote_matrix(
    store: Store,
    project_id: str,
    records: Sequence[LFRecord],
    frame: pd.DataFrame,
    n_classes: int,
    executor: Executor,
    *,
    progress: Progress | None = None,
    fence: tuple[str, int] | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """(n, m) int8 votes of the active LFs over ``frame`` (all items, seq order), applying only
    what the cache lacks. Returns the matrix and per-LF fault info. ``fence``: the running job's
    (lock name, token), under which the new votes are cached (``StaleToken`` once it is not the
    lock's latest)."""
    n = len(frame)
    active = [r for r in records if r.active]
    active_specs = specs(active)
    if any(kind == "source" for _, kind, _ in active_specs):  # fail early when one no longer loads
        sandbox.shared().run(user_code.check_lfs, active_specs)
    cached = {r.version: store.get_votes(project_id, r.version) for r in active}
    groups: dict[int, list[int]] = defaultdict(list)  # start seq -> LF positions needing rows
    for j, r in enumerate(active):
        start = min(len(cached[r.version][0]), n)
        if start < n:
            groups[start].append(j)
    total = sum(n - s for s in groups)
    done = 0
    for start, positions in sorted(groups.items()):
        result = executor.apply_lfs(
            [active_specs[j] for j in positions], frame.iloc[start:], n_classes,
            progress=None if progress is None else (lambda d, t, base=done: progress(base + d, total)),
        )
        for col, j in enumerate(positions):
            version = active[j].version
            old, faults, first = cached[version]
            votes = np.concatenate([old[:start], result.votes[:, col]])
            faults += int(result.faults[col])
            first = first or result.first_errors[col]
            store.put_votes(project_id, version, votes, faults, first, fence=fence)
            cached[version] = (votes, faults, first)
        done += n - start
        if progress is not None:
            progress(done, total)
    matrix = np.zeros((n, len(active)), dtype=np.int8)
    for j, r in enumerate(active):
        matrix[:, j] = cached[r.version][0][:n]
    info = [
        {"name": r.name, "version": r.version, "faults": cached[r.version][1],
         "first_error": cached[r.version][2]}
        for r in active
    ]
    return matrix, info


def lf_analysis(
    votes: np.ndarray, info: list[dict], human: np.ndarray, gold: np.ndarray | None = None,
) -> list[dict]:
    """LF summary (coverage, overlaps, conflicts, polarity, empirical accuracy vs human labels,
    and vs the file's gold labels when there are any)."""
    if votes.shape[1] == 0:
        return []
    labeled = human >= 0
    rows = lf_summary(
        votes, [i["name"] for i in info], labels=human, labeled_mask=labeled,
        faults=[i["faults"] for i in info], gold=gold,
    )
    for row, i in zip(rows, info, strict=True):
        row["version"] = i["version"]
        row["first_error"] = i["first_error"]
    return rows


def lf_report(store: Store, project_id: str, executor: Executor) -> dict:
    """The analysis of the active LFs over the pool (applying whatever the vote cache lacks):
    ``lfs`` (:func:`lf_analysis`) and ``gold``: the label model against the gold labels that
    came with the items (:func:`labeling.analysis.gold_report`; None without any). Gold labels
    are only measured against here, never trained on or queued by."""
    from api.service.rounds import human_labels, load_pool
    from labeling.analysis import gold_report

    pool = load_pool(store, project_id)
    records = [r for r in store.list_lfs(project_id) if r.active]
    k = pool.project.n_classes
    votes, info = vote_matrix(store, project_id, records, pool.frame, k, executor)
    human, _, _ = human_labels(pool, store.annotations(project_id))
    gold = np.array([-1 if it.gold is None else it.gold for it in pool.items], dtype=np.int64)
    has_gold = bool((gold >= 0).any())
    return {"lfs": lf_analysis(votes, info, human, gold if has_gold else None),
            "gold": gold_report(votes, gold, k) if has_gold else None}
