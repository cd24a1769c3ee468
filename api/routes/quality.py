"""Annotation quality: agreement, annotators, the label-error ranking and gold items."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from api.auth import Engineer
from api.deps import Now, ServicesDep
from api.schemas import AgreementOut, AnnotatorOut, GoldIn, GoldItemOut, GoldOut, LabelErrorsOut
from api.service import gold as gold_svc
from api.service import quality as svc

router = APIRouter(prefix="/projects/{project_id}", tags=["quality"])


@router.get("/agreement")
def agreement(project_id: str, s: ServicesDep, who: Engineer,
              by: Literal["class", "guidelines_version"] | None = None) -> AgreementOut:
    """Krippendorff's alpha, Fleiss' kappa and Cohen's kappa per pair of annotators over the items
    with two or more labels, each with the number of items it rests on; ``?by=class`` adds each
    class against the rest, ``?by=guidelines_version`` the figures under each guidelines version."""
    return AgreementOut.model_validate(svc.agreement(
        s.store, project_id, by_class=by == "class", by_version=by == "guidelines_version"))


@router.get("/annotators")
def annotators(project_id: str, s: ServicesDep, who: Engineer) -> list[AnnotatorOut]:
    """Per annotator, best first: labels, skips, flags, median time per item, agreement with the
    others' consensus, accuracy on gold items, CROWDLAB quality, and whether (and why) the
    annotator is far below the others."""
    return [AnnotatorOut.model_validate(a) for a in svc.annotators(s.store, project_id)]


@router.get("/label-errors")
def label_errors(project_id: str, s: ServicesDep, who: Engineer,
                 limit: int = Query(50, ge=1, le=svc.MAX_LIMIT)) -> LabelErrorsOut:
    """The latest round's human labels most likely to be wrong, with reasons."""
    return LabelErrorsOut.model_validate(svc.label_errors(s.store, project_id, limit=limit))


@router.post("/gold")
def mark_gold(project_id: str, body: GoldIn, s: ServicesDep, now: Now, who: Engineer) -> GoldOut:
    """Mark (or unmark) gold items; their answers score annotators and never train."""
    return GoldOut(**gold_svc.mark_gold(
        s.store, project_id, labels=body.labels, from_file=body.from_file, ids=body.ids,
        unmark=body.unmark, now=now, owner=who.name))


@router.get("/gold")
def list_gold(project_id: str, s: ServicesDep, who: Engineer) -> list[GoldItemOut]:
    return [GoldItemOut(**g) for g in gold_svc.list_gold(s.store, project_id)]
