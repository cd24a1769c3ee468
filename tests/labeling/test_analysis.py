"""LF summary: Snorkel's coverage / overlaps / conflicts plus accuracy against human labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labeling.analysis import lf_summary
from labeling.errors import InvalidInput
from labeling.ingest import read_wrench
from tests.server import DATASETS

VOTES = np.array([
    [1, 1, -1],
    [0, 1, -1],
    [-1, 0, -1],
    [-1, -1, -1],
], dtype=np.int8)


def test_small_matrix_by_hand():
    rows = lf_summary(VOTES, ["a", "b", "c"], labels=np.array([1, 1, -1, 0]), faults=[0, 2, 0])
    a, b, c = rows
    assert a == {"name": "a", "polarity": [0, 1], "coverage": 0.5, "overlaps": 0.5,
                 "conflicts": 0.25, "emp_accuracy": 0.5, "n_labeled_votes": 2, "faults": 0}
    assert b["polarity"] == [0, 1] and b["coverage"] == 0.75 and b["overlaps"] == 0.5
    assert b["conflicts"] == 0.25 and b["emp_accuracy"] == 1.0 and b["n_labeled_votes"] == 2
    assert b["faults"] == 2
    assert c == {"name": "c", "polarity": [], "coverage": 0.0, "overlaps": 0.0, "conflicts": 0.0,
                 "emp_accuracy": None, "n_labeled_votes": 0, "faults": 0}
    # a mask narrows the labels that count
    masked = lf_summary(VOTES, ["a", "b", "c"], labels=np.array([1, 1, -1, 0]),
                        labeled_mask=np.array([False, True, True, True]))
    assert masked[0]["emp_accuracy"] == 0.0 and masked[0]["n_labeled_votes"] == 1


def test_youtube_summary_is_plain_json():
    ds = read_wrench(DATASETS / "wrench_youtube")
    recs = ds.splits["valid"]
    votes = np.array([r.votes for r in recs], dtype=np.int8)
    gold = np.array([r.gold for r in recs])
    labels = np.where(np.arange(len(gold)) % 2 == 0, gold, -1)  # half the items labeled
    rows = lf_summary(votes, [f"lf{j}" for j in range(10)], labels=labels)
    json.dumps(rows, allow_nan=False)
    assert [r["coverage"] for r in rows] == pytest.approx((votes >= 0).mean(axis=0).tolist())
    fired = (labels >= 0) & (votes[:, 0] >= 0)
    assert rows[0]["emp_accuracy"] == pytest.approx((votes[fired, 0] == labels[fired]).mean())
    assert rows[4]["polarity"] == [0]  # keyword_song votes HAM only
    assert all(type(r["coverage"]) is float and type(r["n_labeled_votes"]) is int for r in rows)


def test_validation():
    with pytest.raises(InvalidInput, match="one name per LF column"):
        lf_summary(VOTES, ["a"])
    with pytest.raises(InvalidInput, match=r"labels must have shape \(4,\)"):
        lf_summary(VOTES, ["a", "b", "c"], labels=np.array([1]))
    with pytest.raises(InvalidInput, match="2-d int array"):
        lf_summary(VOTES.astype(float), ["a", "b", "c"])
    assert lf_summary(np.zeros((3, 0), dtype=np.int8), []) == []
