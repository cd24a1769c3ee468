"""Label Studio's formats, converted to and from labelloop's (pure: no HTTP, no store).

* a **label config** (``<View><Text name="text" value="$text"/><Choices name="sentiment"
  toName="text">...``) becomes a :class:`LabelConfig`: which task data key holds the text, the
  names a ``choices`` result carries, and the class names. Single-choice text classification only
  (one ``<Choices>`` over one ``<Text>``); any other config is refused with a message saying so.
* a **task** (``{"id": 7, "data": {"text": ...}}``) is a labelloop item: its id is
  ``data["labelloop_id"]`` when present (tasks labelloop exported), else the task id as a string.
* an **annotation** becomes an :class:`Answer` for the annotation log: a label, a skip (the task
  was cancelled/skipped) or a retraction (Label Studio deleted it), with an idempotency key made
  from the Label Studio project, the annotation id and its ``updated_at``, so a replayed webhook
  or a re-imported export has one effect and an update is a new event that supersedes the last.
* a labelloop prediction becomes a ``choices`` result with a **score** Label Studio orders by:
  its "Uncertainty sampling" serves the lowest score first, so the score is the item's place in
  labelloop's queue (:func:`rank_scores`).

Task data is only ever read as data: nothing in it is evaluated, and the XML parser refuses
entity expansion (``defusedxml``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from labeling.errors import InvalidInput, SchemaError

__all__ = [
    "ID_KEY",
    "Answer",
    "LabelConfig",
    "annotation_answer",
    "annotator_name",
    "check_classes",
    "choice_result",
    "config_xml",
    "export_task",
    "parse_label_config",
    "rank_scores",
    "retraction",
    "task_id",
    "task_item_id",
    "task_text",
]

ID_KEY = "labelloop_id"  # the task data key labelloop's export writes the item id under
MAX_TEXT = 1_000_000


@dataclass(frozen=True)
class LabelConfig:
    """What labelloop needs from a Label Studio label config."""

    from_name: str  # the <Choices name=...>: results carry it as from_name
    to_name: str  # the <Text name=...> it labels
    value_key: str  # the task data key the <Text value="$key"> names
    choices: tuple[str, ...]  # the class names, in the config's order


def parse_label_config(xml: str) -> LabelConfig:
    """Parse a label config; ``InvalidInput`` naming what is unsupported or malformed."""
    if not isinstance(xml, str) or not xml.strip():
        raise InvalidInput("label_config: expected the project's label config XML, got nothing")
    try:
        root = ElementTree.fromstring(xml)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise InvalidInput(f"label_config: not valid XML ({exc})") from exc
    choices = list(root.iter("Choices"))
    others = sorted({el.tag for el in root.iter()} & {"Labels", "RectangleLabels", "TextArea",
                                                      "Taxonomy", "Rating", "Number", "Relations"})
    if len(choices) != 1 or others:
        raise InvalidInput(
            "label_config: labelloop supports single-choice text classification, one <Choices> "
            f"over one <Text>; this config has {len(choices)} <Choices>"
            + (f" and {', '.join('<' + t + '>' for t in others)}" if others else "")
        )
    ch = choices[0]
    if ch.get("choice", "single") != "single":
        raise InvalidInput(f"label_config: <Choices name={ch.get('name')!r}> has "
                           f"choice={ch.get('choice')!r}; only single-choice is supported")
    from_name, to_name = ch.get("name"), ch.get("toName")
    texts = {el.get("name"): el for el in root.iter("Text")}
    if not from_name or to_name not in texts:
        raise InvalidInput(f"label_config: <Choices> needs a name and a toName naming a <Text>, "
                           f"got name={from_name!r} toName={to_name!r}")
    value = texts[to_name].get("value", "")
    if not value.startswith("$") or len(value) < 2:
        raise InvalidInput(f"label_config: <Text name={to_name!r}> needs value=\"$key\", got {value!r}")
    names = tuple(el.get("value") or el.get("alias") or "" for el in ch.iter("Choice"))
    if len(names) < 2 or "" in names or len(set(names)) != len(names):
        raise InvalidInput(f"label_config: <Choices name={from_name!r}> needs two or more distinct "
                           f"<Choice value=...>, got {list(names)}")
    return LabelConfig(from_name, to_name, value[1:], names)


def config_xml(class_names: Sequence[str], *, value_key: str = "text") -> str:
    """A label config for a Label Studio project over these classes (what
    :func:`parse_label_config` reads back as ``LabelConfig("label", "text", value_key, ...)``)."""
    if not value_key.isidentifier():
        raise InvalidInput(f"text_key must be a plain name, got {value_key!r}")
    choices = "".join(f'<Choice value="{escape(c, {chr(34): "&quot;"})}"/>' for c in class_names)
    return (f'<View><Text name="text" value="${value_key}"/>'
            f'<Choices name="label" toName="text" choice="single">{choices}</Choices></View>')


def check_classes(config: LabelConfig, class_names: Sequence[str]) -> None:
    """``SchemaError`` unless the config's choices are exactly the project's classes."""
    if set(config.choices) != set(class_names):
        missing = sorted(set(class_names) - set(config.choices))
        extra = sorted(set(config.choices) - set(class_names))
        raise SchemaError(
            f"label_config: the <Choices name={config.from_name!r}> values {list(config.choices)} "
            f"must be the labelloop project's classes {list(class_names)}"
            + (f"; missing {missing}" if missing else "") + (f"; unknown {extra}" if extra else "")
        )


def task_id(task: Mapping[str, Any]) -> int:
    """The Label Studio task id (a positive integer)."""
    tid = task.get("id") if isinstance(task, Mapping) else None
    if isinstance(tid, bool) or not isinstance(tid, int) or tid < 0:
        raise InvalidInput(f"task: 'id' must be a non-negative integer, got {tid!r}")
    return tid


def task_item_id(task: Mapping[str, Any]) -> str:
    """The labelloop item a task stands for (see the module docstring)."""
    data = task.get("data") if isinstance(task, Mapping) else None
    own = data.get(ID_KEY) if isinstance(data, Mapping) else None
    if own is not None:
        if not isinstance(own, str) or not 1 <= len(own) <= 512:
            raise InvalidInput(f"task {task.get('id')!r}: data.{ID_KEY} must be a string of "
                               f"1..512 characters, got {own!r}")
        return own
    return str(task_id(task))


def task_text(task: Mapping[str, Any], config: LabelConfig) -> str:
    """The text the config's ``<Text>`` shows for this task."""
    data = task.get("data")
    text = data.get(config.value_key) if isinstance(data, Mapping) else None
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise InvalidInput(f"task {task.get('id')!r}: data.{config.value_key} must be a string of "
                           f"at most {MAX_TEXT} characters (the <Text> value), got "
                           f"{type(text).__name__}")
    return text


