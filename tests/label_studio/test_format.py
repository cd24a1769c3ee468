"""Label Studio's formats <-> labelloop's (``labeling.label_studio``), on the recorded requests."""

from __future__ import annotations

import numpy as np
import pytest

from labeling import label_studio as ls
from labeling.consensus import consensus
from labeling.errors import InvalidInput, SchemaError
from tests.label_studio.test_replay import recording


def recorded(path: str, action: str | None = None) -> list[dict]:
    return [r["body"] for r in recording() if r["path"] == path
            and (action is None or r["body"]["action"] == action)]


def test_recorded_configs_parse():
    configs = {b["schema"] for b in recorded("/setup")}
    assert len(configs) == 2  # with choice="single" and a newline, and without
    for xml in configs:
        config = ls.parse_label_config(xml)
        assert config == ls.LabelConfig("sentiment", "text", "text", ("Positive", "Negative"))
        ls.check_classes(config, ["Negative", "Positive"])  # order does not matter
        with pytest.raises(SchemaError, match="missing \\['Neutral'\\]"):
            ls.check_classes(config, ["Negative", "Positive", "Neutral"])


@pytest.mark.parametrize("xml, says", [
    (("<View><Text name='t' value='$t'/><Labels name='l' toName='t'><Label value='A'/></Labels>"
     "</View>"), "0 <Choices> and <Labels>"),
    (("<View><Text name='t' value='$t'/><Choices name='c' toName='t' choice='multiple'>"
     "<Choice value='A'/><Choice value='B'/></Choices></View>"), "only single-choice"),
    (("<View><Image name='i' value='$img'/><Choices name='c' toName='i'><Choice value='A'/>"
     "<Choice value='B'/></Choices></View>"), "toName naming a <Text>"),
    (("<View><Text name='t' value='$t'/><Choices name='c' toName='t'><Choice value='A'/>"
     "</Choices></View>"), "two or more distinct"),
    ("<View><Text", "not valid XML"),
    ('<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaa">]><View>&a;</View>', "not valid XML"),
])
def test_unsupported_configs_say_why(xml, says):
    with pytest.raises(InvalidInput, match=says):
        ls.parse_label_config(xml)


def test_recorded_annotations_become_answers():
    config = ls.parse_label_config(recorded("/setup")[0]["schema"])
    created = recorded("/webhook", "ANNOTATION_CREATED")[0]
    updated = recorded("/webhook", "ANNOTATION_UPDATED")[0]
    item = ls.task_item_id(created["task"])
    assert item == "8"
    a = ls.annotation_answer(created["annotation"], item, config, created["project"]["id"])
    b = ls.annotation_answer(updated["annotation"], item, config, updated["project"]["id"])
    assert (a.kind, a.label, a.annotator, a.time_spent_s) == ("label", "Negative", "label-studio:1", 3.2)
    assert (b.kind, b.label) == ("label", "Positive")
    assert a.key != b.key and a.key.startswith(ls.key_prefix(1, 1)) and b.key.startswith(ls.key_prefix(1, 1))
    cancelled = {**created["annotation"], "was_cancelled": True}
    assert ls.annotation_answer(cancelled, item, config, 1).kind == "skip"
    unknown = {**created["annotation"], "result": [{"from_name": "sentiment", "type": "choices",
                                                    "value": {"choices": ["Meh"]}}]}
    with pytest.raises(SchemaError, match="Meh"):
        ls.annotation_answer(unknown, item, config, 1)
    r = ls.retraction(1, 1, item, a.annotator)
    assert r.kind == "retract" and r.key.startswith(ls.key_prefix(1, 1))


def test_task_ids_and_text():
    config = ls.LabelConfig("c", "t", "body", ("A", "B"))
    assert ls.task_item_id({"id": 5, "data": {"body": "x"}}) == "5"
    assert ls.task_item_id({"id": 5, "data": {"body": "x", ls.ID_KEY: "doc-1"}}) == "doc-1"
    assert ls.task_text({"id": 5, "data": {"body": "x"}}, config) == "x"
    with pytest.raises(InvalidInput, match="data.body"):
        ls.task_text({"id": 5, "data": {"text": "x"}}, config)
    with pytest.raises(InvalidInput, match="'id'"):
        ls.task_item_id({"id": "5; drop", "data": {}})


def test_scores_sort_in_queue_order():
    rank = np.array([2, -1, 0, 1, -1])
    scores = ls.rank_scores(rank)
    assert list(np.argsort(scores, kind="stable")[:3]) == [2, 3, 0]
    assert scores[1] == scores[4] == 1.0 and scores.max() <= 1.0 and scores.min() > 0


def test_consensus_honours_retractions():
    # annotator a labels 1, corrects to 0, then retracts; b labels 1
    labels, agreement, n = consensus([(0, "a", 1), (0, "a", 0), (0, "b", 1), (0, "a", -1),
                                      (1, "a", 1), (1, "a", -1)], 2, 2)
    assert labels.tolist() == [1, -1] and n.tolist() == [1, 0]
    assert agreement.tolist() == [1.0, 0.0]


def test_generated_config_reads_back():
    names = ["spam", 'say "ham" & <eggs>']
    xml = ls.config_xml(names, value_key="body")
    assert ls.parse_label_config(xml) == ls.LabelConfig("label", "text", "body", tuple(names))
    with pytest.raises(InvalidInput, match="text_key"):
        ls.config_xml(names, value_key="a b")
