"""Keeping Label Studio in step with labelloop, and Label Studio task files both ways.

After each round (:func:`push_after_round`, called by the round job) the predictions of the
queue's Label Studio tasks go to Label Studio's ``/api/projects/{id}/import/predictions``, then
the Label Studio project's ``model_version`` is set to the round's: its "Uncertainty sampling"
only orders by predictions of the project's current version. The URL and token are the ones
``/setup`` handed over (:func:`api.service.label_studio.load_connection`).

Files: :func:`export_tasks` writes Label Studio's import JSON with pre-annotations;
:func:`import_tasks` reads a Label Studio JSON export (tasks with annotations).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from api.service import annotate
from api.service.label_studio import (
    TASK_META,
    Predictions,
    ensure_items,
    load_connection,
    ls_project_id,
    project_config,
    submit_answers,
    task_list,
)
from api.storage.base import Store
from api.storage.records import Round
from labeling import label_studio as ls
from labeling.errors import InvalidInput

if TYPE_CHECKING:
    from api.service.services import Services

__all__ = ["export_tasks", "import_tasks", "label_config", "push_after_round"]

log = logging.getLogger(__name__)

PUSH_BATCH = 500
PUSH_TIMEOUT_S = 30.0
# -- after a round: keep Label Studio in step ---------------------------------------------------
def push_after_round(store: Store, project_id: str, rnd: Round, *,
                     transport: httpx.BaseTransport | None = None) -> dict[str, Any] | None:
    """Send the round's predictions for the queue's items that are Label Studio tasks, then set
    the Label Studio project's ``model_version`` to the round's. None when no Label Studio is
    connected; ``{"error": ...}`` (the round still counts) when it cannot be reached."""
    conn = load_connection(store, project_id)
    if conn is None:
        return None
    if not conn.get("access_token") or not conn.get("hostname"):
        return {"pushed": 0, "note": "no access token from /setup: nothing pushed"}
    config = ls.parse_label_config(conn["label_config"])
    pred = Predictions(store, project_id)
    rank = store.get_array(project_id, "queue_rank")
    if rank is None or pred.round is None or pred.round.number != rnd.number:
        return {"pushed": 0, "note": "a newer round replaced this one's outputs"}
    order = np.argsort(np.where(rank >= 0, rank, np.iinfo(np.int32).max), kind="stable")
    order = order[rank[order] >= 0]
    task_of: dict[int, int] = {}
    for chunk in store.iter_items(project_id):
        for it in chunk:
            if isinstance(it.meta.get(TASK_META), int):
                task_of[it.seq] = it.meta[TASK_META]
    rows = [{"task": task_of[int(s)], "result": ls.choice_result(config, pred.label(int(s))),
             "score": pred.score(int(s)), "model_version": rnd.model_version}
            for s in order if int(s) in task_of and pred.has(int(s))]
    base, pid = conn["hostname"].rstrip("/"), conn["ls_project"]
    headers = {"Authorization": f"Token {conn['access_token']}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=PUSH_TIMEOUT_S,
                          transport=transport) as client:
            for start in range(0, len(rows), PUSH_BATCH):
                client.post(f"/api/projects/{pid}/import/predictions",
                            json=rows[start:start + PUSH_BATCH]).raise_for_status()
            client.patch(f"/api/projects/{pid}", json={"model_version": rnd.model_version}
                         ).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("pushing round %s to Label Studio at %s failed: %s", rnd.number, base, exc)
        return {"pushed": 0, "error": f"{type(exc).__name__}: {exc}"}
    return {"pushed": len(rows), "model_version": rnd.model_version, "ls_project": pid}



# -- files both ways ----------------------------------------------------------------------------
def label_config(store: Store, project_id: str, *, text_key: str | None = None) -> str:
    """A Label Studio label config for the project's classes, to create its Label Studio
    project with."""
    return ls.config_xml(store.get_project(project_id).class_names, value_key=text_key or "text")


def _file_config(store: Store, project_id: str, text_key: str | None) -> ls.LabelConfig:
    conn = load_connection(store, project_id)
    if conn and conn.get("label_config") and text_key is None:
        return project_config(store, project_id, conn["label_config"])
    names = tuple(store.get_project(project_id).class_names)
    return ls.LabelConfig("label", "text", text_key or "text", names)


def export_tasks(store: Store, project_id: str, *, text_key: str | None = None) -> list[dict]:
    """Every item as a Label Studio task with labelloop's latest prediction (choice, queue score,
    model version) as a pre-annotation; data key from the connected config, else ``text_key``
    (default ``text``), with ``from_name`` ``label``."""
    config, pred = _file_config(store, project_id, text_key), Predictions(store, project_id)
    out = []
    for chunk in store.iter_items(project_id):
        for it in chunk:
            has = pred.has(it.seq)
            out.append(ls.export_task(config, it.id, it.text, pred.label(it.seq) if has else None,
                                      pred.score(it.seq) if has else None, pred.model_version))
    return out


def import_tasks(services: Services, project_id: str, tasks: Any, *,
                 text_key: str | None = None) -> dict[str, int]:
    """A Label Studio JSON export (tasks with annotations) into the project: tasks become items
    (those already there are kept), annotations human labels or skips. Re-importing the same
    export has no second effect."""
    store = services.store
    tasks = task_list({"tasks": tasks})
    config = _file_config(store, project_id, text_key)
    answers = []  # every annotation checked before anything is stored
    for task in tasks:
        anns = task.get("annotations") or []
        if not isinstance(anns, list) or not all(isinstance(a, Mapping) for a in anns):
            raise InvalidInput(f"task {task.get('id')!r}: 'annotations' must be a list of objects")
        for ann in anns:
            ls_project = ls_project_id(ann.get("project", task.get("project", 0)))
            answers.append(ls.annotation_answer(ann, ls.task_item_id(task), config, ls_project))
    for task in tasks:
        ls.task_text(task, config)
    _, n_new = ensure_items(store, project_id, tasks, config, rng=services.rng,
                             now=services.clock())
    got = []
    for start in range(0, len(answers), annotate.MAX_BATCH):
        got += submit_answers(services, project_id, answers[start:start + annotate.MAX_BATCH])
    return {"tasks": len(tasks), "new_items": n_new,
            "labels": sum(not r.duplicate and r.annotation.kind == "label" for r in got),
            "skips": sum(not r.duplicate and r.annotation.kind == "skip" for r in got),
            "duplicates": sum(r.duplicate for r in got)}
