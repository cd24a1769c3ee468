"""LFs and applying them: Snorkel LFs unchanged, batch LFs, faults, shards, versions, loading."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from snorkel.labeling import labeling_function

from labeling.apply import apply_lfs
from labeling.errors import InvalidInput, LFLoadError
from labeling.frame import items_frame
from labeling.ingest import read_wrench
from labeling.lf import (
    ABSTAIN,
    BatchLF,
    VoteColumnLF,
    batch_lf,
    lf_version,
    load_lfs_from_module,
    load_lfs_from_source,
)
from tests.server import DATASETS, ROOT

SPAM_LFS = Path(__file__).resolve().parents[2] / "demo" / "spam_lfs.py"  # the tutorial LFs, as shipped
TUTORIAL = SPAM_LFS.read_text()
VOTE_RULE = "a vote is an int in -1..1"
NAMES = ["keyword_my", "keyword_subscribe", "keyword_http", "keyword_please", "keyword_song",
         "regex_check_out", "short_comment"]

FAULTY = """
from snorkel.labeling import labeling_function
from labeling.lf import batch_lf
import numpy as np

@labeling_function()
def picky(x):
    if "boom" in x.text:
        raise RuntimeError("exploded")
    return 1

@labeling_function()
def bad_value(x):
    return {"ok": 0, "boom": 7, "boom again": "1"}.get(x.text, 1.5)

@batch_lf()
def fragile(frame):
    if frame.text.str.contains("again").any():
        raise ValueError("cannot batch")
    return np.where(frame.text == "ok", 0, 1)
"""


@pytest.fixture(scope="module")
def youtube():
    recs = read_wrench(DATASETS / "wrench_youtube").splits["train"]
    return items_frame(recs), recs


def test_tutorial_lfs_run_unchanged_and_reproduce_wrench_votes(youtube):
    frame, recs = youtube
    lfs = load_lfs_from_module("demo.spam_lfs")
    assert [lf.name for lf in lfs] == NAMES
    result = apply_lfs(lfs, frame, 2)
    assert result.votes.shape == (len(frame), 7) and result.votes.dtype == np.int8
    assert result.faults.tolist() == [0] * 7 and result.first_errors == [None] * 7
    stored = np.array([r.votes[:7] for r in recs])
    agree = (result.votes == stored).mean(axis=0)
    assert (agree > 0.97).all(), agree  # small tokenisation differences in WRENCH's copy
    from_source = apply_lfs(load_lfs_from_source(TUTORIAL), frame, 2)
    assert np.array_equal(from_source.votes, result.votes)


def test_row_lfs_see_every_column_and_none_for_missing_text():
    @labeling_function()
    def reads_all(x):
        return 1 if (x.id, x.likes, x.lang, x.text) == ("b", 3.0, "en", None) else 0

    frame = pd.DataFrame({"id": ["a", "b"], "text": ["hi", None], "likes": [1.0, 3.0],
                          "lang": ["fr", "en"]})
    assert apply_lfs([reads_all], frame, 2).votes[:, 0].tolist() == [0, 1]


SUBSCRIPT = """
from snorkel.labeling import labeling_function
from snorkel.preprocess import preprocessor

@preprocessor()
def lower(x):
    x["lower"] = x["text"].lower()
    return x

@labeling_function(pre=[lower])
def check_out(x):
    return 1 if "check" in x["lower"] else -1

@labeling_function()
def short(x):
    return 0 if len(x["text"].split()) < 5 else -1

@labeling_function()
def mixed(x):
    return 1 if x.get("text") and "http" in x.text and "text" in x else -1
"""


def test_lfs_written_for_snorkel_with_subscripts_run_unchanged(youtube):
    """Snorkel passes a pandas Series, so LFs read ``x["text"]``; here they run unchanged and
    vote exactly as Snorkel's own applier does on the same rows."""
    from snorkel.labeling import PandasLFApplier

    frame, _ = youtube
    lfs = load_lfs_from_source(SUBSCRIPT)
    ours = apply_lfs(lfs, frame, 2)
    assert ours.faults.tolist() == [0, 0, 0], ours.first_errors
    snorkel = PandasLFApplier(load_lfs_from_source(SUBSCRIPT)).apply(frame, progress_bar=False)
    assert np.array_equal(ours.votes, snorkel)
    assert (ours.votes >= 0).sum(axis=0).min() > 50  # every LF fires on real comments


