"""Gold (honeypot) items: items whose answer an engineer knows, marked by id or taken from the
labels the items' file carried.

Their answers score the annotators (accuracy on gold) and never become training labels: in rounds
and export the known answer stands in for the answers' consensus. The marks are project data, one
array per project (``gold``: the known class per pool position, -1 where the item is not gold),
so every replica sees the same. Changes take a short per-project lock, so two engineers marking
at once cannot lose one another's marks.

A gold item lives in the store's gold pool with ``required`` set to :data:`GOLD_REQUIRED`, so
every annotator can get it once; leases draw from that pool at the project's ``gold_rate``
(:func:`api.service.annotate.lease_request`), and only there. Unmarked, an item goes back to its
pool with the answers its redundancy draw asks for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from api.storage.base import Store
from api.storage.records import required_answers
from labeling.errors import Conflict, InvalidInput, SchemaError

__all__ = ["GOLD_ARRAY", "GOLD_REQUIRED", "gold_labels", "keep_gold", "list_gold", "mark_gold"]

GOLD_ARRAY = "gold"
GOLD_REQUIRED = 1000  # the store's largest ``required``: every annotator can answer a gold item
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

    Returns ``{"gold": items now gold, "marked": n, "unmarked": n}``. Everything is checked
    before anything is written; the pool moves and the marks are then written one after the
    other under the lock (a change cut short between them is completed by sending it again).
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
        ids_of: dict[int, str] = {}
        for item_id, label in labels.items():
            seq = store.get_item(project_id, item_id).seq
            chosen[seq], ids_of[seq] = _class_index(label, project.class_names, item_id), item_id
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
                    ids_of.setdefault(it.seq, it.id)
            if wanted is not None:
                for item_id in wanted:  # NotFound for ids the pool does not have
                    store.get_item(project_id, item_id)
        unmarked = {store.get_item(project_id, item_id).seq: item_id for item_id in unmark}
        dropped = [seq for seq in unmarked if gold[seq] >= 0]  # only gold items change pool
        if chosen:
            store.require(project_id, {ids_of[seq]: GOLD_REQUIRED for seq in chosen}, now=now,
                          pool="gold")
        if dropped:
            s = project.settings
            store.require(project_id, {unmarked[seq]: required_answers(
                unmarked[seq], s.redundancy_fraction, s.redundancy_k) for seq in dropped},
                now=now, pool="main")
        for seq, label in chosen.items():
            gold[seq] = label
        gold[dropped] = -1
        store.put_array(project_id, GOLD_ARRAY, gold.astype(np.int16))
    finally:
        store.release_lock(lock, owner)
    return {"gold": int((gold >= 0).sum()), "marked": len(chosen), "unmarked": len(dropped)}


def keep_gold(store: Store, project_id: str, *, now: float) -> int:
    """Give the gold items :data:`GOLD_REQUIRED` again (after a change of the redundancy
    settings drew every item's ``required`` afresh); how many there are."""
    gold = gold_labels(store, project_id, store.count_items(project_id))
    if not (gold >= 0).any():
        return 0
    ids = [it.id for chunk in store.iter_items(project_id) for it in chunk if gold[it.seq] >= 0]
    return store.require(project_id, dict.fromkeys(ids, GOLD_REQUIRED), now=now, pool="gold")


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
