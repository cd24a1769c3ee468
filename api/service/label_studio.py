"""labelloop as Label Studio's ML backend: the use cases behind ``/label-studio/{project}/...``.

Label Studio calls ``/health`` (1 s timeout), ``/setup`` (3 s), ``/predict`` (100 s),
``/webhook`` (1 s, never retried) and ``/versions``. Each answer here reads or appends a little;
a round is always a background job. ``/setup`` hands over the Label Studio URL and an API token:
they are kept with the project (array ``label_studio``, so every replica sees them) and used
after each round to push the queue head's predictions and set the Label Studio project's
``model_version`` (:func:`push_after_round`), which its "Uncertainty sampling" needs.

Webhook annotations go through :func:`api.service.annotate.submit_external`: the log stays
append-only, an update is a new event (it supersedes that annotator's earlier answer), a
cancelled task is a skip, a deletion appends a ``retract`` event, and idempotency keys made from
the annotation id and ``updated_at`` give a replayed webhook no second effect.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import numpy as np

from api.service import annotate
from api.service.ingest import ingest_records
from api.storage.base import Store
from api.storage.records import Item, Round
from labeling import label_studio as ls
from labeling.errors import Conflict, InvalidInput, NotFound
from labeling.ingest import Record

__all__ = ["MAX_TASKS", "export_tasks", "health", "import_tasks", "load_connection", "predict",
           "push_after_round", "setup", "versions", "webhook"]

log = logging.getLogger(__name__)

CONNECTION = "label_studio"  # array name: the connection /setup handed over, as JSON bytes
TASK_META = "label_studio_task"  # item meta key: the Label Studio task id
MAX_TASKS = 10_000  # tasks in one /predict or import
PUSH_BATCH = 500
PUSH_TIMEOUT_S = 30.0
ANNOTATION_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


# -- the connection /setup hands over -----------------------------------------------------------
def load_connection(store: Store, project_id: str) -> dict[str, Any] | None:
    """``{"ls_project", "hostname", "access_token", "label_config"}`` as ``/setup`` last gave it."""
    raw = store.get_array(project_id, CONNECTION)
    return None if raw is None else json.loads(np.asarray(raw, dtype=np.uint8).tobytes())


def _save_connection(store: Store, project_id: str, conn: dict[str, Any]) -> None:
    store.put_array(project_id, CONNECTION,
                    np.frombuffer(json.dumps(conn, sort_keys=True).encode(), dtype=np.uint8))


def _ls_project(value: Any) -> int:
    """Label Studio's project id from ``"7.1796349781"`` (``/setup``) or ``7`` (webhooks)."""
    head = value.split(".", 1)[0] if isinstance(value, str) else value
    if isinstance(head, str) and head.isdigit():
        return int(head)
    if isinstance(head, int) and not isinstance(head, bool) and head >= 0:
        return head
    raise InvalidInput(f"project: expected a Label Studio project id, got {value!r}")


def _config(store: Store, project_id: str, label_config: Any) -> ls.LabelConfig:
    """The label config given (or, without one, the one ``/setup`` stored), checked against the
    project's classes."""
    if not label_config:
        conn = load_connection(store, project_id)
        label_config = conn["label_config"] if conn else None
        if not label_config:
            raise InvalidInput("label_config: none given and Label Studio has not called /setup "
                               "for this project yet")
    config = ls.parse_label_config(label_config)
    ls.check_classes(config, store.get_project(project_id).class_names)
    return config


def _latest_version(store: Store, project_id: str) -> str:
    rnd = store.latest_round(project_id)
    return rnd.model_version if rnd else "labelloop-untrained"


def health(store: Store, project_id: str) -> dict[str, Any]:
    """Label Studio needs a 200; the rest tells a person what the backend can do."""
    store.get_project(project_id)
    conn = load_connection(store, project_id)
    token = bool(conn and conn.get("access_token"))
    out: dict[str, Any] = {"status": "UP", "model_class": "labelloop", "project": project_id,
                           "model_version": _latest_version(store, project_id),
                           "label_studio_connected": conn is not None, "access_token": token}
    if not token:
        out["note"] = ("no Label Studio access token yet (it comes with /setup): predictions are "
                       "not pushed after rounds and the Label Studio project's model_version is "
                       "not set, so its uncertainty sampling falls back to random order")
    return out


