"""Prometheus metrics for ``GET /metrics`` (prometheus-client), all named ``labelloop_*``.

Two kinds. Counters and histograms of what this replica did (leases granted, annotations
accepted / duplicate / rejected, lease-to-submit time, round stage durations, leased items its
expiry sweeps returned): sum them over replicas. Gauges derived from the store (items by state, live lease
holds, rounds, the last round's time and evaluation accuracy, jobs by kind and state) are read
from the store at scrape time, so every replica reports the same value: aggregate them with
``max``, not ``sum``. No label carries an item or annotator id.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from api.storage.base import Store
from api.storage.records import JOB_STATES, SubmitResult
from labeling.errors import LabelloopError

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "lease_started_at"]

VERSION = "0.1.0"
ITEM_STATES = ("open", "leased", "done", "flagged")
JOB_KINDS = ("round", "apply_lfs", "pseudo_label")


def lease_started_at(lease_id: str) -> float | None:
    """When a lease was made, from its id (``lease-`` then the microsecond in 14 hex digits)."""
    digits = lease_id[6:20]
    if not lease_id.startswith("lease-") or len(digits) != 14:
        return None
    try:
        return int(digits, 16) / 1e6
    except ValueError:
        return None


class StoreCollector:
    """Gauges read from the store when Prometheus scrapes (the same on every replica)."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store, self.clock = store, clock

    def describe(self) -> Iterable[Metric]:
        return []  # collected only at scrape time: registering must not read the store

    def collect(self) -> Iterable[Metric]:
        items = GaugeMetricFamily("labelloop_items", "Pool items by state (store-derived)",
                                  labels=["project", "state"])
        holds = GaugeMetricFamily("labelloop_active_lease_holds",
                                  "Items held by unexpired leases (store-derived)", labels=["project"])
        rounds = CounterMetricFamily("labelloop_rounds", "Rounds recorded (store-derived)",
                                     labels=["project"])
        last = GaugeMetricFamily("labelloop_last_round_timestamp_seconds",
                                 "Unix time of the last successful round (store-derived)",
                                 labels=["project"])
        acc = GaugeMetricFamily("labelloop_eval_accuracy",
                                "Accuracy on the evaluation slice at the last round (store-derived)",
                                labels=["project", "model"])
        jobs = GaugeMetricFamily("labelloop_jobs", "Jobs by kind and state (store-derived)",
                                 labels=["project", "kind", "state"])
        now = self.clock()
        try:
            projects = self.store.list_projects()
            for p in projects:
                depth = self.store.queue_depth(p.id, now)
                for state in ITEM_STATES:
                    items.add_metric([p.id, state], depth.get(state, 0))
                holds.add_metric([p.id], depth.get("leased", 0))
                history = self.store.list_rounds(p.id)
                rounds.add_metric([p.id], len(history))
                if history:
                    latest = max(history, key=lambda r: r.number)
                    last.add_metric([p.id], latest.created_at)
                    for model in ("end_model", "label_model"):
                        value = (latest.metrics.get(model) or {}).get("accuracy")
                        if value is not None:
                            acc.add_metric([p.id, model], value)
                counts = {(k, s): 0 for k in JOB_KINDS for s in JOB_STATES}
                for j in self.store.list_jobs(p.id):
                    counts[(j.kind, j.status)] = counts.get((j.kind, j.status), 0) + 1
                for (kind, state), n in sorted(counts.items()):
                    jobs.add_metric([p.id, kind, state], n)
        except LabelloopError:  # store down: report what this replica counted, and up = 0
            yield GaugeMetricFamily("labelloop_store_up", "Whether the store answered the scrape",
                                    value=0)
            return
        yield GaugeMetricFamily("labelloop_store_up", "Whether the store answered the scrape", value=1)
        yield from (items, holds, rounds, last, acc, jobs)


class Metrics:
    """One replica's registry: its own counters plus the store collector."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.leases_granted = Counter("labelloop_leases_granted", "Leases granted by this replica",
                                      ["project"], registry=r)
        self.leases_expired = Counter("labelloop_expired_lease_items",
                                      "Leased items returned by this replica's expiry sweeps",
                                      registry=r)
        self.annotations = Counter("labelloop_annotations", "Annotations submitted to this replica "
                                   "by result (accepted, duplicate, rejected)",
                                   ["project", "result"], registry=r)
        self.lease_to_submit = Histogram(
            "labelloop_lease_to_submit_seconds", "Time from a lease to each accepted annotation",
            ["project"], buckets=(1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600), registry=r)
        self.round_stage = Histogram(
            "labelloop_round_stage_duration_seconds", "Duration of each stage of a round run here",
            ["stage"], buckets=(0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900), registry=r)
        self.round_duration = Histogram(
            "labelloop_round_duration_seconds", "Duration of whole rounds run by this replica",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600), registry=r)
        build = GaugeMetricFamily("labelloop_build_info", "Build information (always 1)",
                                  labels=["version", "python"])
        build.add_metric([VERSION, platform.python_version()], 1)
        r.register(_Fixed([build]))
        r.register(StoreCollector(store, clock))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def lease_granted(self, project_id: str) -> None:
        """Count a lease with items."""
        self.leases_granted.labels(project_id).inc()

    def submitted(self, project_id: str, results: Sequence[SubmitResult]) -> None:
        """Count one submission's results; accepted ones observe their lease-to-submit time."""
        dup = sum(1 for r in results if r.duplicate)
        if dup:
            self.annotations.labels(project_id, "duplicate").inc(dup)
        if len(results) - dup:
            self.annotations.labels(project_id, "accepted").inc(len(results) - dup)
        for r in results:
            started = lease_started_at(r.annotation.lease_id or "")
            if not r.duplicate and started is not None:
                self.lease_to_submit.labels(project_id).observe(
                    max(0.0, r.annotation.created_at - started))

    def rejected(self, project_id: str, n: int) -> None:
        self.annotations.labels(project_id, "rejected").inc(n)

    def round_timer(self) -> StageTimer:
        return StageTimer(self, time.monotonic)


class StageTimer:
    """Times a round's stages from its progress reports (a stage ends when the next begins)."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float]) -> None:
        self.metrics, self.clock = metrics, clock
        self.start = clock()
        self.stage: str | None = None
        self.since = self.start

    def report(self, stage: str) -> None:
        name = (stage.split() or [""])[0].strip(",") or "unnamed"
        if name == self.stage:
            return
        self.close_stage()
        if name != "done":  # the round's last report ends its last stage
            self.stage, self.since = name, self.clock()

    def close_stage(self) -> None:
        if self.stage is not None:
            self.metrics.round_stage.labels(self.stage).observe(self.clock() - self.since)
            self.stage = None

    def finish(self) -> None:
        self.close_stage()
        self.metrics.round_duration.observe(self.clock() - self.start)


class _Fixed:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families
