"""The Ray executor against the in-process one, on a real local Ray (2 CPUs)."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.frame import items_frame
from labeling.ingest import read_wrench
from tests.server import DATASETS, ROOT
from workers.executor import InProcessExecutor

TUTORIAL = (ROOT / "demo" / "spam_lfs.py").read_text()
RAISING = '''
from snorkel.labeling import labeling_function

@labeling_function()
def fragile(x):
    if "love" in x.text.lower():
        raise KeyError("no love here")
    return 1 if "!" in x.text else -1
'''


@pytest.fixture(scope="module")
def ray_executor():
    from workers.ray_executor import RayExecutor

    executor = RayExecutor(num_cpus=2, shard_rows=200)
    yield executor
    executor.shutdown()  # the local instance it started, agents included


@pytest.fixture(scope="module")
def frame():
    return items_frame(read_wrench(DATASETS / "wrench_youtube").splits["train"])


def specs(source: str) -> list[tuple[str, str, str]]:
    from labeling.lf import load_lfs_from_source

    return [(lf.name, "source", source) for lf in load_lfs_from_source(source)]


def test_ray_votes_equal_in_process_votes_with_faults(ray_executor, frame):
    lf_specs = specs(TUTORIAL) + specs(RAISING) + [("file_8", "votes", "8")]
    local = InProcessExecutor().apply_lfs(lf_specs, frame, 2)
    seen = []
    remote = ray_executor.apply_lfs(lf_specs, frame, 2, progress=lambda d, t: seen.append((d, t)))
    assert np.array_equal(local.votes, remote.votes)
    assert local.faults.tolist() == remote.faults.tolist() and local.faults[-2] > 0
    assert local.first_errors == remote.first_errors
    assert seen[-1] == (len(frame), len(frame)) and len(seen) > 1  # progress per shard


def test_a_killed_worker_means_a_retried_task_and_the_same_votes(ray_executor, frame, tmp_path):
    marker = tmp_path / "killed-once"
    killer = f'''
import os
from pathlib import Path
from snorkel.labeling import labeling_function

@labeling_function()
def kills_its_worker_once(x):
    marker = Path({str(marker)!r})
    if not marker.exists():
        marker.touch()
        os._exit(1)  # the worker process dies mid-task
    return 1 if "http" in x.text else -1
'''
    lf_specs = specs(killer)
    remote = ray_executor.apply_lfs(lf_specs, frame, 2)
    assert marker.exists()  # a worker really died
    expected = np.where(frame["text"].str.contains("http"), 1, -1)
    assert remote.votes[:, 0].tolist() == expected.tolist()


def test_call_runs_a_function_remotely(ray_executor):
    def square_sum(xs):
        return int(np.square(xs).sum())

    assert ray_executor.call(square_sum, np.arange(4)) == 14