def setup(store: Store, project_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Check the label config against the project's classes, keep the connection, and answer
    with the latest round's model version (Label Studio records it as the backend's)."""
    config_xml = body.get("schema")
    _config(store, project_id, config_xml or None)
    hostname, token = body.get("hostname"), body.get("access_token")
    if hostname is not None and (not isinstance(hostname, str)
                                 or not hostname.startswith(("http://", "https://"))):
        raise InvalidInput(f"hostname: expected Label Studio's http(s) URL, got {hostname!r}")
    if token is not None and not isinstance(token, str):
        raise InvalidInput("access_token: expected a string")
    conn = {"ls_project": _ls_project(body.get("project")), "hostname": hostname,
            "access_token": token or None, "label_config": config_xml}
    if load_connection(store, project_id) != conn:  # Label Studio calls /setup very often
        _save_connection(store, project_id, conn)
    return {"model_version": _latest_version(store, project_id)}


def versions(store: Store, project_id: str) -> dict[str, Any]:
    return {"versions": [r.model_version for r in store.list_rounds(project_id)]}


# -- tasks and items ----------------------------------------------------------------------------
def _ensure_items(store: Store, project_id: str, tasks: Sequence[Mapping[str, Any]],
                  config: ls.LabelConfig, *, rng: Callable[[], np.random.Generator],
                  now: float) -> tuple[list[Item], int]:
    """The item of each task (ingesting those labelloop has not seen), and how many were new.
    An item that lacks its task id (it came from labelloop's export) gets it in its meta."""
    wanted = [(ls.task_id(t), ls.task_item_id(t), t) for t in tasks]
    new: list[Record] = []
    retag: list[Item] = []
    for tid, iid, task in wanted:
        try:
            item = store.get_item(project_id, iid)
        except NotFound:
            new.append(Record(iid, ls.task_text(task, config), meta={TASK_META: tid}))
            continue
        if item.meta.get(TASK_META) != tid:
            retag.append(item)
    by_id = {r.id: r for r in new}
    if len(by_id) != len(new):
        raise InvalidInput("tasks: two tasks stand for the same labelloop item")
    if new:
        try:
            ingest_records(store, project_id, new, on_conflict="reject", rng=rng(), now=now)
        except Conflict:  # another request ingested some of them meanwhile: add the rest
            missing = [r for r in new if not _exists(store, project_id, r.id)]
            if missing:
                ingest_records(store, project_id, missing, on_conflict="reject", rng=rng(), now=now)
    if retag:
        tids = {iid: tid for tid, iid, _ in wanted}
        ingest_records(store, project_id, [
            Record(it.id, it.text, dict(it.features), {**it.meta, TASK_META: tids[it.id]},
                   it.gold, it.votes) for it in retag], on_conflict="upsert", rng=rng(), now=now)
    return [store.get_item(project_id, iid) for _, iid, _ in wanted], len(new)


def _exists(store: Store, project_id: str, item_id: str) -> bool:
    try:
        store.get_item(project_id, item_id)
    except NotFound:
        return False
    return True


def _tasks(body: Mapping[str, Any], field: str = "tasks") -> list[Mapping[str, Any]]:
    tasks = body.get(field)
    if not isinstance(tasks, list) or not all(isinstance(t, Mapping) for t in tasks):
        raise InvalidInput(f"{field}: expected a list of Label Studio tasks")
    if len(tasks) > MAX_TASKS:
        raise InvalidInput(f"{field}: at most {MAX_TASKS} tasks at a time, got {len(tasks)}")
    return tasks


class Predictions:
    """The latest round's end-model choice and queue score per pool position."""

    def __init__(self, store: Store, project_id: str) -> None:
        self.round: Round | None = store.latest_round(project_id)
        self.names = store.get_project(project_id).class_names
        probs = store.get_array(project_id, "probs") if self.round else None
        rank = store.get_array(project_id, "queue_rank") if self.round else None
        self.probs = probs if probs is not None else np.zeros((0, len(self.names)))
        n = len(self.probs)
        self.scores = ls.rank_scores(rank if rank is not None and len(rank) == n
                                     else np.full(n, -1))

    @property
    def model_version(self) -> str:
        return self.round.model_version if self.round else "labelloop-untrained"

    def has(self, seq: int) -> bool:
        return 0 <= seq < len(self.probs)

    def label(self, seq: int) -> str:
        return self.names[int(np.argmax(self.probs[seq]))]

    def score(self, seq: int) -> float:
        return round(float(self.scores[seq]), 9)


def predict(services: Any, project_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """One result per task, in order: the end model's choice and the queue score, or (an item no
    round has scored yet) no ``result``, which Label Studio skips. New tasks are ingested, and
    then, or when no round ran yet, a round starts in the background."""
    store = services.store
    config = _config(store, project_id, body.get("label_config"))
    items, n_new = _ensure_items(store, project_id, _tasks(body), config, rng=services.rng,
                                 now=services.clock())
    pred = Predictions(store, project_id)
    if n_new or pred.round is None:
        try:
            services.start_round(project_id)
        except Conflict:  # one runs already; its push brings the predictions
            pass
    results = []
    for it in items:
        if pred.has(it.seq):
            results.append({"result": ls.choice_result(config, pred.label(it.seq)),
                            "score": pred.score(it.seq), "model_version": pred.model_version})
        else:
            results.append({"model_version": pred.model_version})
    return {"results": results}


# -- webhooks -----------------------------------------------------------------------------------
def _submit(services: Any, project_id: str, answers: Sequence[ls.Answer]) -> list:
    return annotate.submit_external(services.store, project_id, [
        (a.annotator, annotate.AnnotationIn(a.item_id, None, a.kind, a.label,
                                            idempotency_key=a.key, time_spent_s=a.time_spent_s))
        for a in answers], now=services.clock())


def _answered(store: Store, project_id: str, ls_project: int,
              annotation_ids: set[int]) -> dict[int, tuple[str, str]]:
    """(item, annotator) of each Label Studio annotation id the log holds an event of."""
    prefixes = {ls.key_prefix(ls_project, a): a for a in annotation_ids}
    found: dict[int, tuple[str, str]] = {}
    for ev in store.annotations(project_id):
        key = ev.idempotency_key
        if key and key.startswith("ls:"):
            parts = key.split(":", 3)  # ls, project, annotation id, version (a timestamp with ':')
            aid = prefixes.get(":".join(parts[:3]) + ":")
            if aid is not None:
                found[aid] = (ev.item_id, ev.annotator)
    return found


def webhook(services: Any, project_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Annotations created/updated/deleted and START_TRAINING; other actions are acknowledged
    and ignored."""
    if not isinstance(body, Mapping) or not isinstance(body.get("action"), str):
        raise InvalidInput("webhook: expected a JSON object with an 'action'")
    action, store = body["action"], services.store
    project = body.get("project") if isinstance(body.get("project"), Mapping) else {}
    if action in ANNOTATION_ACTIONS:
        ann, task = body.get("annotation"), body.get("task")
        if not isinstance(ann, Mapping) or not isinstance(task, Mapping):
            raise InvalidInput(f"webhook {action}: needs 'annotation' and 'task' objects")
        config = _config(store, project_id, project.get("label_config"))
        ls_project = _ls_project(project.get("id", ann.get("project")))
        answer = ls.annotation_answer(ann, ls.task_item_id(task), config, ls_project)  # checked first
        _ensure_items(store, project_id, [task], config, rng=services.rng, now=services.clock())
        got = _submit(services, project_id, [answer])
        job = services.maybe_retrain(project_id)
        return {"status": "ok", "action": action, "duplicate": got[0].duplicate,
                "kind": got[0].annotation.kind, "retrain_job": job.id if job else None}
    if action == "ANNOTATIONS_DELETED":
        anns = body.get("annotations")
        if not isinstance(anns, list) or not all(isinstance(a, Mapping) for a in anns):
            raise InvalidInput("webhook ANNOTATIONS_DELETED: needs an 'annotations' list")
        ids = {a.get("id") for a in anns}
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise InvalidInput("webhook ANNOTATIONS_DELETED: every annotation needs an integer id")
        ls_project = _ls_project(project.get("id", anns[0].get("project") if anns else None))
        known = _answered(store, project_id, ls_project, ids)
        retract = [ls.retraction(ls_project, aid, *known[aid]) for aid in sorted(known)]
        got = _submit(services, project_id, retract) if retract else []
        return {"status": "ok", "action": action, "retracted": sum(not r.duplicate for r in got),
                "unknown": len(ids) - len(known)}
    if action == "START_TRAINING":
        try:
            job = services.start_round(project_id)
        except Conflict as exc:
            return {"status": "ok", "action": action, "job": None, "note": str(exc)}
        return {"status": "ok", "action": action, "job": job.id}
    return {"status": "ignored", "action": action}


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
def _file_config(store: Store, project_id: str, text_key: str | None) -> ls.LabelConfig:
    conn = load_connection(store, project_id)
    if conn and conn.get("label_config") and text_key is None:
        return _config(store, project_id, conn["label_config"])
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


def import_tasks(services: Any, project_id: str, tasks: Any, *,
                 text_key: str | None = None) -> dict[str, int]:
    """A Label Studio JSON export (tasks with annotations) into the project: tasks become items
    (those already there are kept), annotations human labels or skips. Re-importing the same
    export has no second effect."""
    store = services.store
    tasks = _tasks({"tasks": tasks})
    config = _file_config(store, project_id, text_key)
    answers = []  # every annotation checked before anything is stored
    for task in tasks:
        anns = task.get("annotations") or []
        if not isinstance(anns, list) or not all(isinstance(a, Mapping) for a in anns):
            raise InvalidInput(f"task {task.get('id')!r}: 'annotations' must be a list of objects")
        for ann in anns:
            ls_project = _ls_project(ann.get("project", task.get("project", 0)))
            answers.append(ls.annotation_answer(ann, ls.task_item_id(task), config, ls_project))
    for task in tasks:
        ls.task_text(task, config)
    _, n_new = _ensure_items(store, project_id, tasks, config, rng=services.rng,
                             now=services.clock())
    got = []
    for start in range(0, len(answers), annotate.MAX_BATCH):
        got += _submit(services, project_id, answers[start:start + annotate.MAX_BATCH])
    return {"tasks": len(tasks), "new_items": n_new,
            "labels": sum(not r.duplicate and r.annotation.kind == "label" for r in got),
            "skips": sum(not r.duplicate and r.annotation.kind == "skip" for r in got),
            "duplicates": sum(r.duplicate for r in got)}