def test_faults_abstain_and_keep_the_first_error():
    frame = pd.DataFrame({"id": ["a", "b", "c", "d"], "text": ["ok", "boom", "boom again", "zz"]})
    res = apply_lfs(load_lfs_from_source(FAULTY), frame, 2)
    assert res.votes.tolist() == [[1, 0, 0], [-1, -1, 1], [-1, -1, -1], [1, -1, 1]]
    assert res.faults.tolist() == [2, 3, 1]
    assert res.first_errors[0] == "RuntimeError: exploded (item b)"
    assert res.first_errors[1] == f"InvalidVote: returned 7 (int); {VOTE_RULE} (item b)"
    assert res.first_errors[2] == "ValueError: cannot batch (item c)"
    names = pd.DataFrame({"id": ["x", "y"], "text": ["boom again", "zz"]})
    msgs = apply_lfs(load_lfs_from_source(FAULTY)[1:2], names, 2).first_errors
    assert msgs == [f"InvalidVote: returned '1' (str); {VOTE_RULE} (item x)"]


def test_batch_lf_outputs_are_checked_like_row_votes():
    @batch_lf(name="mixed")
    def mixed(frame):
        return [1, 1.0, 2, np.nan, -1.0, 0.5]

    frame = pd.DataFrame({"id": list("uvwxyz"), "text": ["t"] * 6})
    floaty = BatchLF("floaty", lambda f: np.ones(len(f)))
    flags = BatchLF("flags", lambda f: f.text == "t")  # booleans are not classes
    res = apply_lfs([mixed, floaty, flags], frame, 2)
    assert res.votes.tolist() == [[1, 1, -1], [1, 1, -1], [-1, 1, -1], [-1, 1, -1], [-1, 1, -1],
                                  [-1, 1, -1]]
    assert res.faults.tolist() == [3, 0, 6]
    assert res.first_errors[2] == f"InvalidVote: returned True (bool); {VOTE_RULE} (item u)"
    assert res.first_errors[0] == f"InvalidVote: returned 2.0 (float); {VOTE_RULE} (item w)"


def test_vote_column_lf():
    frame = pd.DataFrame({"id": list("abcd"), "weak_labels": [(1, 0), None, (0,), [1, 1]]})
    res = apply_lfs([VoteColumnLF("f0", 0), VoteColumnLF("f1", 1)], frame, 2)
    assert res.votes.tolist() == [[1, 0], [-1, -1], [0, -1], [1, 1]]
    assert apply_lfs([VoteColumnLF("f0", 0)], frame[["id"]], 2).votes.tolist() == [[-1]] * 4


def test_shards_and_row_order_do_not_change_the_result(youtube):
    frame, _ = youtube
    frame = frame.assign(text=[t if i % 97 else t + " boom" for i, t in enumerate(frame["text"])])
    lfs = [*load_lfs_from_source(TUTORIAL), *load_lfs_from_source(FAULTY), VoteColumnLF("f7", 7)]
    whole = apply_lfs(lfs, frame, 2)
    assert whole.faults[7] > 1  # picky raises on the "boom" rows
    bounds = [0, 400, 401, 1000, len(frame)]
    parts = [apply_lfs(lfs, frame.iloc[a:b], 2) for a, b in itertools.pairwise(bounds)]
    assert np.array_equal(np.concatenate([p.votes for p in parts]), whole.votes)
    assert np.array_equal(sum(p.faults for p in parts), whole.faults)
    first = [next((p.first_errors[j] for p in parts if p.first_errors[j]), None)
             for j in range(len(lfs))]
    assert first == whole.first_errors
    order = np.random.default_rng(0).permutation(len(frame))
    shuffled = apply_lfs(lfs, frame.iloc[order], 2)
    assert np.array_equal(shuffled.votes, whole.votes[order])


