"""Gold (honeypot) items: items whose answer an engineer knows, marked by id or taken from the
labels the items' file carried.

Their answers score the annotators (accuracy on gold) and never become training labels: in rounds
and export the known answer stands in for the answers' consensus. The marks are project data, one
array per project (``gold``: the known class per pool position, -1 where the item is not gold),
so every replica sees the same. Changes take a short per-project lock, so two engineers marking
at once cannot lose one another's marks.

Mixing gold items into batches at a configured rate is a lease change and comes with it; for now
a gold item is leased like any other item that still needs answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from api.storage.base import Store
from labeling.errors import Conflict, InvalidInput, SchemaError

__all__ = ["GOLD_ARRAY", "gold_labels", "list_gold", "mark_gold"]

GOLD_ARRAY = "gold"
LOCK_TTL_S = 60.0


def gold_labels(store: Store, project_id: str, n: int) -> np.ndarray:
    """(n,) int64: the known class of each pool position's item, -1 where it is not gold."""
    stored = store.get_array(project_id, GOLD_ARRAY)
    out = np.full(n, -1, dtype=np.int64)
    if stored is not None:
        m = min(n, len(stored))
        out[:m] = stored[:m]
    return out


def _class_index(label: int | str, names: list[str], item_id: str) -> int:
    if isinstance(label, bool) or not isinstance(label, int | str):
        raise SchemaError(f"gold item {item_id!r}: label must be a class index or name, got {label!r}")
    if isinstance(label, str):
        if label not in names:
            raise SchemaError(f"gold item {item_id!r}: unknown class {label!r}; classes are {names}")
        return names.index(label)
    if not 0 <= label < len(names):
        raise SchemaError(f"gold item {item_id!r}: label {label} is not a class index "
                          f"0..{len(names) - 1}")
    return label


def mark_gold(
    store: Store, project_id: str, *, labels: Mapping[str, int | str] | None = None,
    from_file: bool = False, ids: Sequence[str] | None = None, unmark: Sequence[str] = (),
    now: float, owner: str,
) -> dict:
    """Mark items gold, or unmark them, all or nothing.

    Parameters
    ----------
    labels : {item id: class index or name}: mark these with these known answers
    from_file : mark items with the label their file carried (``ids`` of them, or every item that
        has one); an item in ``ids`` without one is refused
    unmark : item ids to make ordinary items again
    now, owner : for the per-project lock (``Conflict`` while another change holds it)

    Returns ``{"gold": items now gold, "marked": n, "unmarked": n}``.
    """
    project = store.get_project(project_id)
    labels = dict(labels or {})
    if not labels and not from_file and not unmark:
        raise InvalidInput("give labels (item id -> class), from_file, or unmark")
    if ids is not None and not from_file:
        raise InvalidInput("ids selects items for from_file; use labels to mark items by id")
    both = sorted(set(labels) & set(unmark))
    if both:
        raise InvalidInput(f"items both marked and unmarked: {both[:5]}")
    lock = f"gold:{project_id}"
    if store.acquire_lock(lock, owner, LOCK_TTL_S, now) is None:
        raise Conflict(f"another change to project {project_id!r}'s gold items is under way; retry")
    try:
        n = store.count_items(project_id)
        gold = gold_labels(store, project_id, n)
        chosen: dict[int, int] = {}
        for item_id, label in labels.items():
            chosen[store.get_item(project_id, item_id).seq] = _class_index(
                label, project.class_names, item_id)
        if from_file:
            wanted = None if ids is None else set(ids)
            for chunk in store.iter_items(project_id):
                for it in chunk:
                    if wanted is not None and it.id not in wanted:
                        continue
                    if it.gold is None:
                        if wanted is not None:
                            raise InvalidInput(f"item {it.id!r} has no label in its file to mark "
                                               "it gold with")
                        continue
                    chosen.setdefault(it.seq, it.gold)
            if wanted is not None:
                for item_id in wanted:  # NotFound for ids the pool does not have
                    store.get_item(project_id, item_id)
        dropped = [store.get_item(project_id, item_id).seq for item_id in unmark]
        for seq, label in chosen.items():
            gold[seq] = label
        gold[dropped] = -1
        store.put_array(project_id, GOLD_ARRAY, gold.astype(np.int16))
    finally:
        store.release_lock(lock, owner)
    return {"gold": int((gold >= 0).sum()), "marked": len(chosen), "unmarked": len(dropped)}


def list_gold(store: Store, project_id: str) -> list[dict]:
    """The gold items: ``{"id", "label"}`` (class name) in pool order."""
    project = store.get_project(project_id)
    gold = gold_labels(store, project_id, store.count_items(project_id))
    if not (gold >= 0).any():
        return []
    out = []
    for chunk in store.iter_items(project_id):
        for it in chunk:
            if gold[it.seq] >= 0:
                out.append({"id": it.id, "label": project.class_names[gold[it.seq]]})
    return out
