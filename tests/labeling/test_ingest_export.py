"""Readers (JSONL, CSV, Parquet, WRENCH), the end model, export writers, consensus."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from labeling.consensus import consensus
from labeling.end_model import EndModel, training_set
from labeling.errors import InvalidInput, SchemaError
from labeling.export import assign_labels, write_rows
from labeling.features import Featurizer
from labeling.frame import items_frame
from labeling.ingest import derive_id, read_records, read_wrench
from tests.server import DATASETS

YOUTUBE = DATASETS / "wrench_youtube"


def test_jsonl_csv_parquet_agree(tmp_path):
    rows = [{"id": "a", "text": "hello", "label": "pos", "source": "web"},
            {"id": "b", "text": "bye", "label": "neg", "source": "app"}]
    (tmp_path / "x.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pd.DataFrame(rows).to_csv(tmp_path / "x.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "x.parquet")
    got = [list(read_records(tmp_path / f"x.{ext}", class_names=["neg", "pos"]))
           for ext in ("jsonl", "csv", "parquet")]
    assert got[0] == got[1] == got[2]
    assert got[0][0].gold == 1 and got[0][0].meta == {"source": "web"}


def test_numeric_features_votes_and_derived_ids(tmp_path):
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4], "lf1": [1, -1], "label": [0, 1]})
    df.to_csv(tmp_path / "t.csv", index=False)
    recs = list(read_records(tmp_path / "t.csv", vote_columns=["lf1"]))
    assert recs[0].features == {"a": 1.0, "b": 3.0} and recs[0].votes == (1,)
    assert recs[0].id == derive_id(None, {"a": 1.0, "b": 3.0})
    assert [r.id for r in read_records(tmp_path / "t.csv", vote_columns=["lf1"])] == [r.id for r in recs]


def test_bad_input_names_the_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(InvalidInput, match="line 2"):
        list(read_records(tmp_path / "bad.jsonl"))
    (tmp_path / "cls.jsonl").write_text('{"text": "ok", "label": "maybe"}\n')
    with pytest.raises(SchemaError, match="maybe"):
        list(read_records(tmp_path / "cls.jsonl", class_names=["no", "yes"]))
    (tmp_path / "empty.jsonl").write_text('{"other": "x"}\n')
    with pytest.raises(InvalidInput, match="no text"):
        list(read_records(tmp_path / "empty.jsonl"))
    with pytest.raises(InvalidInput, match="format"):
        list(read_records(tmp_path / "bad.txt"))


def test_wrench_folder():
    ds = read_wrench(YOUTUBE)
    assert ds.class_names == ["HAM", "SPAM"]
    assert [len(ds.splits[s]) for s in ("train", "valid", "test")] == [1686, 120, 250]
    assert len(ds.splits["train"][0].votes) == 10


def test_end_model_on_gold_labels_near_wrench_reference():
    ds = read_wrench(YOUTUBE)
    train, test = items_frame(ds.splits["train"]), items_frame(ds.splits["test"])
    feat = Featurizer().fit(train)
    y = np.array([r.gold for r in ds.splits["train"]])
    model = EndModel(2).fit(feat.transform(train), y)
    acc = (model.predict_proba(feat.transform(test)).argmax(1) == [r.gold for r in ds.splits["test"]]).mean()
    assert acc >= 0.92, acc  # WRENCH: logistic regression on gold labels 94.2


def test_training_set_weights():
    human = np.array([1, -1, -1, -1])
    lm = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], dtype=np.float32)
    idx, y, w = training_set(4, human, lm, np.array([True, True, True, False]), weak_weight=0.5)
    assert idx.tolist() == [0, 1, 2] and y.tolist() == [1, 0, 1]
    assert np.allclose(w, [1.0, 0.45, 0.4])


def test_one_class_end_model_keeps_all_columns():
    m = EndModel(3).fit(np.ones((2, 2)), np.array([2, 2]))
    assert m.predict_proba(np.ones((1, 2))).tolist() == [[0.0, 0.0, 1.0]]


def test_assign_labels_precedence_and_threshold():
    human = np.array([1, -1, -1, -1])
    agreement = np.array([1.0, 0, 0, 0], dtype=np.float32)
    lm = np.array([[0.9, 0.1]] * 4, dtype=np.float32)
    end = np.array([[0.2, 0.8], [0.3, 0.7], [0.45, 0.55], [0.5, 0.5]], dtype=np.float32)
    covered = np.array([True, True, False, False])
    labels, source, conf = assign_labels(human, agreement, lm, covered, end, min_confidence=0.6)
    assert labels.tolist() == [1, 1, -1, -1] and source.tolist() == ["human", "end_model", "none", "none"]
    labels, source, _ = assign_labels(human, agreement, lm, covered, end, prefer="label_model")
    assert source.tolist() == ["human", "label_model", "end_model", "end_model"] and labels[1] == 0


def test_csv_export_neutralises_formulas(tmp_path):
    rows = [{"id": "1", "text": "=HYPERLINK(\"http://x\")"}, {"id": "2", "text": "+1"},
            {"id": "3", "text": "@SUM(A1)"}, {"id": "4", "text": "plain"}]
    write_rows(rows, tmp_path / "o.csv")
    with (tmp_path / "o.csv").open() as fh:
        texts = [r["text"] for r in csv.DictReader(fh)]
    assert texts == ["'=HYPERLINK(\"http://x\")", "'+1", "'@SUM(A1)", "plain"]
    write_rows(iter(rows), tmp_path / "o.parquet")
    assert pd.read_parquet(tmp_path / "o.parquet")["text"].tolist()[0].startswith("=")
    with pytest.raises(InvalidInput):
        write_rows(rows, tmp_path / "o.xlsx")


def test_consensus_latest_label_per_annotator_wins():
    events = [(0, "a", 1), (0, "b", 0), (0, "a", 0), (1, "c", 1), (2, "a", 1), (2, "b", 0)]
    labels, agreement, n = consensus(events, 4, 2)
    assert labels.tolist() == [0, 1, 0, -1]  # item 2 ties -> lowest class
    assert agreement.tolist() == [1.0, 1.0, 0.5, 0.0] and n.tolist() == [2, 1, 2, 0]
