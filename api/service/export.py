"""Export and pseudo-labels: every item with its label, source, confidence and versions.

The label decision over the whole pool (:func:`labeling.export.assign_labels`, vectorised) runs on
the given executor, a Ray worker when the coordinator or the CLI runs with Ray; rows are then
streamed to the file with progress.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from api.service.gold import gold_labels
from api.service.rounds import annotator_weights, human_consensus, load_pool
from api.storage.base import Store
from labeling.errors import InvalidInput
from labeling.export import CONFIDENCE_DIGITS, assign_labels, write_rows
from workers.executor import Executor, InProcessExecutor

__all__ = ["SOURCES", "export_file", "export_rows"]

SOURCES = ("human", "label_model", "end_model", "none")
PROGRESS_EVERY = 10_000  # rows between progress reports


def _fit(array: np.ndarray | None, n: int, k: int) -> np.ndarray | None:
    """Arrays from the latest round cover the items that existed then; newer items get none."""
    if array is None:
        return None
    if len(array) >= n:
        return array[:n]
    pad_shape = (n - len(array),) + array.shape[1:]
    fill = np.full(pad_shape, 1.0 / k, dtype=array.dtype) if array.ndim == 2 else np.zeros(pad_shape, dtype=array.dtype)
    return np.concatenate([array, fill])


def export_rows(
    store: Store, project_id: str, *, min_confidence: float = 0.0, blank_below: float = 0.0,
    include_text: bool = True, sources: tuple[str, ...] = SOURCES, prefer: str = "end_model",
    executor: Executor | None = None, progress: Callable[[int, int], None] | None = None,
) -> Iterator[dict]:
    """One row per item: label, source, confidence, versions, and the human answers' figures
    (annotators, agreement, whether a reviewer decided, the label-quality score). The human label
    is the consensus (:func:`api.service.rounds.human_consensus`); a reviewer's decision has
    confidence 1, like a gold item's known answer. ``min_confidence`` filters:
    rows whose confidence is below it are left out. ``blank_below`` keeps every row and blanks
    the labels below it instead (label None, source "none"). ``sources`` keeps only rows whose
    source is among them."""
    for name, value in (("min_confidence", min_confidence), ("blank_below", blank_below)):
        if not 0.0 <= value <= 1.0:
            raise InvalidInput(f"{name} must be in [0, 1], got {value}")
    bad = sorted(set(sources) - set(SOURCES))
    if bad:
        raise InvalidInput(f"unknown source(s) {bad}; allowed: {list(SOURCES)}")
    if prefer not in ("end_model", "label_model"):
        raise InvalidInput(f"prefer must be 'end_model' or 'label_model', got {prefer!r}")
    pool = load_pool(store, project_id)
    project, n, k = pool.project, len(pool.items), pool.project.n_classes
    rnd = store.latest_round(project_id)
    annotations = store.annotations(project_id)
    human, agreement, n_ann, adjudicated = human_consensus(
        pool, annotations, weights=annotator_weights(rnd))
    version = np.full(n, -1, dtype=np.int64)  # the newest guidelines version of an answer
    for a in annotations:
        if a.guidelines_version is not None and a.item_id in pool.index:
            i = pool.index[a.item_id]
            version[i] = max(version[i], a.guidelines_version)
    gold = gold_labels(store, project_id, n)  # a gold item's known answer is its label
    human = np.where(gold >= 0, gold, human)
    quality = np.full(n, np.nan, dtype=np.float32)  # the latest round's label-quality scores
    scored = store.get_array(project_id, "label_quality")
    if scored is not None:
        quality[: min(n, len(scored))] = scored[:n]
    covered = store.get_array(project_id, "lm_covered")
    labels, source, confidence = (executor or InProcessExecutor()).call(
        assign_labels, human, np.where((gold >= 0) | adjudicated, 1.0, agreement),
        _fit(store.get_array(project_id, "lm_probs"), n, k),
        None if covered is None else _fit(covered, n, k).astype(bool),
        _fit(store.get_array(project_id, "probs"), n, k),
        min_confidence=blank_below, prefer=prefer,
    )
    model_version = rnd.model_version if rnd else None
    lf_set = rnd.label_model.get("lf_set_version") if rnd else None
    names = project.class_names
    for i, item in enumerate(pool.items):
        if progress is not None and (i % PROGRESS_EVERY == 0 or i == n - 1):
            progress(i + 1, n)
        if source[i] not in sources or confidence[i] < min_confidence:
            continue
        row = {
            "id": item.id,
            "label": names[labels[i]] if labels[i] >= 0 else None,
            "label_index": int(labels[i]),
            "source": str(source[i]),
            "confidence": round(float(confidence[i]), CONFIDENCE_DIGITS),
            "n_annotators": int(n_ann[i]),
            "agreement": round(float(agreement[i]), 6),
            "adjudicated": bool(adjudicated[i]),
            "label_quality": None if np.isnan(quality[i]) else round(float(quality[i]), 6),
            "gold": bool(gold[i] >= 0),
            "guidelines_version": int(version[i]) if version[i] >= 0 else None,
            "model_version": model_version,
            "lf_set_version": lf_set,
            "eval_slice": item.is_eval,
        }
        if include_text:
            row["text"] = item.text
        yield row


def export_file(store: Store, project_id: str, path: str | Path, *, fmt: str | None = None, **kw) -> int:
    count = 0

    def counted():
        nonlocal count
        for row in export_rows(store, project_id, **kw):
            count += 1
            yield row

    write_rows(counted(), path, fmt)
    return count
