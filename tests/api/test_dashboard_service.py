"""The dashboard's pure parts: Wilson intervals, the learning curve, annotator pace, and the lease
creation time the metrics read from lease ids."""

from __future__ import annotations

import pytest

from api.metrics import lease_started_at
from api.service.annotate import new_lease_id
from api.service.dashboard import annotator_table, learning_curve, wilson
from api.storage.records import Annotation, Round


def test_wilson_interval_matches_the_textbook_values():
    lo, hi = wilson(0.8, 100)
    assert lo == pytest.approx(0.7112, abs=1e-4) and hi == pytest.approx(0.8666, abs=1e-4)
    assert wilson(1.0, 3)[1] == 1.0 and wilson(0.0, 3)[0] == 0.0
    assert wilson(None, 10) is None and wilson(0.5, 0) is None


def test_learning_curve_orders_rounds_and_leaves_unmeasured_ones_empty():
    rounds = [
        Round("p", 2, "m2", 20.0, 40, {"end_model": {"accuracy": 0.9, "macro_f1": 0.8, "n": 50}},
              {}, "entropy"),
        Round("p", 1, "m1", 10.0, 0, {}, {}, "entropy"),
    ]
    curve = learning_curve(rounds)
    assert [p["round"] for p in curve] == [1, 2] and [p["labels"] for p in curve] == [0, 40]
    assert curve[0]["end_model"]["accuracy"] is None and curve[0]["end_model"]["accuracy_ci"] is None
    lo, hi = curve[1]["end_model"]["accuracy_ci"]
    assert lo < 0.9 < hi and curve[1]["end_model"]["n"] == 50


def test_annotator_table_counts_kinds_and_a_pace_without_breaks():
    def ann(who, kind, t):
        return Annotation("p", f"i{t}", who, kind, 0 if kind == "label" else None, created_at=t)

    events = [ann("a", "label", 1000.0), ann("a", "label", 1010.0), ann("a", "skip", 1030.0),
              ann("a", "label", 5000.0),  # after a break: not a gap
              ann("b", "flag", 99_000.0)]
    rows = {r["annotator"]: r for r in annotator_table(events, now=100_000.0)}
    assert (rows["a"]["labels"], rows["a"]["skips"], rows["a"]["flags"]) == (3, 1, 0)
    assert rows["a"]["median_s_per_answer"] == 20.0  # gaps 10 and 20
    assert rows["a"]["labels_last_day"] == 0 and rows["b"]["flags"] == 1
    assert rows["b"]["median_s_per_answer"] is None


def test_lease_ids_tell_when_the_lease_was_made():
    import time

    before = time.time()
    started = lease_started_at(new_lease_id())
    assert before - 1 <= started <= time.time() + 1
    assert lease_started_at("not-a-lease") is None and lease_started_at("lease-zz") is None
