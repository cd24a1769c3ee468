"""HTTP request and response models (separate from stored records).

Every request body is a :class:`Body`: before its fields are parsed, the whole input is checked
by :func:`labeling.validation.check_value` (no lone surrogate anywhere, no non-finite number, at
most ``MAX_DEPTH`` levels), and numbers must be finite; identifiers follow
:mod:`labeling.validation` too. Project settings have one typed model, :class:`SettingsIn`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    model_validator,
)

from labeling.validation import check_item_id, check_project_id, check_value

if TYPE_CHECKING:
    from api.storage.records import Lease

Strict = ConfigDict(extra="forbid", allow_inf_nan=False)

ItemId = Annotated[str, AfterValidator(check_item_id)]
ProjectId = Annotated[str, AfterValidator(check_project_id)]


class Body(BaseModel):
    """A request body: unknown fields refused, the whole input checked before parsing."""

    model_config = Strict

    @model_validator(mode="before")
    @classmethod
    def _acceptable(cls, data: Any) -> Any:
        return check_value(data, "body")


Fraction = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]


class SettingsIn(Body):
    """Project settings, each optional (absent = unchanged, or the default on creation); types
    are strict: ``"5"`` is not an integer, ``2.5`` not a batch size, ``null`` not a fraction."""

    batch_size: StrictInt = Field(None, ge=1, le=1000)
    lease_ttl_s: float = Field(None, ge=0.1, le=7 * 86400, strict=True)
    retrain_every: StrictInt = Field(None, ge=1, le=1_000_000)
    eval_fraction: float = Field(None, ge=0.0, lt=1.0, strict=True)
    explore_fraction: float = Field(None, ge=0.0, le=0.5, strict=True)
    strategy: str = Field(None, min_length=1, max_length=100)
    strategy_params: dict[str, Any] = None
    queue_size: StrictInt = Field(None, ge=1, le=1_000_000)
    weak_weight: float = Field(None, ge=0.0, le=10.0, strict=True)
    label_model: Literal["auto", "snorkel", "majority"] = None
    seed: StrictInt = Field(None, ge=0, le=2**63 - 1)
    redundancy_fraction: Fraction = None
    redundancy_k: StrictInt = Field(None, ge=2, le=50)
    show_suggestions: StrictBool = None
    guidelines_version: StrictInt = Field(None, ge=1, le=1_000_000)
    max_required: StrictInt = Field(None, ge=1, le=50)
    min_agreement: Fraction = None
    review_top_k: StrictInt = Field(None, ge=0, le=10_000)
    gold_rate: float = Field(None, ge=0.0, le=0.5, strict=True)


class ClassIn(BaseModel):
    model_config = Strict
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)


class ProjectIn(Body):
    id: ProjectId = Field(min_length=1, max_length=64)
    classes: list[Annotated[str, Field(min_length=1, max_length=200)] | ClassIn] = Field(
        min_length=2, max_length=1000)
    guidelines: str = Field("", max_length=100_000)
    settings: SettingsIn = Field(default_factory=SettingsIn)


class ProjectPatchIn(Body):
    """New guidelines text (raises ``guidelines_version`` by one unless ``settings`` sets it)
    and/or settings, changed together."""

    guidelines: str | None = Field(None, max_length=100_000)
    settings: SettingsIn = Field(default_factory=SettingsIn)


class ProjectOut(BaseModel):
    id: str
    classes: list[ClassIn]
    guidelines: str
    settings: dict[str, Any]
    created_at: float


class ItemIn(BaseModel):
    model_config = Strict
    id: ItemId | None = Field(None, min_length=1, max_length=512)
    text: str | None = Field(None, max_length=1_000_000)
    features: dict[str, float] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)
    votes: list[int] | None = None
    label: int | str | None = None


class ItemsIn(Body):
    items: list[ItemIn] = Field(min_length=1, max_length=50_000)
    on_conflict: Literal["reject", "upsert"] = "reject"
    duplicates: Literal["reject", "first", "last"] = "reject"


class ImportIn(BaseModel):
    """Query parameters of a file import: the column mapping and layout the CLI's ingest has."""

    model_config = Strict
    format: Literal["jsonl", "csv", "parquet", "wrench"] | None = None
    on_conflict: Literal["reject", "upsert"] = "reject"
    duplicates: Literal["reject", "first", "last"] = "reject"
    text_column: str = Field("text", min_length=1, max_length=200)
    id_column: str = Field("id", min_length=1, max_length=200)
    label_column: str = Field("label", min_length=1, max_length=200)
    feature_columns: str | None = Field(None, description="comma-separated numeric columns")
    vote_columns: str | None = Field(None, description="comma-separated columns of LF votes")
    sep: str | None = Field(None, min_length=1, max_length=4, description="default: sniffed")
    header: bool = True
    columns: str | None = Field(None, description="comma-separated names of headerless columns")
    filename: str | None = Field(None, max_length=255,
                                 description="the file's name, for a raw body: its suffix gives "
                                 "the format, and error messages use it")


