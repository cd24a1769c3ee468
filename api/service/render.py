"""What a lease answers (``api.schemas.LeaseOut``): its items, the project's classes with their
descriptions, the guideline version and, when the project shows suggestions (``show_suggestions``,
off by default), per item the model's predicted class by name (also beside a strategy's
``predicted`` index in the reasons) and the LF votes by LF name, from the latest round's arrays
(read once per round and kept).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from api.storage.base import Store
from api.storage.records import Lease, LeasedItem, Project

__all__ = ["LeaseRenderer"]


@dataclass(frozen=True)
class _RoundView:
    """The latest round's predictions and the active LFs' votes, by pool position."""

    number: int
    probs: np.ndarray | None
    votes: dict[str, np.ndarray]


class LeaseRenderer:
    """Builds lease answers; keeps each project's latest round view for its suggestions."""

    def __init__(self) -> None:
        self._rounds: dict[str, _RoundView] = {}
        self._lock = threading.Lock()

    def render(self, lease: Lease, project: Project, store: Store) -> dict[str, Any]:
        """The ``LeaseOut`` document of ``lease``: suggestions only where the project shows them
        (the store is read for them then)."""
        items = [{"id": li.item.id, "text": li.item.text, "features": li.item.features,
                  "meta": li.item.meta, "reasons": li.reasons} for li in lease.items]
        if project.settings.show_suggestions:
            view = self._round_view(project, store)
            for it, li in zip(items, lease.items, strict=True):
                self._suggest(it, li, project, view)
        return {"lease_id": lease.id, "project_id": lease.project_id,
                "annotator": lease.annotator, "expires_at": lease.expires_at,
                "exhausted": lease.exhausted, "items": items,
                "classes": [{"name": c.name, "description": c.description}
                            for c in project.classes],
                "guidelines_version": project.settings.guidelines_version,
                "show_suggestions": project.settings.show_suggestions}

    @staticmethod
    def _suggest(it: dict[str, Any], li: LeasedItem, project: Project,
                 view: _RoundView | None) -> None:
        names = project.class_names
        it["suggestion"], it["lf_votes"] = None, {}
        predicted = li.reasons.get("predicted")
        if isinstance(predicted, int) and 0 <= predicted < len(names):
            it["reasons"] = {**li.reasons, "predicted_class": names[predicted]}
        if view is None:
            return
        seq = li.item.seq
        if view.probs is not None and 0 <= seq < len(view.probs):
            p = view.probs[seq]
            k = int(np.argmax(p))
            it["suggestion"] = {"label": names[k], "confidence": round(float(p[k]), 4)}
        it["lf_votes"] = {lf: names[int(v[seq])] for lf, v in view.votes.items()
                          if 0 <= seq < len(v) and 0 <= int(v[seq]) < len(names)}

    def _round_view(self, project: Project, store: Store) -> _RoundView | None:
        latest = store.latest_round(project.id)
        if latest is None:
            return None
        hit = self._rounds.get(project.id)
        if hit is not None and hit.number == latest.number:
            return hit
        probs = store.get_array(project.id, "probs")
        votes = {r.name: store.get_votes(project.id, r.version)[0]
                 for r in store.list_lfs(project.id) if r.active}
        view = _RoundView(latest.number, probs, votes)
        with self._lock:
            self._rounds[project.id] = view
        return view
