"""labelloop as Label Studio's ML backend: the use cases behind ``/label-studio/{project}/...``.

Label Studio calls ``/health`` (1 s timeout), ``/setup`` (3 s), ``/predict`` (100 s),
``/webhook`` (1 s, never retried) and ``/versions``. Each answer here reads or appends a little;
a round is always a background job. ``/setup`` hands over the Label Studio URL and an API token:
they are kept with the project (array ``label_studio``, so every replica sees them) and used
after each round to push the queue head's predictions and set the Label Studio project's
``model_version`` (:func:`api.service.label_studio_sync.push_after_round`), which its
"Uncertainty sampling" needs.

Webhook annotations go through :func:`api.service.annotate.submit_external`: the log stays
append-only, an update is a new event (it supersedes that annotator's earlier answer), a
cancelled task is a skip, a deletion appends a ``retract`` event, and idempotency keys made from
the annotation id and ``updated_at`` give a replayed webhook no second effect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from api.service import annotate
from api.service.ingest import ingest_records
from api.storage.base import Store
from api.storage.records import Item, Round
from labeling import label_studio as ls
from labeling.errors import Conflict, InvalidInput, NotFound
from labeling.ingest import Record

if TYPE_CHECKING:  # services.py imports this module (its rounds push to Label Studio)
    from api.service.services import Services

__all__ = ["MAX_TASKS", "TASK_META", "Predictions", "ensure_items", "health", "load_connection",
           "ls_project_id", "predict", "project_config", "setup", "submit_answers", "task_list",
           "versions", "webhook"]


CONNECTION = "label_studio"  # array name: the connection /setup handed over, as JSON bytes
TASK_META = "label_studio_task"  # item meta key: the Label Studio task id
MAX_TASKS = 10_000  # tasks in one /predict or import
ANNOTATION_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


# -- the connection /setup hands over -----------------------------------------------------------
def load_connection(store: Store, project_id: str) -> dict[str, Any] | None:
    """``{"ls_project", "hostname", "access_token", "label_config"}`` as ``/setup`` last gave it."""
    raw = store.get_array(project_id, CONNECTION)
    return None if raw is None else json.loads(np.asarray(raw, dtype=np.uint8).tobytes())


def _save_connection(store: Store, project_id: str, conn: dict[str, Any]) -> None:
    store.put_array(project_id, CONNECTION,
                    np.frombuffer(json.dumps(conn, sort_keys=True).encode(), dtype=np.uint8))


def ls_project_id(value: Any) -> int:
    """Label Studio's project id from ``"7.1796349781"`` (``/setup``) or ``7`` (webhooks)."""
    head = value.split(".", 1)[0] if isinstance(value, str) else value
    if isinstance(head, str) and head.isdigit():
        return int(head)
    if isinstance(head, int) and not isinstance(head, bool) and head >= 0:
        return head
    raise InvalidInput(f"project: expected a Label Studio project id, got {value!r}")


def project_config(store: Store, project_id: str, label_config: Any) -> ls.LabelConfig:
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
    project_config(store, project_id, config_xml or None)
    hostname, token = body.get("hostname"), body.get("access_token")
    if hostname is not None and (not isinstance(hostname, str)
                                 or not hostname.startswith(("http://", "https://"))):
        raise InvalidInput(f"hostname: expected Label Studio's http(s) URL, got {hostname!r}")
    if token is not None and not isinstance(token, str):
        raise InvalidInput("access_token: expected a string")
    conn = {"ls_project": ls_project_id(body.get("project")), "hostname": hostname,
            "access_token": token or None, "label_config": config_xml}
    if load_connection(store, project_id) != conn:  # Label Studio calls /setup very often
        _save_connection(store, project_id, conn)
    return {"model_version": _latest_version(store, project_id)}


def versions(store: Store, project_id: str) -> dict[str, Any]:
    return {"versions": [r.model_version for r in store.list_rounds(project_id)]}


# -- tasks and items ----------------------------------------------------------------------------
def ensure_items(store: Store, project_id: str, tasks: Sequence[Mapping[str, Any]],
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


def task_list(body: Mapping[str, Any], field: str = "tasks") -> list[Mapping[str, Any]]:
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


def predict(services: Services, project_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """One result per task, in order: the end model's choice and the queue score, or (an item no
    round has scored yet) no ``result``, which Label Studio skips. New tasks are ingested, and
    then, or when no round ran yet, a round starts in the background."""
    store = services.store
    config = project_config(store, project_id, body.get("label_config"))
    items, n_new = ensure_items(store, project_id, task_list(body), config, rng=services.rng,
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
def submit_answers(services: Services, project_id: str, answers: Sequence[ls.Answer]) -> list:
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


def webhook(services: Services, project_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
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
        config = project_config(store, project_id, project.get("label_config"))
        ls_project = ls_project_id(project.get("id", ann.get("project")))
        answer = ls.annotation_answer(ann, ls.task_item_id(task), config, ls_project)  # checked first
        ensure_items(store, project_id, [task], config, rng=services.rng, now=services.clock())
        got = submit_answers(services, project_id, [answer])
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
        conn = load_connection(store, project_id) or {}
        ls_project = ls_project_id(project.get("id", conn.get("ls_project")))
        known = _answered(store, project_id, ls_project, ids)
        retract = [ls.retraction(ls_project, aid, *known[aid]) for aid in sorted(known)]
        got = submit_answers(services, project_id, retract) if retract else []
        return {"status": "ok", "action": action, "retracted": sum(not r.duplicate for r in got),
                "unknown": len(ids) - len(known)}
    if action == "START_TRAINING":
        job = services.request_round(project_id)
        if job is None:
            return {"status": "ok", "action": action, "job": None,
                    "note": "a round is running; another follows it"}
        return {"status": "ok", "action": action, "job": job.id}
    return {"status": "ignored", "action": action}

