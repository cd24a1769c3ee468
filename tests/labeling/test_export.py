"""Pseudo-label assignment, export writers (formula-safe CSV) and metrics."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from labeling import export
from labeling.errors import InvalidInput
from labeling.export import assign_labels, write_rows
from labeling.metrics import evaluate

HUMAN = np.array([1, -1, -1, -1])
AGREEMENT = np.array([0.75, 0, 0, 0], dtype=np.float32)
LM = np.array([[0.9, 0.1]] * 4, dtype=np.float32)
END = np.array([[0.2, 0.8], [0.3, 0.7], [0.45, 0.55], [0.5, 0.5]], dtype=np.float32)
COVERED = np.array([True, True, False, False])


def test_human_consensus_wins_then_the_preferred_model():
    labels, source, conf = assign_labels(HUMAN, AGREEMENT, LM, COVERED, END)
    assert labels.tolist() == [1, 1, 1, 0] and source.tolist() == ["human"] + ["end_model"] * 3
    assert conf.tolist() == [0.75, 0.7, 0.55, 0.5]  # rounded to the digits an export writes
    labels, source, conf = assign_labels(HUMAN, AGREEMENT, LM, COVERED, END, prefer="label_model")
    assert source.tolist() == ["human", "label_model", "end_model", "end_model"]
    assert labels.tolist() == [1, 0, 1, 0] and conf[1] == pytest.approx(0.9)


def test_a_threshold_equal_to_a_written_confidence_keeps_the_row():
    lm = np.array([[1 / 3, 2 / 3]] * 4, dtype=np.float32)  # float32 2/3 is 0.66666669
    _, source, conf = assign_labels(HUMAN, AGREEMENT, lm, np.ones(4, bool), None,
                                    min_confidence=round(2 / 3, 6))
    assert source.tolist() == ["human"] + ["label_model"] * 3 and conf[1] == 0.666667


def test_threshold_and_missing_models():
    labels, source, _ = assign_labels(HUMAN, AGREEMENT, LM, COVERED, END, min_confidence=0.6)
    assert labels.tolist() == [1, 1, -1, -1]
    assert source.tolist() == ["human", "end_model", "none", "none"]
    labels, source, _ = assign_labels(HUMAN, AGREEMENT, LM, COVERED, None)  # LM fills in
    assert labels.tolist() == [1, 0, -1, -1]
    assert source.tolist() == ["human", "label_model", "none", "none"]
    labels, source, conf = assign_labels(HUMAN, AGREEMENT, None, None, None)
    assert labels.tolist() == [1, -1, -1, -1] and conf.tolist() == [0.75, 0, 0, 0]
    with pytest.raises(InvalidInput, match="prefer must be one of"):
        assign_labels(HUMAN, AGREEMENT, LM, COVERED, END, prefer="humans")
    with pytest.raises(InvalidInput, match="end_probs must have 4 rows"):
        assign_labels(HUMAN, AGREEMENT, LM, COVERED, END[:2])


ROWS = [{"id": "1", "text": '=HYPERLINK("http://x")', "label": 1},
        {"id": "2", "text": "+1", "label": 0}, {"id": "3", "text": "-2+3", "label": 0},
        {"id": "4", "text": "@SUM(A1)", "label": 1}, {"id": "5", "text": "\tx", "label": 1},
        {"id": "6", "text": "\r=1", "label": 0}, {"id": "7", "text": "plain = fine", "label": -1}]


def test_csv_neutralises_formulas(tmp_path):
    write_rows(ROWS, tmp_path / "o.csv")
    with (tmp_path / "o.csv").open(newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [r["text"] for r in got] == ["'" + r["text"] for r in ROWS[:6]] + ["plain = fine"]
    assert [r["label"] for r in got] == ["1", "0", "0", "1", "1", "0", "-1"]  # numbers untouched
    with pytest.raises(InvalidInput, match="row 2: column"):
        write_rows([{"id": "1"}, {"id": "2", "extra": 1}], tmp_path / "bad.csv")


def test_jsonl_and_parquet_keep_values_exact(tmp_path, monkeypatch):
    rows = [{**r, "confidence": np.float32(0.5), "n": np.int64(3)} for r in ROWS]
    write_rows(iter(rows), tmp_path / "o.jsonl")
    back = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert back[0] == {**ROWS[0], "confidence": 0.5, "n": 3}
    monkeypatch.setattr(export, "BATCH_ROWS", 3)  # several batches, one file
    write_rows(iter(ROWS), tmp_path / "o.parquet")
    assert pd.read_parquet(tmp_path / "o.parquet").to_dict("records") == ROWS
    write_rows([], tmp_path / "empty.pq")
    assert len(pd.read_parquet(tmp_path / "empty.pq")) == 0


def test_unknown_format_is_rejected(tmp_path):
    with pytest.raises(InvalidInput, match="export format must be one of"):
        write_rows(ROWS, tmp_path / "o.xlsx")
    write_rows(ROWS, tmp_path / "o.txt", fmt="jsonl")
    assert len((tmp_path / "o.txt").read_text().splitlines()) == 7


def test_evaluate_uses_the_snorkel_tie_rule():
    y = np.array([0, 1, 1, 0, 1])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5], [0.5, 0.5]])
    # rows 3 and 4 tie; SHA-1 of "3" and "4" pick classes 1 and 0
    pred = np.array([0, 1, 0, 1, 0])
    got = evaluate(y, probs)
    macro = f1_score(y, pred, average="macro")
    assert got == {"accuracy": 0.4, "macro_f1": pytest.approx(macro), "n": 5}
    assert evaluate(y[:0], probs[:0]) == {"accuracy": None, "macro_f1": None, "n": 0}
    with pytest.raises(InvalidInput, match="y_true must be"):
        evaluate(y[:3], probs)
