"""User-written assertions: the decorator, versions from source, loading, and fault-tolerant runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labeling.assertion_runs import load_assertions, run_assertions
from labeling.assertion_types import AssertionBatch, Firing
from labeling.consistency_assertions import ConsistencyAssertion
from labeling.errors import InvalidInput, LFLoadError
from labeling.user_assertions import (
    UserAssertion,
    assertion,
    assertion_version,
    load_assertions_from_source,
)

SOURCE = '''
import numpy as np
from labeling.user_assertions import assertion, Firing
from labeling.consistency_assertions import consistency_assertion

@assertion()
def confident_short(batch):
    short = batch.frame["text"].str.len().to_numpy() < 6
    return short * batch.probs.max(axis=1)

@assertion(granularity="cluster", model_dependent=False)
def same_text(batch):
    return [([0, 1], 0.5), [2, 3]]

track = consistency_assertion("track", id_column="track")
'''


def batch(n=6, preds=None) -> AssertionBatch:
    preds = np.array([0, 1, 1, 0, 1, 0][:n]) if preds is None else np.asarray(preds)
    probs = np.where(np.eye(2)[preds] > 0, 0.8, 0.2)
    frame = pd.DataFrame({"id": [f"i{k}" for k in range(n)],
                          "text": ["ok", "a long text", "hey", "another one", "x", "fine text"][:n],
                          "track": ["a", "a", "b", "b", "b", None][:n]})
    return AssertionBatch(frame, probs, preds, None, np.zeros((n, 0), np.int8),
                          np.full(n, -1), ("neg", "pos"))


def test_source_defines_user_and_consistency_assertions_in_order():
    found = load_assertions_from_source(SOURCE)
    assert [a.name for a in found] == ["confident_short", "same_text", "track"]
    assert isinstance(found[0], UserAssertion) and found[0].granularity == "item"
    assert found[1].granularity == "cluster" and not found[1].model_dependent
    assert isinstance(found[2], ConsistencyAssertion)
    assert load_assertions_from_source(SOURCE)[0] is found[0]  # loaded once


def test_version_follows_the_source_and_nothing_else():
    v = [assertion_version(a) for a in load_assertions_from_source(SOURCE)]
    again = [assertion_version(a) for a in load_assertions_from_source(SOURCE + "\n# a comment\n")]
    assert v == again and len(set(v)) == 3 and all(len(x) == 12 for x in v)
    changed = SOURCE.replace("< 6", "< 7")
    v2 = [assertion_version(a) for a in load_assertions_from_source(changed)]
    assert v2[0] != v[0] and v2[1:] == v[1:]


@pytest.mark.parametrize("source, message", [
    ("x = 1\n", "defines no assertion"),
    ("def broken(:\n", "syntax error at line 1"),
    ("import nope_not_a_module\n", "ModuleNotFoundError"),
    (("from labeling.user_assertions import assertion\n"
      "@assertion('a')\ndef f(b):\n    return 0\n@assertion('a')\ndef g(b):\n    return 0\n"),
     "two assertions are named 'a'"),
])
def test_bad_sources_are_refused_by_name(source, message):
    with pytest.raises(LFLoadError, match=message):
        load_assertions_from_source(source)


def test_bad_granularity_is_refused():
    with pytest.raises(InvalidInput, match="granularity"):
        assertion(granularity="row")(lambda b: 0)


def test_runs_spread_cluster_severity_and_count_firings():
    b = batch()
    runs = run_assertions(load_assertions_from_source(SOURCE), b)
    short, same, track = runs
    assert short.severity.tolist() == pytest.approx([0.8, 0, 0.8, 0, 0.8, 0])
    assert short.clusters is None and short.counts()["items"] == 3
    assert same.severity.tolist() == [0.5, 0.5, 1.0, 1.0, 0, 0] and same.clusters == 2
    # track a = items 0,1 (preds 0,1: a tie); b = 2,3,4 (1,0,1): majority 1 with share 2/3
    assert track.severity.tolist() == pytest.approx([0.5, 0.5, 1 / 3, 1 / 3, 1 / 3, 0])
    assert track.weak_labels.tolist() == [-1, -1, 1, 1, 1, -1] and track.clusters == 2
    assert track.counts() == {"items": 5, "clusters": 2, "weak_votes": 3, "fault": None}


@pytest.mark.parametrize("returned, fault", [
    (lambda b: 1 / 0, "ZeroDivisionError"),
    (lambda b: np.ones(3), "severities must be 6"),
    (lambda b: -np.ones(6), "severities must be 6"),
    (lambda b: np.full(6, np.nan), "severities must be 6"),
    (lambda b: Firing(severity=np.ones(6), weak_labels=np.full(6, 2)), "weak_labels must be 6 integers"),
    (lambda b: Firing(weak_labels=np.zeros(6, int)), "one severity per item"),
])
def test_a_faulty_assertion_abstains_and_reports_its_fault(returned, fault):
    good = UserAssertion("good", lambda b: np.arange(6) % 2)
    runs = run_assertions([UserAssertion("bad", returned), good], batch())
    assert fault in runs[0].fault and not runs[0].severity.any()
    assert runs[1].fault is None and runs[1].severity.tolist() == [0, 1, 0, 1, 0, 1]


def test_cluster_positions_out_of_range_are_a_fault():
    run, = run_assertions([UserAssertion("c", lambda b: [[0, 99]], granularity="cluster")], batch())
    assert "positions in 0..5" in run.fault


def test_weak_labels_from_a_user_assertion():
    a = UserAssertion("w", lambda b: Firing(severity=np.ones(6), weak_labels=b.preds))
    run, = run_assertions([a], batch())
    assert run.weak_labels.tolist() == batch().preds.tolist() and run.counts()["weak_votes"] == 6


def test_specs_load_where_the_round_runs():
    track = load_assertions_from_source(SOURCE)[2]
    loaded = load_assertions([("confident_short", "source", SOURCE),
                              ("track", "consistency", track.spec_json())])
    assert loaded[0].name == "confident_short" and loaded[1] == track
    with pytest.raises(LFLoadError, match="'gone' is no longer defined"):
        load_assertions([("gone", "source", SOURCE)])
    with pytest.raises(InvalidInput, match="unknown kind"):
        load_assertions([("x", "sql", "select 1")])
