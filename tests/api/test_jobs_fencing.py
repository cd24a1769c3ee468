"""A round job that lost its lock between its last progress report and its outputs: another
replica took the lock over and finished a newer job of the kind, so the stale job's outputs (the
arrays, the queue, the round) must not land. Two JobRunners on one real store (SQLite and Redis),
each with its own clock, so the takeover needs no sleeping and no stopped process. And the Redis
store's race: the lock changing hands between the token check and the writes."""

from __future__ import annotations

import numpy as np
import pytest

from api.service.ingest import ingest_records
from api.service.jobs import JobRunner
from api.service.lfs import register_lfs
from api.service.projects import create_project
from api.service.services import Services
from api.settings import Settings
from api.storage.records import Round
from api.storage.redis import RedisStore
from labeling.errors import StaleToken
from labeling.ingest import Record
from tests.lf_sources import GREAT_AWFUL_LFS
from tests.redis_server import REDIS_URL
from workers.executor import InProcessExecutor

T0, TTL = 1_000.0, 60.0
WORDS = ["great", "awful", "fine"]
NEWER_PROBS = np.full((30, 2), 0.25, dtype=np.float32)


@pytest.fixture
def store(either_store):
    create_project(either_store, "p", ["neg", "pos"], settings={"eval_fraction": 0.0}, now=0.0)
    ingest_records(either_store, "p", [Record(f"i{k}", f"{WORDS[k % 3]} item {k}")
                                       for k in range(30)], rng=np.random.default_rng(0), now=0.0)
    register_lfs(either_store, "p", source=GREAT_AWFUL_LFS, now=0.0)
    return either_store


class TakeOverBeforeOutputs:
    """The store as the stale job sees it: just before its first round output is written, the
    ``take_over`` callback runs (once), then the write goes to the real store."""

    def __init__(self, store, take_over,
                 outputs=("put_array", "set_queue", "add_round", "commit_round")) -> None:
        self._store, self._take_over, self.fired = store, take_over, False
        self.outputs = outputs

    def __getattr__(self, name: str):
        attr = getattr(self._store, name)
        if name not in self.outputs:
            return attr

        def call(*args, **kwargs):
            if not self.fired:
                self.fired = True
                self._take_over()
            return attr(*args, **kwargs)

        return call


def newer_round(ctx) -> dict:
    """The newer job's outputs, told apart from anything a real round computes (numbered 2, so
    no unique round number refuses the stale job's round 1 in its place)."""
    store = ctx.store
    store.commit_round("p", arrays={"probs": NEWER_PROBS},
                       queue=(["i3", "i1"], [2.0, 1.0], [{"strategy": "newer"}] * 2),
                       rnd=Round("p", 2, "newer", T0 + TTL + 1, 0, {}, {}, "newer"))
    return {"round": 2}


def test_round_job_that_lost_its_lock_stores_no_outputs(store, tmp_path):
    other = JobRunner(store, clock=lambda: T0 + TTL + 1, lock_ttl_s=TTL)  # past the first's hold
    newer: dict = {}

    def take_over() -> None:
        job = other.submit("p", "round", newer_round)  # the stale job's lock has expired
        newer["job"] = other.wait(job.id, timeout=60)

    stale_view = TakeOverBeforeOutputs(store, take_over)
    services = Services(stale_view, InProcessExecutor(),
                        Settings(data_dir=tmp_path, job_lock_ttl_s=TTL), clock=lambda: T0)
    try:
        stale = services.start_round("p")
        stale = services.jobs.wait(stale.id, timeout=120)
    finally:
        services.jobs.shutdown()
        other.shutdown()
    assert stale_view.fired and newer["job"].status == "succeeded", newer
    assert stale.status == "failed" and "LockExpired" in stale.error, stale  # failed by the newer
    assert [(r.number, r.model_version) for r in store.list_rounds("p")] == [(2, "newer")]
    assert np.array_equal(store.get_array("p", "probs"), NEWER_PROBS)
    assert store.get_array("p", "lm_probs") is None
    lease = store.lease("p", "ann", 3, n_eval=0, now=T0, ttl=60, lease_id="L")
    assert [(li.item.id, li.reasons) for li in lease.items[:2]] == [
        ("i3", {"strategy": "newer"}), ("i1", {"strategy": "newer"})]


def test_apply_lfs_job_that_lost_its_lock_caches_no_votes(store, tmp_path):
    other = JobRunner(store, clock=lambda: T0 + TTL + 1, lock_ttl_s=TTL)
    newer: dict = {}

    def take_over() -> None:
        job = other.submit("p", "apply_lfs", lambda ctx: {"newer": True})
        newer["job"] = other.wait(job.id, timeout=60)

    stale_view = TakeOverBeforeOutputs(store, take_over, outputs=("put_votes",))
    services = Services(stale_view, InProcessExecutor(),
                        Settings(data_dir=tmp_path, job_lock_ttl_s=TTL), clock=lambda: T0)
    try:
        stale = services.jobs.wait(services.start_apply_lfs("p").id, timeout=120)
    finally:
        services.jobs.shutdown()
        other.shutdown()
    assert stale_view.fired and newer["job"].status == "succeeded", newer
    assert stale.status == "failed", stale
    records = store.list_lfs("p")
    assert records and all(store.get_votes("p", r.version)[0].size == 0 for r in records)


def test_redis_commit_is_refused_when_the_lock_changes_hands_mid_commit(redis_store, monkeypatch):
    """The token is read before the writes are queued; a token drawn in between (another replica
    took the lock) must abort the transaction, not let the stale writes through."""
    store = redis_store
    create_project(store, "p", ["neg", "pos"], now=0.0)
    name = "job:p:round"
    token = store.acquire_lock(name, "a", TTL, now=T0)
    other = RedisStore(REDIS_URL, namespace=store.k.ns)
    array_key, taken = store.k.array, []

    def key_after_takeover(pid: str, array: str) -> str:  # runs after the token was read
        if not taken:
            taken.append(other.acquire_lock(name, "b", TTL, now=T0 + TTL + 1))
        return array_key(pid, array)

    monkeypatch.setattr(store.k, "array", key_after_takeover)
    with pytest.raises(StaleToken):
        store.commit_round("p", arrays={"probs": NEWER_PROBS}, queue=(["i0"], [1.0], [{}]),
                           rnd=Round("p", 1, "stale", T0, 0, {}, {}, "s"), fence=(name, token))
    other.close()
    assert taken == [token + 1]
    assert store.list_rounds("p") == [] and store.get_array("p", "probs") is None
