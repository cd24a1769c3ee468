"""The coordinator's dependencies in one object, and the use cases that combine several of them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from api.service.jobs import JobContext, JobRunner
from api.service.rounds import run_round
from api.settings import Settings
from api.storage.base import Store
from api.storage.records import Job
from labeling.errors import Conflict
from workers.executor import Executor

__all__ = ["Services"]


@dataclass
class Services:
    store: Store
    executor: Executor
    settings: Settings = field(default_factory=Settings)
    clock: Callable[[], float] = time.time
    jobs: JobRunner = field(init=False)

    def __post_init__(self) -> None:
        self.jobs = JobRunner(self.store, workers=self.settings.job_workers, clock=self.clock,
                              lock_ttl_s=self.settings.job_lock_ttl_s)
        self._rng = np.random.default_rng()

    def rng(self) -> np.random.Generator:
        """Randomness for leases (evaluation-slice mixing) and ingest (slice membership)."""
        return np.random.default_rng(self._rng.integers(2**63))

    def start_round(self, project_id: str) -> Job:
        """Queue a retrain round as a background job (``Conflict`` if one runs)."""
        self.store.get_project(project_id)

        def job(ctx: JobContext) -> dict:
            rnd, _ = run_round(
                self.store, project_id, self.executor, now=self.clock(),
                progress=lambda d, t, stage: ctx.progress(d, t, stage),
            )
            return {"round": rnd.number, "model_version": rnd.model_version, "metrics": rnd.metrics,
                    "executor": self.executor.name}

        return self.jobs.submit(project_id, "round", job)

    def maybe_retrain(self, project_id: str) -> Job | None:
        """Start a round when ``retrain_every`` labels arrived since the last one."""
        project = self.store.get_project(project_id)
        latest = self.store.latest_round(project_id)
        since = self.store.count_labels(project_id) - (latest.n_labels if latest else 0)
        if since < project.settings.retrain_every:
            return None
        try:
            return self.start_round(project_id)
        except Conflict:  # a round is already running; the next one picks these labels up
            return None

    def close(self) -> None:
        self.jobs.shutdown()
        self.executor.shutdown()
        self.store.close()
