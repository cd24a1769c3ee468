"""Annotator monitoring: counts, leave-one-out agreement, gold accuracy, CROWDLAB, marking."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.annotator_quality import AnswerLog, annotator_report, far_below
from labeling.errors import InvalidInput


def log_of(events, names, n_items):
    """events: (item, annotator index, kind, label, time)."""
    cols = list(zip(*events))
    return AnswerLog(np.array(cols[0]), np.array(cols[1]), np.array(cols[2]), np.array(cols[3]),
                     np.array(cols[4], dtype=float), tuple(names), n_items)


def crowd(seed: int, error_rates, n_items=300, per_item=3, n_classes=2):
    """Simulated annotators answering the truth, each wrong at its own rate."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_items)
    events = []
    for i in range(n_items):
        for j in rng.choice(len(error_rates), per_item, replace=False):
            wrong = rng.random() < error_rates[j]
            label = (truth[i] + rng.integers(1, n_classes)) % n_classes if wrong else truth[i]
            events.append((i, j, 0, int(label), float(rng.uniform(2, 8))))
    names = [f"ann{j}" for j in range(len(error_rates))]
    return log_of(events, names, n_items), truth


def by_name(report):
    return {r["annotator"]: r for r in report}


def test_counts_median_time_and_latest_label():
    log = log_of([
        (0, 0, 0, 1, 4.0), (0, 0, 0, 0, 6.0),  # ann a corrects item 0 to class 0
        (1, 0, 1, -1, np.nan), (2, 0, 2, -1, np.nan), (3, 0, 0, 1, 10.0),
        (0, 1, 0, 0, np.nan), (3, 1, 0, 1, 1.0),
    ], ["a", "b"], 4)
    assert log.ratings().tolist() == [[0, 0], [-1, -1], [-1, -1], [1, 1]]
    got = by_name(annotator_report(log, 2))
    assert (got["a"]["labels"], got["a"]["items"], got["a"]["skips"], got["a"]["flags"]) == (3, 2, 1, 1)
    assert got["a"]["median_time_s"] == 6.0
    assert got["b"]["median_time_s"] == 1.0
    assert got["a"]["agreement_with_consensus"] == {"value": 1.0, "n_items": 2}
    assert got["a"]["quality"]["value"] is None and "round" in got["a"]["quality_note"]
    assert got["a"]["rank_by"] == "agreement_with_consensus"


def test_gold_accuracy_counts_gold_items_only():
    log = log_of([(0, 0, 0, 1, 1.0), (1, 0, 0, 0, 1.0), (2, 0, 0, 1, 1.0), (0, 1, 0, 1, 1.0)],
                 ["a", "b"], 3)
    got = by_name(annotator_report(log, 2, gold=np.array([1, 1, -1])))
    assert got["a"]["gold_accuracy"] == {"value": 0.5, "n_items": 2}
    assert got["b"]["gold_accuracy"] == {"value": 1.0, "n_items": 1}


def test_leave_one_out_agreement_skips_ties():
    # item 0: a=0, b=0, c=1 -> a agrees with b's majority (b alone), c disagrees with {0,0}
    # item 1: a=0, b=1 -> for a the other is b (1): disagree; for b the other is a: disagree
    log = log_of([(0, 0, 0, 0, 1.0), (0, 1, 0, 0, 1.0), (0, 2, 0, 1, 1.0),
                  (1, 0, 0, 0, 1.0), (1, 1, 0, 1, 1.0)], ["a", "b", "c"], 2)
    got = by_name(annotator_report(log, 2))
    # for a on item 0 the others are b=0, c=1: a tie, left out
    assert got["a"]["agreement_with_consensus"] == {"value": 0.0, "n_items": 1}
    assert got["c"]["agreement_with_consensus"] == {"value": 0.0, "n_items": 1}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_annotator_ranks_last_and_is_marked_with_crowdlab(seed):
    log, truth = crowd(seed, [0.05, 0.05, 0.05, 0.05, 0.3])
    rng = np.random.default_rng(seed)
    probs = np.full((len(truth), 2), 0.3)  # a model right about 80% of the time
    right = rng.random(len(truth)) < 0.8
    probs[np.arange(len(truth)), np.where(right, truth, 1 - truth)] = 0.7
    report = annotator_report(log, 2, pred_probs=probs)
    assert report[-1]["annotator"] == "ann4" and report[-1]["rank"] == 5
    assert report[0]["rank_by"] == "quality"
    assert [r["annotator"] for r in report if r["below_others"]] == ["ann4"]
    assert any(r.startswith("quality") for r in report[-1]["reasons"])
    assert all(r["quality"]["value"] is not None for r in report)


def test_marking_uses_gold_when_that_is_all_there_is():
    log, truth = crowd(3, [0.02, 0.02, 0.02, 0.4], per_item=1, n_items=400)
    report = annotator_report(log, 2, gold=truth)
    worst = by_name(report)["ann3"]
    assert worst["below_others"]
    assert any("gold accuracy" in r for r in worst["reasons"])
    assert worst["quality_note"]


def test_far_below_needs_three_annotators_with_enough_items():
    values = [{"value": 0.9, "n_items": 50}, {"value": 0.3, "n_items": 50}]
    assert far_below(values, "x") == {}
    values.append({"value": 0.92, "n_items": 5})  # too few items to count
    assert far_below(values, "x") == {}
    values.append({"value": 0.91, "n_items": 50})
    assert list(far_below(values, "x")) == [1]


def test_bad_log_shapes_are_refused():
    with pytest.raises(InvalidInput, match="annotator"):
        AnswerLog(np.array([0]), np.array([0, 1]), np.array([0]), np.array([0]),
                  np.array([1.0]), ("a",), 1)
    with pytest.raises(InvalidInput, match="positions"):
        AnswerLog(np.array([3]), np.array([0]), np.array([0]), np.array([0]),
                  np.array([1.0]), ("a",), 2)
    log, _ = crowd(0, [0.1, 0.1], per_item=2)
    with pytest.raises(InvalidInput, match="pred_probs"):
        annotator_report(log, 2, pred_probs=np.zeros((3, 2)))
