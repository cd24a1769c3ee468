"""The assertion bandit: calibration, rewards, exploit/explore, fallback, determinism, provenance."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from labeling.assertions import ASSERTION_NAMES, builtin_assertions
from strategies import QueryContext, select
from strategies.bal import rewards
from strategies.base import AssertionVotes

N = 1000


def context(state=None, severity=None, probs=None, **params):
    rng = np.random.default_rng(0)
    if severity is None:
        severity = np.zeros((N, 3))
        severity[:200, 0] = rng.random(200) + 0.01     # A1 flags items 0..199
        severity[200:500, 1] = rng.random(300) + 0.01  # A2 flags 200..499
        severity[500:600, 2] = 1.0                     # A3 flags 500..599 (boolean)
    probs = probs if probs is not None else rng.dirichlet(np.ones(2), N).astype(np.float32)
    return QueryContext(n_classes=2, candidates=np.ones(N, dtype=bool), probs=probs,
                        assertions=AssertionVotes(["A1", "A2", "A3"], severity, [True, True, True]),
                        state=state or {}, params=params)


def test_rewards_follow_the_worked_example():
    cand = np.ones(2000, dtype=bool)
    prev = {"A1": list(range(366)), "A2": list(range(567)), "A3": list(range(267))}
    now = {"A1": np.arange(293), "A2": np.arange(580), "A3": np.arange(200)}
    r = rewards(prev, now, cand, {"A1": True, "A2": True, "A3": True})
    assert round(r["A1"], 4) == 0.1995 and r["A2"] == 0.0 and round(r["A3"], 4) == 0.2509
    cand[:100] = False  # labeled since: both counts are taken on the same (unlabeled) items
    r = rewards({"A1": list(range(200))}, {"A1": np.arange(150)}, cand, {"A1": True})
    assert r["A1"] == (100 - 50) / 100
    assert rewards({}, {"A1": np.arange(5)}, cand, {"A1": True}) == {"A1": 0.0}


def test_first_round_calibrates_uniformly_over_assertions():
    sel = select("bal", context(), 300, np.random.default_rng(1))
    assert sel.state["mode"] == "calibration" and len(sel.indices) == 300
    drawn = [r["drawn_for"] for r in sel.reasons]
    counts = {m: drawn.count(m) for m in ("A1", "A2", "A3")}
    assert all(80 <= c <= 120 for c in counts.values()), counts
    json.dumps(sel.state), json.dumps(sel.reasons)


def test_assertions_flagging_the_same_items_are_one_arm():
    rng = np.random.default_rng(0)
    severity = np.zeros((N, 3))
    severity[:200, 0] = rng.random(200) + 0.01
    severity[:200, 1] = rng.random(200) + 0.01  # A2 flags exactly A1's items, ranked otherwise
    severity[500:700, 2] = rng.random(200) + 0.01
    sel = select("bal", context(severity=severity), 200, np.random.default_rng(1))
    drawn = [r["drawn_for"] for r in sel.reasons]
    assert "A2" not in drawn  # A1 stands for the pair ...
    assert 80 <= drawn.count("A1") <= 120 and 80 <= drawn.count("A3") <= 120  # ... as one arm
    shared = [r for r in sel.reasons if r["drawn_for"] == "A1"]
    assert all(r["flagged_by"] == ["A1", "A2"] for r in shared)


def test_exploit_follows_rewards_and_explores_a_quarter():
    # previous model flagged far more of A3's items than now: A3 earns all the reward
    state = {"flags": {"A1": list(range(200)), "A2": list(range(200, 500)),
                       "A3": list(range(500, 900))}, "round": 1}
    sel = select("bal", context(state), 400, np.random.default_rng(2))
    assert sel.state["mode"] == "bal"
    assert sel.state["rewards"]["A3"] == 0.75 and sel.state["rewards"]["A1"] == 0.0
    modes = [r["mode"] for r in sel.reasons]
    exploit = [r for r in sel.reasons if r["mode"] == "exploit"]
    assert all(r["drawn_for"] == "A3" for r in exploit)
    # A3 has 100 items; once they run out the rest explores the others, then the baseline fills
    assert 0.15 <= modes[:100].count("explore") / 100 <= 0.4
    assert "fill" in modes or len(set(sel.indices.tolist())) == 400


def test_severity_rank_sampling_prefers_severe_items():
    severity = np.zeros((N, 1))
    severity[:500, 0] = np.arange(1, 501)
    state = {"flags": {"A": list(range(1000))}}
    ctx = QueryContext(n_classes=2, candidates=np.ones(N, bool), probs=np.full((N, 2), 0.5, np.float32),
                       assertions=AssertionVotes(["A"], severity, [True]), state=state,
                       params={"explore_share": 0.0})
    sel = select("bal", ctx, 100, np.random.default_rng(3))
    assert np.mean(sel.indices) > 300  # the rank-weighted draw leans to the severe end (mean 333)


def test_fallback_when_no_assertion_improves():
    state = {"flags": {"A1": list(range(200)), "A2": list(range(200, 500)), "A3": list(range(500, 600))}}
    probs = np.tile([0.9, 0.1], (N, 1)).astype(np.float32)
    probs[700:710] = [0.5, 0.5]  # the least confident items
    sel = select("bal", context(state, probs=probs, fallback="least_confidence"), 10,
                 np.random.default_rng(4))
    assert sel.state["mode"] == "fallback"
    assert sorted(sel.indices.tolist()) == list(range(700, 710))
    assert all(r["mode"] == "fallback" for r in sel.reasons)


def test_same_state_and_seed_same_picks():
    state = {"flags": {"A1": list(range(300)), "A2": list(range(200, 500)), "A3": list(range(500, 700))}}
    a = select("bal", context(state), 120, np.random.default_rng(9))
    b = select("bal", context(state), 120, np.random.default_rng(9))
    assert a.indices.tolist() == b.indices.tolist() and a.reasons == b.reasons


def test_builtin_assertions_fire_where_they_should():
    frame = pd.DataFrame({"id": list("abcde"), "text": ["win cash now", "win cash now!", "hello there",
                                                        "see you soon", "cash prize"]})
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.9, 0.1], [0.6, 0.4], [0.05, 0.95]], dtype=np.float32)
    votes = np.array([[1, -1], [1, 1], [0, -1], [1, 1], [-1, -1]], dtype=np.int8)
    lm = np.array([[0.2, 0.8], [0.1, 0.9], [0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], dtype=np.float32)
    human = np.array([-1] * 5)
    names, sev, dep = builtin_assertions(frame, probs, votes, lm, human, None, np.random.default_rng(0))
    assert names == ASSERTION_NAMES and all(dep)
    col = {n: sev[:, j] for j, n in enumerate(names)}
    assert (col["model_lf_disagree"] > 0).tolist() == [False, True, False, True, False]
    # item 3: two LFs against a model at 0.4 for their label; item 1: two against a model at 0.2
    assert col["model_lf_disagree"][3] > col["model_lf_disagree"][1]
    assert (col["lm_em_disagree"] > 0).tolist() == [False, True, False, True, False]
    assert (col["near_duplicate_conflict"] > 0).tolist() == [True, True, False, False, False]


REGISTERED = '''
import numpy as np
from labeling.user_assertions import assertion

@assertion()
def mentions_cash(batch):
    return batch.frame["text"].str.contains("cash").to_numpy() * batch.probs.max(axis=1)
'''


def round_input(strategy: str, specs, state=None):
    from workers.tasks import RoundInput

    n = 200
    words = ["win cash", "hello", "see you", "free prize", "thanks"]
    frame = pd.DataFrame({"id": [f"i{k}" for k in range(n)],
                          "text": [f"{words[k % 5]} number {k}" for k in range(n)],
                          "track": [f"t{k // 4}" for k in range(n)]})
    human = np.full(n, -1)
    human[:40] = [1 if k % 5 in (0, 3) else 0 for k in range(40)]
    return RoundInput(
        frame=frame, votes=np.zeros((n, 0), np.int8), human=human, is_eval=np.zeros(n, bool),
        open_mask=np.ones(n, bool), n_classes=2, strategy=strategy, strategy_params={},
        strategy_state=state or {}, queue_size=60, weak_weight=0.5, label_model="auto", seed=0,
        assertion_specs=specs, class_names=("ham", "spam"),
    )


def test_registered_assertions_feed_bal_next_to_the_builtins():
    from labeling.consistency_assertions import consistency_assertion
    from workers.tasks import fit_round

    track = consistency_assertion("track", "track")
    specs = [("mentions_cash", "source", REGISTERED), ("track", "consistency", track.spec_json())]
    out = fit_round(round_input("bal", specs))
    counts = out.metrics["assertions"]
    assert set(ASSERTION_NAMES) | {"mentions_cash", "track"} == set(counts)
    assert counts["mentions_cash"] == 40  # every 'win cash' item, as the built-ins count
    assert out.metrics["assertion_runs"]["mentions_cash"]["items"] == 40
    drawn = [int(i) for i, r in zip(out.queue, out.reasons, strict=True)
             if r.get("drawn_for") == "mentions_cash"]
    assert drawn and all(i % 5 == 0 and i >= 40 for i in drawn)  # unlabeled 'win cash' items
    assert set(out.strategy_state["flags"]) == set(counts)  # BAL keeps their history for rewards
    flagged_track = out.metrics["assertion_runs"]["track"]["items"]
    assert out.assertion_vote_names == ["track"] and out.assertion_votes.shape == (200, 1)
    assert (out.assertion_votes[:, 0] >= 0).sum() == out.metrics["assertion_runs"]["track"]["weak_votes"]
    assert flagged_track >= out.metrics["assertion_runs"]["track"]["weak_votes"]


def test_registered_assertions_run_under_any_strategy_without_the_builtins():
    from workers.tasks import fit_round

    out = fit_round(round_input("entropy", [("mentions_cash", "source", REGISTERED)]))
    assert out.metrics["assertions"] == {"mentions_cash": 40}
    assert out.assertion_votes is None and out.assertion_vote_names == []
    assert "assertions" not in fit_round(round_input("entropy", [])).metrics


def test_exploit_surplus_goes_to_the_baseline_not_to_assertions_without_reward():
    # only A3 earns reward and it flags 100 items; after them, exploit draws must not pass to
    # A1/A2 (r = 0, spec 2.3.4: surplus in proportion to r) but to the baseline, in place
    state = {"flags": {"A1": list(range(200)), "A2": list(range(200, 500)),
                       "A3": list(range(500, 900))}, "round": 1}
    probs = np.tile([0.95, 0.05], (N, 1)).astype(np.float32)
    probs[900:1000, 0] = np.linspace(0.5, 0.7, 100)  # the least confident items, none flagged
    probs[900:1000, 1] = 1 - probs[900:1000, 0]
    sel = select("bal", context(state, probs=probs), 400, np.random.default_rng(5))
    reasons = sel.reasons
    explore = [r for r in reasons if r["mode"] == "explore"]
    fill = [i for i, r in zip(sel.indices, reasons, strict=True) if r["mode"] == "fill"]
    assert all(r["drawn_for"] == "A3" for r in reasons if r["mode"] == "exploit")
    assert 0.15 <= len(explore) / 400 <= 0.35  # A1/A2 get the exploration share only
    assert len(fill) >= 200
    assert sorted(fill[:100]) == list(range(900, 1000))  # least confidence, most uncertain first
    first_fill = next(k for k, r in enumerate(reasons) if r["mode"] == "fill")
    assert first_fill < 200 and reasons[-1]["mode"] in ("fill", "explore")  # interleaved
