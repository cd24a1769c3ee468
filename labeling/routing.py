"""Disagreement routing: which items need another annotator, and which go to adjudication.

Once an item has the answers its redundancy asked for, answers that agree less than
``min_agreement`` (the share of annotators giving the most-answered class) make it *disputed*:
it asks for one more distinct annotator, one at a time, until ``max_required`` annotators have
answered; an item still disputed then goes to the review pool, where a reviewer decides. An item
with a reviewer's decision, and a gold item, is never routed.

A decision is a pure function of the item's events in the log and the settings, and it names the
required count to *set* (the answers so far plus one), not an increment: two replicas deciding on
the same log write the same value, so a decision may be applied twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from labeling.errors import InvalidInput

__all__ = ["ANSWER_KINDS", "VOTE_KINDS", "ItemAnswers", "Route", "current_votes", "route"]

ANSWER_KINDS = ("label", "review")  # the events a store counts toward an item's ``required``
# the events that set ("label", "correct") or withdraw ("skip", "retract") an annotator's vote
VOTE_KINDS = ("label", "correct", "skip", "retract")


@dataclass(frozen=True)
class ItemAnswers:
    """One item's events in log order: ``(annotator, kind, label)``, label None unless the kind
    carries one. ``base_required``: the answers its redundancy draw asks for."""

    item_id: str
    events: tuple[tuple[str, str, int | None], ...]
    base_required: int = 1
    gold: bool = False


@dataclass(frozen=True)
class Route:
    """Set the item's ``required`` to ``required``; ``pool`` "review" moves it to adjudication,
    None leaves it in its pool."""

    item_id: str
    required: int
    pool: str | None
    agreement: float
    annotators: int  # annotators whose vote stands


def current_votes(events: Iterable[tuple[str, str, int | None]]) -> dict[str, int]:
    """Each annotator's standing vote: their latest label or correction, unless a later skip or
    retraction withdrew it."""
    votes: dict[str, int] = {}
    for annotator, kind, label in events:
        if kind in ("label", "correct") and label is not None:
            votes[annotator] = label
        elif kind in ("skip", "retract"):
            votes.pop(annotator, None)
    return votes


def _agreement(votes: dict[str, int]) -> float:
    if not votes:
        return 0.0
    counts: dict[int, int] = {}
    for label in votes.values():
        counts[label] = counts.get(label, 0) + 1
    return max(counts.values()) / len(votes)


def route(items: Sequence[ItemAnswers], *, max_required: int, min_agreement: float) -> list[Route]:
    """The routing decisions for ``items`` (none for an item that needs nothing).

    An item is decided when at least ``base_required`` (and two) annotators' votes stand and their
    agreement is below ``min_agreement``: with fewer than ``max_required`` votes it needs one
    more answer (``required`` = its answer events + 1, where :data:`ANSWER_KINDS` count), else it
    goes to the review pool with the same ``required``. ``min_agreement`` 0 routes nothing.
    """
    if isinstance(max_required, bool) or not isinstance(max_required, int) or max_required < 1:
        raise InvalidInput(f"max_required must be an integer >= 1, got {max_required!r}")
    if not 0.0 <= min_agreement <= 1.0:
        raise InvalidInput(f"min_agreement must be in [0, 1], got {min_agreement!r}")
    out = []
    for it in items:
        if it.gold or any(kind == "review" for _, kind, _ in it.events):
            continue
        votes = current_votes(it.events)
        if len(votes) < max(2, it.base_required):
            continue
        agreement = _agreement(votes)
        if agreement >= min_agreement:
            continue
        answers = sum(kind in ANSWER_KINDS for _, kind, _ in it.events)
        pool = None if len(votes) < max_required else "review"
        out.append(Route(it.item_id, answers + 1, pool, agreement, len(votes)))
    return out
