"""Disagreement routing after a submit (the decisions are :func:`labeling.routing.route`).

After answers are stored, each item they touched is decided on the log as it is now: a disputed
item asks for one more distinct annotator (``Store.require``), or goes to the review pool at
``max_required``. Decisions set a value (answers so far + 1) rather than add one, so two replicas
that decide on the same log write the same thing. A decision made on an older log could still land
after one made on a newer log and undo it, so after writing, the log of the touched items is read
again and, if it moved meanwhile, the items are decided again (a few passes at most): the last
writer has always decided on the log as it stood after its write.

The log's events are read incrementally through :class:`AnswerIndex` (the log only grows), so a
submit reads only the events appended since the previous one on this process. Each round routes
every item once more (:func:`api.service.rounds.run_round`), for answers whose routing was never
applied (a replica that stopped between storing them and routing them).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np

from api.service.gold import GOLD_ARRAY
from api.storage.base import Store
from api.storage.records import Annotation, SubmitResult, required_answers
from labeling.routing import VOTE_KINDS, ItemAnswers, Route, route

__all__ = ["MAX_PASSES", "ROUTED_KINDS", "AnswerIndex", "route_all", "route_items",
           "route_submitted"]

MAX_PASSES = 4
ROUTED_KINDS = VOTE_KINDS  # a submit of these may change an item's dispute

Event = tuple[str, str, int | None]  # (annotator, kind, label)


class AnswerIndex:
    """Each project's log events by item, as ``(annotator, kind, label)``, brought up to date on
    every read with the events appended since (per process; safe across threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}  # project -> last log position read
        self._events: dict[str, dict[str, list[Event]]] = {}

    @classmethod
    def of(cls, project_id: str, annotations: Sequence[Annotation]) -> AnswerIndex:
        """An index that starts from ``annotations``, a project's log as the caller read it."""
        index = cls()
        by_item = index._events.setdefault(project_id, {})
        for a in annotations:
            by_item.setdefault(a.item_id, []).append((a.annotator, a.kind, a.label))
        index._seen[project_id] = annotations[-1].seq if annotations else 0
        return index

    def events(self, store: Store, project_id: str,
               item_ids: Iterable[str]) -> dict[str, tuple[Event, ...]]:
        """The current events of ``item_ids`` in log order (an item without any: empty)."""
        with self._lock:
            seen = self._seen.get(project_id, 0)
            by_item = self._events.setdefault(project_id, {})
            for a in store.annotations(project_id, since=seen):
                by_item.setdefault(a.item_id, []).append((a.annotator, a.kind, a.label))
                seen = max(seen, a.seq)
            self._seen[project_id] = seen
            return {i: tuple(by_item.get(i, ())) for i in item_ids}


def _gold_ids(store: Store, project_id: str, item_ids: Sequence[str]) -> set[str]:
    gold = store.get_array(project_id, GOLD_ARRAY)
    if gold is None or not (np.asarray(gold) >= 0).any():
        return set()
    out = set()
    for item_id in item_ids:
        seq = store.get_item(project_id, item_id).seq
        if seq < len(gold) and gold[seq] >= 0:
            out.add(item_id)
    return out


def route_items(store: Store, index: AnswerIndex, project_id: str, item_ids: Iterable[str], *,
                now: float) -> list[Route]:
    """Decide ``item_ids`` on the current log and apply the decisions; the decisions of the last
    pass (an item routed twice appears once)."""
    wanted = sorted(set(item_ids))
    settings = store.get_project(project_id).settings
    if not wanted or settings.min_agreement <= 0:
        return []
    gold: set[str] | None = None
    applied: dict[str, Route] = {}
    events = index.events(store, project_id, wanted)
    for _ in range(MAX_PASSES):
        candidates = [ItemAnswers(i, events[i], required_answers(
            i, settings.redundancy_fraction, settings.redundancy_k)) for i in wanted]
        decided = route(candidates, max_required=settings.max_required,
                        min_agreement=settings.min_agreement)
        if decided and gold is None:
            gold = _gold_ids(store, project_id, [d.item_id for d in decided])
        decided = [d for d in decided if d.item_id not in (gold or ())]
        if not decided:
            break
        for pool in (None, "review"):
            chosen = {d.item_id: d.required for d in decided if d.pool == pool}
            if chosen:
                store.require(project_id, chosen, now=now, pool=pool)
        applied.update((d.item_id, d) for d in decided)
        after = index.events(store, project_id, wanted)
        if after == events:  # nothing moved while deciding: the writes stand on this log
            break
        events = after
    return list(applied.values())


def route_submitted(store: Store, index: AnswerIndex, project_id: str,
                    results: Sequence[SubmitResult], *, now: float) -> list[Route]:
    """Route the items a submit's votes touched. Duplicates too: a client that retries a submit
    whose routing failed (the answers were stored) routes them then."""
    touched = {r.annotation.item_id for r in results if r.annotation.kind in ROUTED_KINDS}
    return route_items(store, index, project_id, touched, now=now) if touched else []


def route_all(store: Store, project_id: str, annotations: Sequence[Annotation], *,
              now: float) -> list[Route]:
    """Route every item with a vote in ``annotations`` (the log as the caller read it; what was
    appended since is read here)."""
    touched = {a.item_id for a in annotations if a.kind in ROUTED_KINDS}
    return route_items(store, AnswerIndex.of(project_id, annotations), project_id, touched,
                       now=now)
