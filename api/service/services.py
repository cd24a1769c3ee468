"""The coordinator's dependencies in one object, and the use cases that combine several of them."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from api.metrics import Metrics
from api.service import label_studio_sync
from api.service.jobs import JobContext, JobRunner
from api.service.routing import AnswerIndex
from api.settings import Settings
from api.storage.base import Store
from api.storage.records import Job
from labeling.errors import Conflict
from workers.executor import Executor

__all__ = ["Services", "build_services"]


@dataclass
class Services:
    store: Store
    executor: Executor
    settings: Settings = field(default_factory=Settings)
    clock: Callable[[], float] = time.time
    jobs: JobRunner = field(init=False)
    metrics: Metrics = field(init=False)
    answers: AnswerIndex = field(default_factory=AnswerIndex)  # the log by item, for routing

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.store, self.clock)
        self.jobs = JobRunner(self.store, workers=self.settings.job_workers, clock=self.clock,
                              lock_ttl_s=self.settings.job_lock_ttl_s)
        self._rng = np.random.default_rng()
        self._rounds_wanted: set[str] = set()  # projects that asked for a round while one ran

    def rng(self) -> np.random.Generator:
        """Randomness for leases (evaluation-slice mixing) and ingest (slice membership)."""
        return np.random.default_rng(self._rng.integers(2**63))

    def start_round(self, project_id: str) -> Job:
        """Queue a retrain round as a background job (``Conflict`` if one runs)."""
        self.store.get_project(project_id)

        def job(ctx: JobContext) -> dict:
            from api.service.rounds import run_round  # the model stack loads where it is used

            timer = self.metrics.round_timer()

            def progress(d: int, t: int, stage: str) -> None:
                timer.report(stage)
                ctx.progress(d, t, stage)

            rnd, _ = run_round(self.store, project_id, self.executor, now=self.clock(),
                               progress=progress, fence=ctx.fence)
            timer.finish()
            result = {"round": rnd.number, "model_version": rnd.model_version,
                      "metrics": rnd.metrics, "executor": self.executor.name}
            pushed = label_studio_sync.push_after_round(self.store, project_id, rnd)
            if pushed is not None:  # a Label Studio is connected: it got this round's predictions
                result["label_studio"] = pushed
            return result

        return self.jobs.submit(project_id, "round", job,
                                then=lambda: self._after_round(project_id))

    def request_round(self, project_id: str) -> Job | None:
        """A round now, or, while one runs in this process, right after it (``None`` then)."""
        try:
            return self.start_round(project_id)
        except Conflict:
            self._rounds_wanted.add(project_id)
            return None

    def _after_round(self, project_id: str) -> None:
        """Once a round has ended: another when one was asked for meanwhile, or when
        ``retrain_every`` labels arrived while it ran."""
        if project_id in self._rounds_wanted:
            self._rounds_wanted.discard(project_id)
            self.request_round(project_id)
        else:
            self.maybe_retrain(project_id)

    def start_apply_lfs(self, project_id: str) -> Job:
        """Apply the active LFs to the pool as a job: only the (LF version, item) pairs not yet
        computed run, and their votes are stored for the next round."""
        self.store.get_project(project_id)

        def job(ctx: JobContext) -> dict:
            from api.service.lfs import vote_matrix
            from api.service.rounds import load_pool

            pool = load_pool(self.store, project_id)
            records = [r for r in self.store.list_lfs(project_id) if r.active]
            votes, info = vote_matrix(self.store, project_id, records, pool.frame,
                                      pool.project.n_classes, self.executor,
                                      progress=lambda d, t: ctx.progress(d, t, "apply_lfs"),
                                      fence=ctx.fence)
            ctx.progress(len(pool.items), len(pool.items), "apply_lfs")
            return {"items": int(votes.shape[0]), "lfs": [
                {k: e.get(k) for k in ("name", "version", "faults", "first_error")} for e in info],
                "executor": self.executor.name}

        return self.jobs.submit(project_id, "apply_lfs", job)

    def start_pseudo_label(self, project_id: str, *, min_confidence: float, fmt: str,
                           prefer: str) -> Job:
        """Write the confident labels of the whole pool, with provenance, to a file under this
        replica's data directory (``result.path``), as a job with row progress."""
        self.store.get_project(project_id)
        out = (self.settings.data_dir / "exports"
               / f"{project_id}-pseudo-{secrets.token_hex(6)}.{fmt}").resolve()

        def job(ctx: JobContext) -> dict:
            from api.service.export import SOURCES, export_file

            out.parent.mkdir(parents=True, exist_ok=True)
            rows = export_file(self.store, project_id, out, fmt=fmt, min_confidence=min_confidence,
                               prefer=prefer, sources=tuple(x for x in SOURCES if x != "none"),
                               executor=self.executor,
                               progress=lambda d, t: ctx.progress(d, t, "pseudo_label"))
            return {"path": str(out), "rows": rows, "format": fmt, "min_confidence": min_confidence}

        return self.jobs.submit(project_id, "pseudo_label", job)

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


def build_services(settings: Settings) -> Services:
    """The store and executor the settings name, in one :class:`Services`."""
    from api.storage import open_store
    from workers import sandbox
    from workers.executor import make_executor

    store = open_store(settings.resolved_store_url, require_durable=settings.require_durable)
    sandbox.shared(settings.user_code_limits, size=settings.sandbox_workers)
    executor = make_executor(settings.executor, num_cpus=settings.ray_num_cpus,
                             address=settings.ray_address, limits=settings.user_code_limits)
    return Services(store=store, executor=executor, settings=settings)
