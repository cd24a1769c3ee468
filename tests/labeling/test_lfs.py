"""LFs: Snorkel row LFs unchanged, batch LFs, faults, versions, loading, sharding."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labeling.apply import apply_lfs
from labeling.errors import LFLoadError
from labeling.ingest import read_wrench
from labeling.lf import VoteColumnLF, batch_lf, lf_version, load_lfs_from_source
from tests.server import DATASETS, ROOT

TUTORIAL = (ROOT / "demo" / "spam_lfs.py").read_text()
YOUTUBE = DATASETS / "wrench_youtube"


@pytest.fixture(scope="module")
def youtube():
    if not YOUTUBE.is_dir():
        pytest.fail(f"dataset missing: {YOUTUBE}")
    from labeling.frame import items_frame

    recs = read_wrench(YOUTUBE).splits["train"]
    return items_frame(recs), recs


def test_tutorial_lfs_run_unchanged_and_match_wrench_votes(youtube):
    frame, recs = youtube
    lfs = load_lfs_from_source(TUTORIAL)
    assert [lf.name for lf in lfs] == ["keyword_my", "keyword_subscribe", "keyword_http",
                                       "keyword_please", "keyword_song", "regex_check_out",
                                       "short_comment"]
    result = apply_lfs(lfs, frame, 2)
    assert result.votes.dtype == np.int8 and result.faults.tolist() == [0] * 7
    wrench = np.array([r.votes[:7] for r in recs])
    agree = (result.votes == wrench).mean(axis=0)
    # the live tutorial LFs reproduce WRENCH's stored votes (small tokenisation differences aside)
    assert (agree > 0.97).all(), agree


def test_faulty_lf_abstains_and_is_counted():
    src = (
        "from snorkel.labeling import labeling_function\n"
        "@labeling_function()\n"
        "def picky(x):\n"
        "    if 'boom' in x.text:\n"
        "        raise RuntimeError('exploded')\n"
        "    return 1\n"
        "@labeling_function()\n"
        "def bad_value(x):\n"
        "    return 7\n"
    )
    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": ["ok", "boom", "boom again"]})
    res = apply_lfs(load_lfs_from_source(src), frame, 2)
    assert res.votes[:, 0].tolist() == [1, -1, -1]
    assert res.faults.tolist() == [2, 3]
    assert res.first_errors[0] == "RuntimeError: exploded (item b)"
    assert "returned 7" in res.first_errors[1]


def test_batch_lf_and_its_fallback_to_rows():
    @batch_lf()
    def has_cash(frame):
        return np.where(frame.text.str.contains("cash"), 1, -1)

    @batch_lf()
    def fragile(frame):
        if (frame.text == "bad").any():
            raise ValueError("bad row")
        return np.zeros(len(frame), dtype=int)

    frame = pd.DataFrame({"id": list("abc"), "text": ["cash now", "bad", "hello"]})
    res = apply_lfs([has_cash, fragile], frame, 2)
    assert res.votes.tolist() == [[1, 0], [-1, -1], [-1, 0]]
    assert res.faults.tolist() == [0, 1] and "bad row (item b)" in res.first_errors[1]


def test_shards_concatenate_to_the_whole(youtube):
    frame, _ = youtube
    lfs = load_lfs_from_source(TUTORIAL) + [VoteColumnLF("file_7", 7)]
    whole = apply_lfs(lfs, frame, 2)
    parts = [apply_lfs(lfs, frame.iloc[a:b], 2) for a, b in ((0, 500), (500, 501), (501, len(frame)))]
    assert np.array_equal(np.concatenate([p.votes for p in parts]), whole.votes)


def test_versions_are_stable_across_processes_and_change_with_the_body(tmp_path):
    lfs = load_lfs_from_source(TUTORIAL)
    versions = [lf_version(lf) for lf in lfs]
    assert len(set(versions)) == len(versions)
    code = ("import sys; sys.path.insert(0, '.'); from pathlib import Path;"
            "from labeling.lf import lf_version, load_lfs_from_source;"
            "print(','.join(lf_version(lf) for lf in load_lfs_from_source(Path('demo/spam_lfs.py').read_text())))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(",") == versions
    changed = TUTORIAL.replace('flags=re.I) else ABSTAIN', 'flags=re.I) else HAM')
    new = {lf.name: lf_version(lf) for lf in load_lfs_from_source(changed)}
    old = dict(zip([lf.name for lf in lfs], versions, strict=True))
    assert [n for n in old if old[n] != new[n]] == ["regex_check_out"]


@pytest.mark.parametrize("source, message", [
    ("def broken(:\n", "syntax error at line 1"),
    ("x = 1\n", "defines no labeling function"),
    ("import nonexistent_module_xyz\n", "ModuleNotFoundError"),
    ("from snorkel.labeling import labeling_function\n"
     "@labeling_function(name='a')\ndef f(x): return -1\n"
     "@labeling_function(name='a')\ndef g(x): return -1\n", "two labeling functions are named 'a'"),
])
def test_load_errors_are_clear(source, message):
    with pytest.raises(LFLoadError, match=message):
        load_lfs_from_source(source)


def test_core_imports_no_framework():
    code = ("import sys; sys.path.insert(0, '.');"
            "import labeling.ingest, labeling.lf, labeling.apply, labeling.label_model, labeling.features,"
            " labeling.end_model, labeling.analysis, labeling.export, labeling.consensus, strategies;"
            "bad = [m for m in ('ray', 'fastapi', 'redis', 'sqlite3', 'starlette') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(ROOT), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
