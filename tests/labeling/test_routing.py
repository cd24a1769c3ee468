"""Disagreement routing decisions (pure core)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling.errors import InvalidInput
from labeling.routing import ItemAnswers, current_votes, route


def item(*labels, base=2, item_id="x", gold=False, extra=()):
    events = tuple((f"a{j}", "label", lab) for j, lab in enumerate(labels)) + tuple(extra)
    return ItemAnswers(item_id, events, base, gold)


def decide(*items, max_required=3, min_agreement=1.0):
    return route(list(items), max_required=max_required, min_agreement=min_agreement)


def test_two_disagree_then_one_more_then_review():
    [r] = decide(item(0, 1))
    assert (r.required, r.pool, r.agreement, r.annotators) == (3, None, 0.5, 2)
    [r] = decide(item(0, 1, 1))  # still disputed at max_required: adjudication
    assert (r.required, r.pool, r.annotators) == (4, "review", 3)
    assert r.agreement == pytest.approx(2 / 3)
    assert decide(item(0, 1, 1), min_agreement=0.6) == []  # 2 of 3 is enough here


def test_nothing_to_decide():
    assert decide(item(1, 1)) == []  # unanimous
    assert decide(item(0, base=2)) == []  # the second answer is not in yet
    assert decide(item(0, 1, base=3)) == []  # its redundancy asked for three
    assert decide(item(0, 1, gold=True)) == []  # gold items are scored, not routed
    assert decide(item(0, 1), min_agreement=0.0) == []  # routing off
    decided = item(0, 1, 1, extra=[("rev", "review", 1)])
    assert decide(decided) == []  # a reviewer decided it


def test_corrections_and_withdrawals_change_the_votes():
    fixed = item(0, 1, extra=[("a1", "correct", 0)])  # a1 corrects to agree with a0
    assert current_votes(fixed.events) == {"a0": 0, "a1": 0}
    assert decide(fixed) == []
    skipped = item(0, 1, 1, extra=[("a2", "skip", None)])  # a2 withdrew: two votes, disputed
    [r] = decide(skipped)
    assert (r.required, r.pool, r.annotators) == (4, None, 2)  # 3 answers in the store + 1


def test_single_answer_items_never_route_and_max_required_one_goes_to_review():
    assert decide(item(0, base=1)) == []
    [r] = decide(item(0, 1, base=1), max_required=1)
    assert (r.required, r.pool) == (3, "review")


def test_bad_settings_are_refused_by_name():
    with pytest.raises(InvalidInput, match="max_required"):
        decide(item(0, 1), max_required=0)
    with pytest.raises(InvalidInput, match="min_agreement"):
        decide(item(0, 1), min_agreement=1.5)


answers = st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["label", "skip", "correct"]),
                             st.integers(0, 2)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(answers, st.integers(1, 4), st.integers(1, 6), st.floats(0.0, 1.0))
def test_decisions_set_answers_plus_one_and_are_idempotent(events, base, max_required, min_agr):
    evs = tuple((f"a{a}", kind, None if kind == "skip" else lab) for a, kind, lab in events)
    it = ItemAnswers("x", evs, base)
    first = route([it], max_required=max_required, min_agreement=min_agr)
    assert first == route([it], max_required=max_required, min_agreement=min_agr)  # a replay
    votes = current_votes(evs)
    for r in first:
        assert r.required == sum(k == "label" for _, k, _ in evs) + 1  # set, never "+= 1"
        assert r.annotators == len(votes) >= max(2, base)
        assert r.agreement < min_agr
        assert (r.pool == "review") == (len(votes) >= max_required)
    if len(set(votes.values())) <= 1:  # answers that agree never route
        assert first == []
