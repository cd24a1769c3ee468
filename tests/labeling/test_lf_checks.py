"""Registration's findings about LFs, from real votes of real LFs on real comments."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.apply import apply_lfs
from labeling.errors import InvalidInput
from labeling.frame import items_frame
from labeling.ingest import read_wrench
from labeling.lf import load_lfs_from_source
from labeling.lf_checks import check_lfs
from tests.server import DATASETS

SOURCE = """
from snorkel.labeling import labeling_function

@labeling_function()
def fine(x):
    return 1 if "http" in x.text else -1

@labeling_function()
def typo(x):
    return 1 if "http" in x.txt else -1

@labeling_function()
def three_classes(x):
    return 2 if "love" in x.text.lower() else 0

@labeling_function()
def sometimes(x):
    return 1 if x.text.split()[5] else -1

@labeling_function()
def silent(x):
    return -1
"""


@pytest.fixture(scope="module")
def sample():
    recs = read_wrench(DATASETS / "wrench_youtube").splits["train"][:300]
    lfs = load_lfs_from_source(SOURCE)
    return [lf.name for lf in lfs], apply_lfs(lfs, items_frame(recs), 2)


def test_each_kind_of_broken_lf_is_named(sample):
    names, res = sample
    found = check_lfs(names, res.votes, res.faults, res.first_errors, 2)
    assert "fine" not in found
    assert [c["level"] for c in found["typo"]] == ["error"]
    assert "faults on every one of 300 sampled items" in found["typo"][0]["message"]
    assert "AttributeError" in found["typo"][0]["message"]
    (bad,) = found["three_classes"]
    assert bad["level"] == "warning" and "votes outside -1..1" in bad["message"]
    assert "returned 2 (int)" in bad["message"]
    (some,) = found["sometimes"]
    n_faults = int(res.faults[names.index("sometimes")])
    assert some["level"] == "warning" and 0 < n_faults < 300
    assert f"faults on {n_faults} of 300" in some["message"] and "IndexError" in some["message"]
    assert found["silent"] == [{"level": "warning",
                                "message": "abstains on every one of 300 sampled items"}]


def test_an_lf_voting_out_of_range_everywhere_is_an_error(sample):
    names, res = sample
    votes = np.full((4, 1), -1)
    found = check_lfs(["seven"], votes, [4], ["InvalidVote: returned 7 (int) (item a)"], 2)
    assert found["seven"][0]["level"] == "error"
    assert check_lfs(names, res.votes[:0], res.faults * 0, [None] * len(names), 2) == {}
    with pytest.raises(InvalidInput, match="need votes"):
        check_lfs(names, res.votes[:, :2], res.faults, res.first_errors, 2)