def test_apply_validates_its_arguments():
    frame = pd.DataFrame({"id": ["a"], "text": ["x"]})
    with pytest.raises(InvalidInput, match="n_classes"):
        apply_lfs([], frame, 1)
    with pytest.raises(InvalidInput, match="Snorkel LabelingFunctions or BatchLFs"):
        apply_lfs([lambda x: 1], frame, 2)
    empty = apply_lfs(load_lfs_from_source(TUTORIAL), frame.iloc[:0], 2)
    assert empty.votes.shape == (0, 7) and empty.faults.tolist() == [0] * 7


SET_LF = """
keyword_spammy = LabelingFunction(name="keyword_spammy", f=keyword_lookup,
                                  resources=dict(keywords={"free", "win", "prize", "gift", "cash"}))
"""


def _versions_in_subprocess(path: Path, hash_seed: str) -> list[str]:
    code = ("import sys; from pathlib import Path; from labeling.lf import lf_version, "
            "load_lfs_from_source; src = Path(sys.argv[1]).read_text();"
            "print(','.join(lf_version(lf) for lf in load_lfs_from_source(src, filename='other')))")
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True,
                         text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(",")


def test_versions_are_stable_across_processes_and_change_with_the_code(tmp_path):
    lfs = load_lfs_from_source(TUTORIAL)
    versions = {lf.name: lf_version(lf) for lf in lfs}
    assert len(set(versions.values())) == 7 and all(len(v) == 12 for v in versions.values())
    module_lfs = load_lfs_from_module("demo.spam_lfs")
    assert versions == {lf.name: lf_version(lf) for lf in module_lfs}
    # in other interpreters (string hashing differs), with a set among the resources
    src = TUTORIAL + SET_LF
    (tmp_path / "lfs.py").write_text(src)
    runs = [_versions_in_subprocess(tmp_path / "lfs.py", seed) for seed in ("1", "2")]
    here = [lf_version(lf) for lf in load_lfs_from_source(src)]
    assert runs[0] == runs[1] == here
    assert dict(zip(NAMES, here, strict=False)) == versions
    edits = {
        "regex_check_out": ('flags=re.I) else ABSTAIN', 'flags=re.I) else HAM'),
        "short_comment": ("len(x.text.split())", "len(x.text.split()) + 1"),  # the preprocessor
        "keyword_song": ('["song"], label=HAM', '["song"], label=SPAM'),  # a resource
    }
    for name, (old, new) in edits.items():
        edited = load_lfs_from_source(TUTORIAL.replace(old, new))
        changed = {lf.name: lf_version(lf) for lf in edited}
        assert [n for n in NAMES if changed[n] != versions[n]] == [name]
    assert lf_version(VoteColumnLF("v", 1)) == lf_version(VoteColumnLF("v", 1)) != lf_version(
        VoteColumnLF("v", 2))


def test_loading_collects_top_level_lfs_in_order():
    src = FAULTY + "alias = picky\nABSTAIN_TOO = -1\n"
    assert [lf.name for lf in load_lfs_from_source(src)] == ["picky", "bad_value", "fragile"]
    assert load_lfs_from_source(src)[0] is load_lfs_from_source(src)[0]  # one module per source
    assert ABSTAIN == -1


@pytest.mark.parametrize("source, message", [
    ("def broken(:\n", r"<lfs>: syntax error at line 1"),
    ("x = 1\n", "defines no labeling function"),
    ("import os\n\nos.path.join(1, 2)\n", r"TypeError: .* \(line 3\)"),
    ("import nonexistent_module_xyz\n", r"ModuleNotFoundError: .* \(line 1\)"),
    (("from snorkel.labeling import labeling_function\n"
      "@labeling_function(name='a')\ndef f(x): return -1\n"
      "@labeling_function(name='a')\ndef g(x): return -1\n"),
     "two labeling functions are named 'a'"),
])
def test_load_errors_are_clear(source, message):
    with pytest.raises(LFLoadError, match=message):
        load_lfs_from_source(source)


def test_module_load_errors():
    with pytest.raises(LFLoadError, match="cannot import module"):
        load_lfs_from_module("tests.labeling.no_such_module")
    with pytest.raises(LFLoadError, match="defines no labeling function"):
        load_lfs_from_module("labeling.errors")
