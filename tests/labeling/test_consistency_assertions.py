"""Consistency assertions: grouping by identifier (and time window), severity, weak labels, specs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labeling.assertion_types import AssertionBatch
from labeling.consistency_assertions import ConsistencyAssertion, consistency_assertion
from labeling.errors import InvalidInput


def batch(frame: pd.DataFrame, preds) -> AssertionBatch:
    preds = np.asarray(preds)
    n = len(frame)
    return AssertionBatch(frame, np.eye(3)[preds], preds, None, np.zeros((n, 0), np.int8),
                          np.full(n, -1), ("a", "b", "c"))


def severity(firing, n):
    out = np.zeros(n)
    for members, sev in firing.clusters:
        out[members] = sev
    return out


def test_groups_fire_with_the_share_disagreeing_and_vote_their_majority():
    frame = pd.DataFrame({"track": ["t1"] * 4 + ["t2"] * 2 + ["t3", None, "t4", "t4"]})
    preds = [0, 0, 0, 1, 1, 2, 2, 0, 1, 1]
    f = consistency_assertion("trk", "track")(batch(frame, preds))
    sev = severity(f, len(frame))
    assert sev.tolist() == pytest.approx([0.25] * 4 + [0.5] * 2 + [0, 0, 0, 0])
    # t1: majority 0; t2: a tie abstains; singleton t3, no id and consistent t4 abstain
    assert f.weak_labels.tolist() == [0, 0, 0, 0, -1, -1, -1, -1, -1, -1]
    assert len(f.clusters) == 2


def test_time_window_cuts_groups_whatever_the_row_order():
    frame = pd.DataFrame({"track": ["t"] * 6, "ts": [30.0, 0.0, 31.0, 1.0, 2.0, 60.0]})
    preds = [1, 0, 2, 0, 1, 1]
    a = consistency_assertion("w", "track", time_column="ts", window=5)
    f = a(batch(frame, preds))
    # windows from the sorted times: {0,1,2} -> rows 1,3,4 (0,0,1); {30,31} -> rows 0,2 (1,2); {60}
    sev = severity(f, 6)
    assert sev.tolist() == pytest.approx([0.5, 1 / 3, 0.5, 1 / 3, 1 / 3, 0])
    assert f.weak_labels.tolist() == [-1, 0, -1, 0, 0, -1]
    shuffled = frame.iloc[::-1].reset_index(drop=True)
    g = a(batch(shuffled, preds[::-1]))
    assert severity(g, 6).tolist() == pytest.approx(sev[::-1].tolist())
    no_window = consistency_assertion("all", "track")(batch(frame, preds))
    assert len(no_window.clusters) == 1


def test_transitions_in_time_order_catch_a_flicker_but_allow_one_change():
    # one id, rows shuffled; in time order: a a b a (flicker) | 100 s later: a b (one change)
    frame = pd.DataFrame({"ecg": ["p"] * 6, "t": [20.0, 0.0, 10.0, 100.0, 30.0, 105.0]})
    preds = [1, 0, 0, 0, 0, 1]  # by time: 0 0 1 0 | 0 1
    a = consistency_assertion("flicker", "ecg", time_column="t", window=30, max_transitions=1)
    f = a(batch(frame, preds))
    assert severity(f, 6).tolist() == [1, 1, 1, 0, 1, 0]  # two changes in the first window
    assert f.weak_labels.tolist() == [0, 0, 0, -1, 0, -1]  # the window's majority, a
    strict = consistency_assertion("any", "ecg", time_column="t", window=30, max_transitions=0)
    assert severity(strict(batch(frame, preds)), 6).tolist() == [2, 2, 2, 1, 2, 1]
    shuffled = frame.iloc[[3, 0, 5, 2, 4, 1]].reset_index(drop=True)
    g = a(batch(shuffled, [preds[i] for i in [3, 0, 5, 2, 4, 1]]))
    assert severity(g, 6).tolist() == [0, 1, 0, 1, 1, 1]
    # without the transition rule the second window's disagreement fires too
    plain = consistency_assertion("dis", "ecg", time_column="t", window=30)(batch(frame, preds))
    assert severity(plain, 6)[[3, 5]].tolist() == [0.5, 0.5]


def test_timestamps_in_text_are_seconds():
    frame = pd.DataFrame({"user": ["u"] * 3,
                          "at": ["2024-01-01T00:00:00Z", "2024-01-01T00:00:30Z", "2024-01-01T02:00:00Z"]})
    f = consistency_assertion("s", "user", time_column="at", window=60)(batch(frame, [0, 1, 1]))
    assert severity(f, 3).tolist() == [0.5, 0.5, 0.0]


def test_column_attributes_do_not_depend_on_the_model():
    frame = pd.DataFrame({"doc": ["d1", "d1", "d2", "d2"], "lang": ["en", "fr", "en", "en"]})
    a = consistency_assertion("lang", "doc", ["lang"])
    assert not a.model_dependent and consistency_assertion("x", "doc").model_dependent
    f = a(batch(frame, [0, 0, 0, 1]))
    assert severity(f, 4).tolist() == [0.5, 0.5, 0, 0] and f.weak_labels is None
    both = consistency_assertion("both", "doc", ["lang", "label"])(batch(frame, [0, 0, 0, 1]))
    assert severity(both, 4).tolist() == [0.5, 0.5, 0.5, 0.5]
    assert both.weak_labels.tolist() == [-1, -1, -1, -1]  # d2's predictions tie


def test_missing_column_names_it():
    frame = pd.DataFrame({"track": ["a", "a"]})
    with pytest.raises(InvalidInput, match="no column 'track_id'"):
        consistency_assertion("c", "track_id")(batch(frame, [0, 1]))
    assert consistency_assertion("c", "track_id", ["label", "lang"]).missing_columns(["track_id"]) == ["lang"]


@pytest.mark.parametrize("spec, message", [
    ({"id_column": "t"}, "'name' is required"),
    ({"name": "x"}, "'id_column' is required"),
    ({"name": "x", "id_column": "t", "colour": 1}, "unknown keys \\['colour'\\]"),
    ({"name": "bad name!", "id_column": "t"}, "name must be"),
    ({"name": "x", "id_column": ""}, "id_column must be"),
    ({"name": "x", "id_column": "t", "attributes": []}, "attributes must be a non-empty list"),
    ({"name": "x", "id_column": "t", "attributes": "label"}, "attributes must be a list"),
    ({"name": "x", "id_column": "t", "attributes": ["label", "label"]}, "distinct"),
    ({"name": "x", "id_column": "t", "attributes": ["t"]}, "cannot also be an attribute"),
    ({"name": "x", "id_column": "t", "window": 5}, "together"),
    ({"name": "x", "id_column": "t", "time_column": "ts"}, "together"),
    ({"name": "x", "id_column": "t", "time_column": "ts", "window": -1}, "window must be a positive"),
    ({"name": "x", "id_column": "t", "time_column": "ts", "window": float("inf")}, "window must be"),
    ({"name": "x", "id_column": "t", "max_transitions": 1}, "needs time_column"),
    ({"name": "x", "id_column": "t", "time_column": "ts", "window": 3, "max_transitions": -1},
     "max_transitions must be an integer"),
    ({"name": "x", "id_column": "t", "time_column": "ts", "window": 3, "max_transitions": 1.5},
     "max_transitions must be an integer"),
    ([1, 2], "must be an object"),
])
def test_bad_specs_are_refused_by_name(spec, message):
    with pytest.raises(InvalidInput, match=message):
        ConsistencyAssertion.from_spec(spec)


def test_spec_roundtrips_through_json():
    a = consistency_assertion("w", "track", ["label", "lang"], time_column="ts", window=3)
    b = ConsistencyAssertion.from_spec(a.spec())
    assert a == b and a.spec_json() == b.spec_json() and b.window == 3.0
    assert "max_transitions" not in a.spec()  # specs from before the option keep their version
    t = consistency_assertion("f", "track", time_column="ts", window=3, max_transitions=1)
    assert ConsistencyAssertion.from_spec(t.spec()) == t and t.spec()["max_transitions"] == 1
