"""The frozen, JSON-friendly records the store takes and returns (the HTTP layer has its own
pydantic models; the pure core works on arrays)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from labeling.routing import ANSWER_KINDS  # the kinds that count towards an item's ``required``

__all__ = ["ACTIVE_JOB_STATES", "ANSWER_KINDS", "JOB_STATES", "POOLS", "Annotation",
           "AssertionRecord", "ClassSpec", "Item", "Job", "LFRecord", "Lease", "LeaseRequest",
           "LeasedItem", "Project", "ProjectSettings", "Round", "SubmitResult", "id_draw",
           "required_answers"]

POOLS = ("main", "eval", "gold", "review")  # every item is in one (see api.storage.base)
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_JOB_STATES = ("queued", "running")  # a job in these has not ended


@dataclass(frozen=True)
class ClassSpec:
    name: str
    description: str = ""


@dataclass(frozen=True)
class ProjectSettings:
    """Per-project knobs. Validated by the service before they are stored."""

    batch_size: int = 10
    lease_ttl_s: float = 900.0
    retrain_every: int = 20
    eval_fraction: float = 0.1
    # with LFs, this share of every active-learning batch is a random sample of the pool, whose
    # labels train the model and decide how much to trust the LFs (labeling.trust.decision_rows)
    explore_fraction: float = 0.1
    strategy: str = "entropy"
    strategy_params: dict[str, Any] = field(default_factory=dict)
    queue_size: int = 1000
    weak_weight: float = 0.5
    label_model: str = "auto"
    seed: int = 0
    # redundancy: this share of items (:func:`required_answers`) needs ``redundancy_k`` annotators
    redundancy_fraction: float = 0.0
    redundancy_k: int = 2
    show_suggestions: bool = False  # leases show the model's suggestion and the LF votes
    guidelines_version: int = 1  # the version of the guidelines in force
    # annotation quality (:mod:`labeling.routing`): an item whose answers agree less than
    # ``min_agreement`` asks for one more annotator up to ``max_required``, then goes to review;
    # each round sends the top ``review_top_k`` of the label-error ranking to review;
    # ``gold_rate`` of each lease is drawn from gold items
    max_required: int = 3
    min_agreement: float = 1.0
    review_top_k: int = 0
    gold_rate: float = 0.0


def id_draw(item_id: str, salt: str = "") -> float:
    """A number in [0, 1) fixed by the item id: the first 32 bits of the SHA-1 of ``salt`` and
    the id, so the same on every replica and store, and independent across salts."""
    return int(hashlib.sha1(f"{salt}{item_id}".encode()).hexdigest()[:8], 16) / 4294967296.0


def required_answers(item_id: str, fraction: float, k: int) -> int:
    """How many distinct annotators must label ``item_id``: ``k`` for the sampled share, else 1.
    The one place the redundancy draw is made (:func:`id_draw`): the stores set each item's
    ``required`` from it when the item is added or the settings change; :meth:`Store.require`
    changes it later."""
    return k if fraction > 0 and id_draw(item_id) < fraction else 1


@dataclass(frozen=True)
class Project:
    id: str
    classes: tuple[ClassSpec, ...]
    settings: ProjectSettings
    guidelines: str = ""
    created_at: float = 0.0

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]


@dataclass(frozen=True)
class Item:
    """One pool item. ``seq`` is its position in the project's pool (0, 1, 2, ... by arrival)."""

    id: str
    seq: int = -1
    text: str | None = None
    features: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    votes: tuple[int, ...] | None = None
    gold: int | None = None
    is_eval: bool = False
    pool: str = "main"  # one of POOLS; an item of the evaluation slice is in "eval" unless moved


@dataclass(frozen=True)
class LFRecord:
    """A registered labeling function: its source travels so every replica and worker can load it."""

    name: str
    version: str
    kind: str  # "source" (Python source) or "votes" (precomputed vote column)
    source: str  # Python source text, or the vote column index for kind "votes"
    active: bool = True
    created_at: float = 0.0


@dataclass(frozen=True)
class AssertionRecord:
    """A registered model assertion; like an LF, its definition travels as text."""

    name: str
    version: str
    kind: str  # "source" (Python source defining it) or "consistency" (JSON spec, no code)
    source: str  # the Python source, or the consistency spec as JSON
    active: bool = True
    created_at: float = 0.0


@dataclass(frozen=True)
class LeasedItem:
    item: Item
    reasons: dict[str, Any]
    eval: bool  # from the evaluation slice (``pool == "eval"``)
    pool: str = "main"


@dataclass(frozen=True)
class LeaseRequest:
    """One annotator's lease request, checked against the project's settings."""

    project_id: str
    annotator: str
    n: int
    n_eval: int
    ttl: float
    lease_id: str
    n_gold: int = 0
    pool: str = "main"


@dataclass(frozen=True)
class Lease:
    id: str
    project_id: str
    annotator: str
    expires_at: float
    item_ids: tuple[str, ...]
    items: tuple[LeasedItem, ...] = ()
    exhausted: bool = False  # on an empty lease: nothing is left for this annotator (Store.lease)


@dataclass(frozen=True)
class Annotation:
    """One event of the append-only annotation log."""

    project_id: str
    item_id: str
    annotator: str
    # "label", "skip", "flag", "review" (a reviewer's decision, an answer like a label), "correct"
    # (supersedes its annotator's earlier answer, adds nothing) or "retract" (withdraws it)
    kind: str
    label: int | None = None
    comment: str = ""
    lease_id: str | None = None
    idempotency_key: str | None = None
    time_spent_s: float | None = None
    created_at: float = 0.0
    seq: int = -1  # position in the log, set by the store
    guidelines_version: int | None = None  # the project's guidelines the answer was given under


@dataclass(frozen=True)
class SubmitResult:
    annotation: Annotation
    duplicate: bool  # True when the idempotency key was seen before: no second effect


@dataclass(frozen=True)
class Round:
    project_id: str
    number: int
    model_version: str
    created_at: float
    n_labels: int
    metrics: dict[str, Any]
    label_model: dict[str, Any]
    strategy: str
    strategy_state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    id: str
    project_id: str
    kind: str
    status: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    done: int = 0
    total: int = 0
    message: str = ""
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    cancel_requested: bool = False  # set by any replica or the CLI; the runner stops the job
