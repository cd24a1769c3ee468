"""What the labeling page and the project dashboard show, from the store: the learning curve
with intervals, the queue, annotators' counts and pace, jobs, and one annotator's progress."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict
from itertools import pairwise
from typing import Any

from api.storage.base import Store
from api.storage.records import Annotation, Round

__all__ = ["annotator_progress", "annotator_table", "dashboard", "learning_curve", "wilson"]

DAY_S = 86400.0
Z95 = 1.959964


def wilson(p: float | None, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval (95% by default) of a proportion ``p`` seen on ``n`` items."""
    if p is None or n <= 0:
        return None
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def learning_curve(rounds: list[Round]) -> list[dict[str, Any]]:
    """One point per round: human labels spent, accuracy and macro-F1 of the end model (and the
    label model) on the evaluation slice, each proportion with its 95% Wilson interval. Macro-F1
    is not a proportion of items; its band uses the same normal width as a rough guide."""
    points = []
    for r in sorted(rounds, key=lambda r: r.number):
        point: dict[str, Any] = {"round": r.number, "labels": r.n_labels, "created_at": r.created_at,
                                 "strategy": r.strategy}
        for model in ("end_model", "label_model"):
            m = r.metrics.get(model) or {}
            n = int(m.get("n") or 0)
            acc, f1 = m.get("accuracy"), m.get("macro_f1")
            point[model] = {"accuracy": acc, "accuracy_ci": wilson(acc, n),
                            "macro_f1": f1, "macro_f1_ci": wilson(f1, n), "n": n}
        points.append(point)
    return points


def annotator_table(annotations: list[Annotation], now: float) -> list[dict[str, Any]]:
    """Per annotator: labels, skips, flags, labels in the last day, and pace (median seconds
    between consecutive answers, gaps over 10 minutes left out as breaks)."""
    by: dict[str, list[Annotation]] = defaultdict(list)
    for a in annotations:
        by[a.annotator].append(a)
    rows = []
    for name, events in sorted(by.items()):
        times = sorted(a.created_at for a in events)
        gaps = sorted(b - a for a, b in pairwise(times) if 0 <= b - a <= 600)
        kinds = defaultdict(int)
        for a in events:
            kinds[a.kind] += 1
        rows.append({
            "annotator": name, "labels": kinds["label"], "skips": kinds["skip"],
            "flags": kinds["flag"],
            "labels_last_day": sum(1 for a in events if a.kind == "label" and now - a.created_at < DAY_S),
            "median_s_per_answer": gaps[len(gaps) // 2] if gaps else None,
            "last_at": times[-1] if times else None,
        })
    return rows


def annotator_progress(store: Store, project_id: str, annotator: str, now: float) -> dict[str, Any]:
    """One annotator's page header: labels today (UTC day), their total, and what is left."""
    day_start = now - (now % DAY_S)
    mine = [a for a in store.annotations(project_id) if a.annotator == annotator]
    depth = store.queue_depth(project_id, now)
    return {
        "annotator": annotator,
        "labeled_today": sum(1 for a in mine if a.kind == "label" and a.created_at >= day_start),
        "labeled_total": sum(1 for a in mine if a.kind == "label"),
        "left_in_queue": depth.get("open", 0),
        "agreement": None,  # filled once annotation-quality features exist
    }


def dashboard(store: Store, project_id: str, now: float) -> dict[str, Any]:
    """Everything on the dashboard except the LF table (``GET /projects/{p}/lfs/analysis``)."""
    project = store.get_project(project_id)
    jobs = sorted(store.list_jobs(project_id), key=lambda j: j.created_at, reverse=True)[:20]
    return {
        "project": project.id,
        "classes": project.class_names,
        "curve": learning_curve(store.list_rounds(project_id)),
        "queue": store.queue_depth(project_id, now),
        "annotators": annotator_table(store.annotations(project_id), now),
        "jobs": [asdict(j) for j in jobs],
    }
