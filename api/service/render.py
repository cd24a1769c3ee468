"""What a lease carries for a tool to render it: the project's classes with their descriptions,
the guideline version and, when the project shows suggestions (``show_suggestions``, off by
default), per item the model's predicted class by name (also beside a strategy's ``predicted``
index in the reasons) and the LF votes by LF name.

The lease route's body arrives encoded (the hot path builds it without pydantic). With
suggestions hidden, the project-level fields are spliced onto its end as bytes, encoded once per
project settings; only a project that shows suggestions has its bodies decoded, filled from the
latest round's arrays (read once per round and kept) and encoded again.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from api.storage.base import Store
from api.storage.records import Project

__all__ = ["LeaseRenderer", "project_fields"]


def project_fields(project: Project) -> dict[str, Any]:
    """The lease fields every item of a project shares."""
    return {
        "classes": [{"name": c.name, "description": c.description} for c in project.classes],
        "guidelines_version": project.settings.guidelines_version,
        "show_suggestions": project.settings.show_suggestions,
    }


@dataclass(frozen=True)
class _RoundView:
    """The latest round's predictions and the active LFs' votes, by pool position."""

    number: int
    probs: np.ndarray | None
    votes: dict[str, np.ndarray]


class LeaseRenderer:
    """Adds :func:`project_fields` (and suggestions, when shown) to encoded lease bodies."""

    def __init__(self) -> None:
        self._tails: dict[str, tuple[Project, bytes]] = {}
        self._rounds: dict[str, _RoundView] = {}
        self._lock = threading.Lock()

    def tail(self, project: Project) -> bytes:
        """``,"classes":...}``: what replaces the closing brace of a body."""
        hit = self._tails.get(project.id)
        if hit is not None and (hit[0] is project or hit[0] == project):
            return hit[1]
        got = b"," + orjson.dumps(project_fields(project))[1:]
        with self._lock:
            self._tails[project.id] = (project, got)
        return got

    async def render(self, body: bytes, project: Project, store: Store,
                     call: Callable[[Callable[[], bytes]], Awaitable[bytes]]) -> bytes:
        """The body with the render fields; ``call`` runs the store reads suggestions need where
        the hot path runs its store calls."""
        if not project.settings.show_suggestions:
            return body[:-1] + self.tail(project)
        return await call(lambda: self.with_suggestions(body, project, store))

    def with_suggestions(self, body: bytes, project: Project, store: Store) -> bytes:
        doc = orjson.loads(body)
        doc.update(project_fields(project))
        view = self._round_view(project, store)
        names = project.class_names
        for it in doc["items"]:
            it["suggestion"], it["lf_votes"] = None, {}
            predicted = it["reasons"].get("predicted")
            if isinstance(predicted, int) and 0 <= predicted < len(names):
                it["reasons"]["predicted_class"] = names[predicted]
            if view is None:
                continue
            seq = store.get_item(project.id, it["id"]).seq
            if view.probs is not None and 0 <= seq < len(view.probs):
                p = view.probs[seq]
                k = int(np.argmax(p))
                it["suggestion"] = {"label": names[k], "confidence": round(float(p[k]), 4)}
            it["lf_votes"] = {lf: names[int(v[seq])] for lf, v in view.votes.items()
                              if 0 <= seq < len(v) and 0 <= int(v[seq]) < len(names)}
        return orjson.dumps(doc)

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
