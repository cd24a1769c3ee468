"""Registered assertions through real rounds on real SQLite and Redis stores: firing counts per
round, and consistency weak labels joining the next round's label model as one more LF."""

from __future__ import annotations

import numpy as np
import pytest

from api.service.assertions import assertion_status, register_assertions
from api.service.ingest import ingest_records
from api.service.lfs import register_lfs
from api.service.projects import create_project
from api.service.rounds import run_round
from labeling.errors import InvalidInput, LFLoadError
from labeling.ingest import Record
from tests.lf_sources import GREAT_AWFUL_LFS
from workers.executor import InProcessExecutor

LFS = GREAT_AWFUL_LFS

CAPS = '''
from labeling.user_assertions import assertion

@assertion()
def quiet_positive(batch):
    return ((batch.frame["text"].str.startswith("quiet")) & (batch.preds == 1)).astype(float)
'''

WORDS = ["great", "awful", "fine", "quiet"]


def records(start: int, n: int) -> list[Record]:
    # every track holds one item of each word, so the model's predictions disagree inside it
    return [Record(f"i{k}", f"{WORDS[k % 4]} item {k}", meta={"track": f"t{k // 4}", "ts": k})
            for k in range(start, start + n)]


@pytest.fixture
def store(either_store):
    return either_store


@pytest.fixture
def project(store):
    create_project(store, "p", ["neg", "pos"], settings={"eval_fraction": 0.0}, now=0.0)
    ingest_records(store, "p", records(0, 40), rng=np.random.default_rng(0), now=0.0)
    register_lfs(store, "p", source=LFS, now=0.0)
    return "p"


def lf_names(rnd) -> list[str]:
    return [lf["name"] for lf in rnd.label_model["lfs"]]


def test_counts_per_round_and_weak_labels_join_the_next_label_model(store, project):
    register_assertions(store, project, source=CAPS, now=1.0)
    [track] = register_assertions(store, project, now=1.0,
                                  consistency={"name": "track", "id_column": "track"})
    ex = InProcessExecutor()
    r1, out1 = run_round(store, project, ex, now=2.0)
    runs = r1.metrics["assertion_runs"]
    assert set(runs) == {"quiet_positive", "track"} and runs["track"]["version"] == track.version
    assert runs["track"]["items"] == r1.metrics["assertions"]["track"] > 0
    assert runs["track"]["weak_votes"] == int((out1.assertion_votes >= 0).sum()) > 0
    assert runs["quiet_positive"]["weak_votes"] is None and runs["quiet_positive"]["fault"] is None
    assert lf_names(r1) == ["says_great", "says_awful"]  # nothing from assertions yet
    assert r1.metrics["assertion_weak_labels"] == [{"name": "track", "version": track.version}]
    np.testing.assert_array_equal(store.get_array(project, "assertion_votes"), out1.assertion_votes)

    ingest_records(store, project, records(40, 8), rng=np.random.default_rng(1), now=3.0)
    r2, _ = run_round(store, project, ex, now=4.0)
    assert lf_names(r2) == ["says_great", "says_awful", "assertion:track"]
    assert r2.label_model["n_lfs"] == 3 and r2.metrics["n_items"] == 48
    assert r2.label_model["cache_key"] != r1.label_model["cache_key"]
    status = {a["name"]: a for a in assertion_status(store, project)}
    assert status["track"]["latest"]["round"] == 2 and status["track"]["granularity"] == "cluster"
    assert status["track"]["spec"]["id_column"] == "track"
    assert status["quiet_positive"]["latest"]["items"] == r2.metrics["assertions"]["quiet_positive"]

    store.deactivate_assertion(project, "track")  # its votes leave the label model with it
    r3, out3 = run_round(store, project, ex, now=5.0)
    assert lf_names(r3) == ["says_great", "says_awful"] and "track" not in r3.metrics["assertion_runs"]
    assert out3.assertion_votes is None and "assertion_weak_labels" not in r3.metrics
    assert not {a["name"]: a for a in assertion_status(store, project)}["track"]["active"]


def test_a_changed_spec_drops_the_votes_of_its_old_version(store, project):
    register_assertions(store, project, now=1.0, consistency={"name": "track", "id_column": "track"})
    ex = InProcessExecutor()
    run_round(store, project, ex, now=2.0)
    register_assertions(store, project, now=3.0,
                        consistency={"name": "track", "id_column": "track", "attributes": ["label"],
                                     "time_column": "ts", "window": 1})
    r2, _ = run_round(store, project, ex, now=4.0)  # the old version's votes are not reused
    assert "assertion:track" not in lf_names(r2)
    new = r2.metrics["assertion_weak_labels"][0]["version"]
    r3, _ = run_round(store, project, ex, now=5.0)  # the new version's votes are
    assert "assertion:track" in lf_names(r3) and r3.label_model["lfs"][-1]["version"] == new
    [status] = assertion_status(store, project)
    assert status["version"] == new and status["spec"]["window"] == 1.0


def test_bad_registrations_store_nothing(store, project):
    with pytest.raises(LFLoadError, match="defines no assertion"):
        register_assertions(store, project, source="x = 1\n", now=1.0)
    with pytest.raises(InvalidInput, match="no item has a column 'track_id'"):
        register_assertions(store, project, now=1.0, consistency={"name": "t", "id_column": "track_id"})
    with pytest.raises(InvalidInput, match="taken by a built-in"):
        register_assertions(store, project, now=1.0,
                            consistency={"name": "perturbation_flip", "id_column": "track"})
    with pytest.raises(InvalidInput, match="exactly one of"):
        register_assertions(store, project, source=CAPS, now=1.0,
                            consistency={"name": "t", "id_column": "track"})
    assert store.list_assertions(project) == []
    r, _ = run_round(store, project, InProcessExecutor(), now=2.0)
    assert "assertions" not in r.metrics  # entropy and nothing registered: nothing runs