class IngestOut(BaseModel):
    inserted: int
    updated: int
    eval_items: int
    vote_lfs: int


class ItemOut(BaseModel):
    id: str
    seq: int
    text: str | None
    features: dict[str, float]
    meta: dict[str, Any]


class LeaseIn(Body):
    annotator: str = Field(min_length=1, max_length=200)
    size: int | None = Field(None, ge=1, le=1000)


class LeasedItemOut(BaseModel):
    id: str
    text: str | None
    features: dict[str, float]
    meta: dict[str, Any]
    reasons: dict[str, Any]
    suggestion: dict[str, Any] | None = Field(
        None, description="the latest model's class by name and its confidence; only when the "
        "project's show_suggestions is on")
    lf_votes: dict[str, str] | None = Field(
        None, description="LF name -> class name of the LFs that voted; only with show_suggestions")


class ClassOut(BaseModel):
    name: str
    description: str


class LeaseOut(BaseModel):
    lease_id: str
    project_id: str
    annotator: str
    expires_at: float
    items: list[LeasedItemOut]
    exhausted: bool = Field(description="true only when no item is left for this annotator")
    classes: list[ClassOut] = Field(description="the project's classes with their descriptions")
    guidelines_version: int
    show_suggestions: bool


def lease_json(doc: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    """A ``LeaseOut`` document (or a list of them) encoded with orjson, a tenth of the model's
    cost on the lease route. orjson writes a non-finite number in features or meta as null, as
    the model does; what orjson cannot encode (an integer past 64 bits) goes through the model."""
    try:
        return orjson.dumps(doc)
    except orjson.JSONEncodeError:
        return _LEASE_DOCS.dump_json(_LEASE_DOCS.validate_python(doc), exclude_unset=True)


_LEASE_DOCS: TypeAdapter[LeaseOut | list[LeaseOut]] = TypeAdapter(LeaseOut | list[LeaseOut])


class LeaseActionIn(Body):
    annotator: str = Field(min_length=1, max_length=200)
    item_ids: list[ItemId] | None = Field(None, max_length=1000)


class LeaseStateOut(BaseModel):
    """A lease as it stands (get, renew): its open items by id."""

    lease_id: str
    project_id: str
    annotator: str
    expires_at: float
    item_ids: list[str]

    @classmethod
    def of(cls, lease: Lease) -> LeaseStateOut:
        return cls(lease_id=lease.id, project_id=lease.project_id, annotator=lease.annotator,
                   expires_at=lease.expires_at, item_ids=list(lease.item_ids))


class ReleaseOut(BaseModel):
    lease_id: str
    released: int = Field(description="items given back")


class AnnotationIn(BaseModel):
    model_config = Strict
    item_id: ItemId = Field(min_length=1, max_length=512)
    lease_id: str | None = Field(min_length=1, max_length=200, description=(
        "the lease holding the item; null for a 'correct' annotation (a new label for an item "
        "this annotator answered before)"))
    kind: Literal["label", "skip", "flag", "review", "correct"] = Field("label", description=(
        "'review' is a reviewer's decision on an item of the review queue (label and comment "
        "saying why; reviewer role)"))
    label: int | str | None = None
    comment: str = Field("", max_length=4000)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    time_spent_s: float | None = Field(None, ge=0, lt=86400)


class SubmitIn(Body):
    annotator: str = Field(min_length=1, max_length=200)
    annotations: list[AnnotationIn] = Field(min_length=1, max_length=1000)


class AnnotationOut(BaseModel):
    seq: int
    item_id: str
    annotator: str
    kind: str
    label: int | None
    comment: str
    lease_id: str | None
    idempotency_key: str | None
    created_at: float
    duplicate: bool = False


class SubmitOut(BaseModel):
    results: list[AnnotationOut]
    retrain_job: str | None = None


class LFIn(Body):
    source: str | None = Field(None, max_length=1_000_000)
    module: str | None = Field(None, max_length=300)


class LFCheckOut(BaseModel):
    level: Literal["error", "warning"]
    message: str


class LFOut(BaseModel):
    name: str
    version: str
    kind: str
    active: bool
    created_at: float
    checks: list[LFCheckOut] = Field(default_factory=list,
                                     description="registration's findings on a pool sample")


class JobIn(Body):
    """``round`` (apply LFs, fit, train, score, refresh the queue), ``apply_lfs`` (votes only)
    or ``pseudo_label`` (confident labels of the pool to a file; the other fields apply)."""

    model_config = Strict
    kind: Literal["round", "apply_lfs", "pseudo_label"] = "round"
    min_confidence: float = Field(0.9, ge=0.0, le=1.0)
    format: Literal["jsonl", "csv", "parquet"] = "jsonl"
    prefer: Literal["end_model", "label_model"] = "end_model"


class JobOut(BaseModel):
    id: str
    project_id: str
    kind: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    done: int
    total: int
    message: str
    error: str | None
    result: dict[str, Any]
    cancel_requested: bool = False


class RoundOut(BaseModel):
    number: int
    model_version: str
    created_at: float
    n_labels: int
    metrics: dict[str, Any]
    label_model: dict[str, Any]
    strategy: str


# -- annotation quality -----------------------------------------------------------------------
class FigureOut(BaseModel):
    value: float | None = Field(description="None when undefined on these items")
    n_items: int = Field(description="items the figure rests on")


class FleissOut(FigureOut):
    ratings_per_item: int | None = Field(
        description="Fleiss' kappa uses the items with this many ratings (the most common count)")


class PairOut(BaseModel):
    annotators: list[str]
    cohen_kappa: float | None
    n_items: int


class ClassAgreementOut(BaseModel):
    class_: str = Field(alias="class")
    krippendorff_alpha: FigureOut
    fleiss_kappa: FleissOut


class VersionAgreementOut(BaseModel):
    guidelines_version: int
    n_items: int = Field(description="items with two or more labels given under this version")
    krippendorff_alpha: FigureOut
    fleiss_kappa: FleissOut
    pairs: list[PairOut]


class AgreementOut(BaseModel):
    project_id: str
    n_items: int = Field(description="items with two or more labels")
    krippendorff_alpha: FigureOut
    fleiss_kappa: FleissOut
    pairs: list[PairOut]
    classes: list[ClassAgreementOut] | None = Field(None, description="with ?by=class")
    versions: list[VersionAgreementOut] | None = Field(
        None, description="with ?by=guidelines_version: the figures over the answers given "
        "under each version of the guidelines, oldest first")


class AnnotatorOut(BaseModel):
    annotator: str
    labels: int
    items: int
    skips: int
    flags: int
    median_time_s: float | None
    agreement_with_consensus: FigureOut
    gold_accuracy: FigureOut
    quality: FigureOut = Field(description="CROWDLAB annotator quality (cleanlab)")
    quality_note: str | None
    rank: int
    rank_by: str
    below_others: bool
    reasons: list[str]


class LabelErrorOut(BaseModel):
    id: str
    label: str
    suggested: str
    label_quality: float
    issue: bool
    reasons: list[str]


class LabelErrorsOut(BaseModel):
    project_id: str
    round: int | None
    n_ranked: int
    items: list[LabelErrorOut]
    note: str | None = None


class GoldIn(BaseModel):
    """Mark gold items by id with their known answers (``labels``), or from the labels their
    file carried (``from_file``, optionally only ``ids``); ``unmark`` makes items ordinary again."""

    model_config = Strict
    labels: dict[str, int | str] = Field(default_factory=dict, max_length=100_000)
    from_file: bool = False
    ids: list[str] | None = Field(None, max_length=100_000)
    unmark: list[str] = Field(default_factory=list, max_length=100_000)


class GoldOut(BaseModel):
    gold: int
    marked: int
    unmarked: int


class GoldItemOut(BaseModel):
    id: str
    label: str


class ReviewAnswerOut(BaseModel):
    annotator: str
    kind: str
    label: str | None = Field(description="class name, for the kinds that carry one")
    comment: str
    created_at: float
    guidelines_version: int | None


class ReviewWhyOut(BaseModel):
    why: Literal["disagreement", "label_error"]
    annotators: int = Field(description="annotators whose answer stands")
    agreement: float = Field(description="share of them giving the most-answered class")
    label: str | None = Field(None, description="label_error: the label under review")
    suggested: str | None = Field(None, description="label_error: the class the models suggest")
    label_quality: float | None = None
    issue: bool | None = None
    reasons: list[str] | None = None


class ReviewItemOut(LeasedItemOut):
    answers: list[ReviewAnswerOut] = Field(description="the item's earlier answers, log order")
    review: ReviewWhyOut


class ReviewLeaseOut(LeaseOut):
    items: list[ReviewItemOut]