def annotator_name(completed_by: Any) -> str:
    """``label-studio:<user id>`` (``completed_by`` is an id, or a user object in exports)."""
    if isinstance(completed_by, Mapping):
        completed_by = completed_by.get("id")
    if isinstance(completed_by, bool) or not isinstance(completed_by, int):
        raise InvalidInput(f"annotation: 'completed_by' must be a user id, got {completed_by!r}")
    return f"label-studio:{completed_by}"


@dataclass(frozen=True)
class Answer:
    """One event for labelloop's annotation log, from Label Studio."""

    item_id: str
    annotator: str
    kind: str  # "label", "skip" or "retract"
    label: str | None  # a class name for "label"
    key: str  # idempotency key
    time_spent_s: float | None = None


def _key(ls_project: int, annotation_id: int, version: str) -> str:
    return f"ls:{ls_project}:{annotation_id}:{version}"


def key_prefix(ls_project: int, annotation_id: int) -> str:
    """What every idempotency key of one Label Studio annotation starts with."""
    return _key(ls_project, annotation_id, "")


def annotation_answer(annotation: Mapping[str, Any], item_id: str, config: LabelConfig,
                      ls_project: int) -> Answer:
    """A created or updated annotation as an answer: its ``choices`` result for the config's
    ``<Choices>`` (a label), or a skip when it was cancelled (or has no such result)."""
    if not isinstance(annotation, Mapping):
        raise InvalidInput(f"annotation: expected an object, got {type(annotation).__name__}")
    aid = annotation.get("id")
    if isinstance(aid, bool) or not isinstance(aid, int):
        raise InvalidInput(f"annotation: 'id' must be an integer, got {aid!r}")
    version = annotation.get("updated_at") or annotation.get("created_at") or ""
    if not isinstance(version, str) or len(version) > 64:
        raise InvalidInput(f"annotation {aid}: 'updated_at' must be a timestamp string")
    annotator = annotator_name(annotation.get("completed_by"))
    lead = annotation.get("lead_time")
    spent = float(lead) if isinstance(lead, int | float) and 0 <= lead < 86400 else None
    key = _key(ls_project, aid, version)
    if annotation.get("was_cancelled"):
        return Answer(item_id, annotator, "skip", None, key, spent)
    result = annotation.get("result") or []
    if not isinstance(result, list):
        raise InvalidInput(f"annotation {aid}: 'result' must be a list")
    picked = [r for r in result if isinstance(r, Mapping) and r.get("type") == "choices"
              and r.get("from_name") == config.from_name]
    if not picked:
        return Answer(item_id, annotator, "skip", None, key, spent)  # an empty annotation
    got = picked[0].get("value", {}).get("choices") if isinstance(picked[0].get("value"), Mapping) else None
    if not isinstance(got, list) or len(got) != 1 or not isinstance(got[0], str):
        raise InvalidInput(f"annotation {aid}: {config.from_name!r} must hold exactly one choice, "
                           f"got {got!r}")
    if got[0] not in config.choices:
        raise SchemaError(f"annotation {aid}: unknown choice {got[0]!r}; choices are "
                          f"{list(config.choices)}")
    return Answer(item_id, annotator, "label", got[0], key, spent)


def retraction(ls_project: int, annotation_id: int, item_id: str, annotator: str) -> Answer:
    """The event for a deleted annotation."""
    return Answer(item_id, annotator, "retract", None, _key(ls_project, annotation_id, "deleted"))


def choice_result(config: LabelConfig, label: str) -> list[dict[str, Any]]:
    """A prediction's ``result``: one ``choices`` region."""
    return [{"from_name": config.from_name, "to_name": config.to_name, "type": "choices",
             "value": {"choices": [label]}}]


def rank_scores(rank: np.ndarray) -> np.ndarray:
    """Scores that sort ascending in queue order: ``rank`` (n,) int, each item's place in the
    queue (0 first; -1 for items outside it) -> (n,) float64 in (0, 1], queued items
    ``(rank + 1) / (q + 1)`` for a queue of q, the others 1."""
    rank = np.asarray(rank, dtype=np.int64)
    q = int((rank >= 0).sum())
    return np.where(rank >= 0, (rank + 1) / (q + 1), 1.0)


def export_task(config: LabelConfig, item_id: str, text: str | None, label: str | None,
                score: float | None, model_version: str | None) -> dict[str, Any]:
    """One task of Label Studio's import JSON, with labelloop's prediction as a pre-annotation."""
    task: dict[str, Any] = {"data": {config.value_key: text or "", ID_KEY: item_id}}
    if label is not None:
        task["predictions"] = [{"model_version": model_version, "score": score,
                                "result": choice_result(config, label)}]
    return task
