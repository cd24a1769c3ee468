"""The built-in assertions: which items they flag, and that their severities rank the likeliest
model errors first (BAL draws by severity rank, so the order is what matters)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from labeling.assertions import (
    ASSERTION_NAMES,
    builtin_assertions,
    credible_sources,
    monitor_rows,
    perturb_frame,
)
from labeling.features import Featurizer

COL = {n: j for j, n in enumerate(ASSERTION_NAMES)}


def run(frame, probs, votes, lm=None, human=None, rescore=None, **kw):
    n = len(frame)
    human = np.full(n, -1) if human is None else human
    names, sev, _ = builtin_assertions(frame, np.asarray(probs, np.float32), np.asarray(votes, np.int8),
                                         lm, human, rescore, np.random.default_rng(0), **kw)
    assert names == ASSERTION_NAMES and sev.shape == (n, len(names))
    assert (sev >= 0).all()
    return sev


def test_model_lf_disagree_ranks_more_votes_and_a_closer_model_first():
    frame = pd.DataFrame({"text": [f"item {i}" for i in range(5)]})
    probs = [[0.9, 0.1],    # 0: one of two LFs against, model sure: least likely a model error
             [0.6, 0.4],    # 1: one of two against, model almost agrees with it
             [0.9, 0.1],    # 2: both against, model sure
             [0.55, 0.45],  # 3: both against, model almost agrees: likeliest error
             [0.9, 0.1]]    # 4: no LF against the model: abstains
    votes = [[1, 0], [1, 0], [1, 1], [1, 1], [0, -1]]
    s = run(frame, probs, votes)[:, COL["model_lf_disagree"]]
    assert s[4] == 0 and (s[:4] > 0).all()
    assert s[3] > s[2] and s[3] > s[1] > s[0] and s[2] > s[0]


def test_lm_em_disagree_ranks_the_model_closest_to_the_label_model_first():
    frame = pd.DataFrame({"text": ["a b", "c d", "e f", "g h"]})
    probs = [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1]]
    lm = np.array([[0.1, 0.9], [0.2, 0.8], [0.2, 0.8], [0.1, 0.9]], np.float32)
    votes = [[1], [1], [1], [-1]]  # item 3 is not covered by any LF: abstains
    s = run(frame, probs, votes, lm)[:, COL["lm_em_disagree"]]
    assert s[2] == 0 and s[3] == 0  # 2 agrees with the label model
    assert s[1] > s[0] > 0


def test_perturbation_flip_counts_flips_over_several_copies():
    frame = pd.DataFrame({"text": ["one two three four"] * 3, "id": ["a", "b", "c"]})
    probs = np.array([[0.8, 0.2], [0.6, 0.4], [0.7, 0.3]], np.float32)
    calls = []

    def rescore(f):
        calls.append(len(f))
        alt = probs.copy()
        alt[0] = [0.3, 0.7]               # flips on every copy
        if len(calls) <= 2:
            alt[1] = [0.45, 0.55]         # flips on two of five copies
        return alt

    s = run(frame, probs, np.zeros((3, 0)), rescore=rescore, perturbations=5)[:, COL["perturbation_flip"]]
    assert len(calls) == 5
    assert s[0] > s[1] > 0 and s[2] == 0
    one = run(frame, probs, np.zeros((3, 0)), rescore=lambda f: np.vstack([probs[:2, ::-1], probs[2:]]),
              perturbations=1)
    assert (one[:, COL["perturbation_flip"]] > 0).tolist() == [True, True, False]


def test_near_duplicate_conflict_puts_the_minority_first():
    frame = pd.DataFrame({"text": ["Win cash!", "win cash", "WIN CASH", "hello"]})
    probs = [[0.1, 0.9], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]
    s = run(frame, probs, np.zeros((4, 0)))[:, COL["near_duplicate_conflict"]]
    assert s[3] == 0 and (s[:3] > 0).all()
    assert s[2] > s[1] > s[0]  # the odd one out first; then the less confident majority member
    ranks = rankdata(s[:3])
    assert ranks.tolist() == [1.0, 2.0, 3.0]  # no ties left for the rank draw


def test_perturbation_keeps_entity_spans_on_the_same_words():
    text = "the quick brown fox jumps over the lazy dog near the river bank today"
    a0 = text.index("fox")
    b0 = text.index("river bank")
    frame = pd.DataFrame({"text": [text] * 20, "span1_start": [a0] * 20, "span1_end": [a0 + 3] * 20,
                          "span2_start": [b0] * 20, "span2_end": [b0 + 10] * 20})
    out = perturb_frame(frame, np.random.default_rng(1), drop=0.5)
    shorter = 0
    for row in out.itertuples():
        assert row.text[row.span1_start:row.span1_end] == "fox"
        assert row.text[row.span2_start:row.span2_end] == "river bank"
        shorter += len(row.text) < len(text)
    assert shorter >= 15  # words did get dropped
    assert frame["text"].iat[0] == text and frame["span2_start"].iat[0] == b0  # input untouched


def test_perturbation_drops_words_and_adds_noise_to_features():
    frame = pd.DataFrame({"text": ["a b c d e f g h i j"] * 10, "x": np.arange(10.0)})
    frame.attrs["feature_columns"] = ["x"]
    out = perturb_frame(frame, np.random.default_rng(0), drop=0.3, noise=0.1)
    assert all(1 <= len(t.split()) <= 10 for t in out["text"])
    assert (out["text"] != frame["text"]).any()
    assert 0 < np.abs(out["x"] - frame["x"]).max() < 1.5


def test_perturbations_are_fixed_per_item_and_copy():
    """Without an rng, an item's k-th perturbed copy is the same in every round and whatever other
    rows the frame holds, so a drop in flips measures the model, not fresh perturbation noise."""
    texts = [" ".join(f"w{i}_{j}" for j in range(30)) for i in range(6)]
    frame = pd.DataFrame({"id": [f"i{i}" for i in range(6)], "text": texts, "x": np.arange(6.0)})
    frame.attrs["feature_columns"] = ["x"]
    a = perturb_frame(frame, copy=0)
    b = perturb_frame(frame, copy=0)
    assert a["text"].tolist() == b["text"].tolist() and np.allclose(a["x"], b["x"])
    sub = perturb_frame(frame.iloc[[4, 1]], copy=0)
    assert sub["text"].tolist() == [a["text"].iat[4], a["text"].iat[1]]
    other = perturb_frame(frame, copy=1)
    assert (other["text"] != a["text"]).any()  # the copies differ from each other
    assert (a["text"] != frame["text"]).all()


def test_perturbation_flip_rescores_a_bounded_monitor_subset():
    frame = pd.DataFrame({"id": [f"i{i}" for i in range(10)], "text": ["one two three four"] * 10})
    probs = np.tile(np.array([[0.8, 0.2]], np.float32), (10, 1))
    sizes = []

    def rescore(f):
        sizes.append(len(f))
        return probs[: len(f), ::-1]  # every rescored item flips

    s = run(frame, probs, np.zeros((10, 0)), rescore=rescore, perturbations=2,
            max_rescored=4)[:, COL["perturbation_flip"]]
    assert sizes == [4, 4] and (s > 0).sum() == 4
    rows = monitor_rows(frame, 4)
    assert np.flatnonzero(s > 0).tolist() == rows.tolist()
    assert monitor_rows(frame, 4).tolist() == rows.tolist()  # the same subset every round
    assert monitor_rows(frame, 10).tolist() == list(range(10))


def test_featurizer_remembers_the_frames_it_transformed():
    frame = pd.DataFrame({"text": [f"word{i} other{i % 3} text" for i in range(20)]})
    feat = Featurizer(n_features=256).fit(frame)
    copy = perturb_frame(frame, copy=0)
    first = feat.transform(copy)
    again = feat.transform(perturb_frame(frame, copy=0))
    assert again is first  # looked up, not tokenised again
    fresh = Featurizer(n_features=256).fit(frame).transform(copy)
    assert (first != fresh).nnz == 0
    assert feat.transform(frame) is not first


def test_sources_the_labels_show_to_be_no_better_than_chance_are_discredited():
    votes = np.full((60, 3), -1, dtype=np.int8)
    human = np.full(60, -1)
    human[:40] = np.arange(40) % 2
    votes[:40, 0] = 1 - human[:40]          # LF 0: wrong on every labelled item it voted on
    votes[:40, 1] = human[:40]              # LF 1: always right
    votes[:2, 2] = 1 - human[:2]            # LF 2: wrong twice, too little to say
    assert credible_sources(votes, human, 2).tolist() == [False, True, True]
    assert credible_sources(votes, np.full(60, -1), 2).all()  # no labels: all credible
    nine = np.where(votes[:, :1] >= 0, (human[:, None] + 1) % 9, -1)  # 9 classes: chance is 1/9
    nine[:40:3, 0] = human[:40:3]  # right a third of the time: better than chance
    assert credible_sources(nine, np.where(human >= 0, human, -1), 9).tolist() == [True]


def test_model_lf_disagree_ignores_a_discredited_lone_lf():
    """A lone LF the human labels show to be wrong where they looked no longer flags the items
    where the model overrides it; with no credible source left the assertion earns no reward."""
    n = 40
    frame = pd.DataFrame({"text": [f"item {i}" for i in range(n)]})
    probs = np.tile(np.array([[0.55, 0.45]], np.float32), (n, 1))
    votes = np.ones((n, 1), dtype=np.int8)              # one LF votes 1, the model predicts 0
    lm = np.tile(np.array([[0.0, 1.0]], np.float32), (n, 1))  # the label model is that vote
    _, sev, dep = builtin_assertions(frame, probs, votes, lm, np.full(n, -1), None,
                                         np.random.default_rng(0))
    assert (sev[:, COL["model_lf_disagree"]] > 0).all() and (sev[:, COL["lm_em_disagree"]] > 0).all()
    assert all(dep)
    human = np.full(n, -1)
    human[:20] = 0                                      # the labels side with the model
    _, sev, dep = builtin_assertions(frame, probs, votes, lm, human, None, np.random.default_rng(0))
    assert (sev[:, COL["model_lf_disagree"]] == 0).all() and (sev[:, COL["lm_em_disagree"]] == 0).all()
    assert not dep[COL["model_lf_disagree"]] and not dep[COL["lm_em_disagree"]]
    assert dep[COL["perturbation_flip"]]
    human[:20] = 1                                      # the labels side with the LF: it keeps firing
    _, sev, dep = builtin_assertions(frame, probs, votes, lm, human, None, np.random.default_rng(0))
    assert (sev[20:, COL["model_lf_disagree"]] > 0).all() and all(dep)
