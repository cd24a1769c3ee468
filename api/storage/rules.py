"""The checks and rules both stores apply the same way: argument checks made before a transaction
opens, the reasons a lease gives for pool-order items, where gold items go in a lease, and a
round's outputs encoded for storage."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from api.storage.codec import array_to_bytes, dumps, loads, to_json
from api.storage.records import POOLS, Annotation, Item, LeasedItem, Round
from labeling.errors import Conflict, InvalidInput, StaleToken

__all__ = ["LOCK", "check_fence", "check_lease", "check_required", "check_submission", "check_ttl",
           "check_upload", "encode_round", "idem_payload", "leased", "mix_gold"]

LOCK = "lock:"  # the record of lock NAME is LOCK + NAME: JSON {owner, expires_at, token}

# what a lease says about an item taken in pool order (gold items look like main ones)
REASONS = {"main": {"strategy": "pool_order"}, "eval": {"strategy": "evaluation_slice"},
           "gold": {"strategy": "pool_order"}, "review": {"strategy": "review"}}


def check_pool(pool: str, allowed: Sequence[str] = POOLS) -> str:
    if pool not in allowed:
        raise InvalidInput(f"pool must be one of {', '.join(allowed)}, got {pool!r}")
    return pool


def check_lease(n: int, n_eval: int, n_gold: int, pool: str) -> None:
    """Refuse a bad lease request before any transaction opens."""
    if n < 0 or n_eval < 0 or n_gold < 0:
        raise InvalidInput(f"lease size must be >= 0, got n={n}, n_eval={n_eval}, n_gold={n_gold}")
    check_pool(pool, ("main", "review"))


def check_required(required: Mapping[str, int], pool: str | None) -> None:
    for item_id, k in required.items():
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
            raise InvalidInput(f"required answers of item {item_id!r} must be an integer in "
                               f"1..1000, got {k!r}")
    if pool is not None:
        check_pool(pool)


def check_upload(items: Sequence[Item], on_conflict: str, rand_keys: np.ndarray) -> list[str]:
    """Refuse a bad :meth:`Store.add_items` call; the pool each item enters if it is new: its
    own, ``eval`` for the evaluation slice (items enter ``review`` through ``require`` only)."""
    if on_conflict not in ("reject", "upsert"):
        raise InvalidInput(f"on_conflict must be 'reject' or 'upsert', got {on_conflict!r}")
    if len(rand_keys) != len(items):
        raise InvalidInput(f"need one rand_key per item, got {len(rand_keys)} for {len(items)} items")
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise Conflict(f"item id {it.id!r} appears twice in one upload")
        seen.add(it.id)
    return ["eval" if it.is_eval and it.pool == "main" else check_pool(it.pool, POOLS[:3])
            for it in items]


def check_ttl(ttl_s: float) -> None:
    if not ttl_s > 0:
        raise InvalidInput(f"ttl_s must be > 0, got {ttl_s!r}")


def check_fence(fence: tuple[str, int] | None, read: Callable[[str], str | bytes | None]) -> None:
    """Refuse a write fenced by ``fence`` (lock name, token) unless the token is still the lock's
    latest; ``read(record name)`` reads the lock's record in the writer's atomic step."""
    if fence is not None:
        name, token = fence
        latest = loads(read(LOCK + name) or "{}").get("token")
        if latest != token:
            raise StaleToken(f"stale fencing token {token} for lock {name!r} (latest: {latest}): "
                             "its holder lost the lock, write refused")


def check_submission(annotations: Sequence[Annotation]) -> None:
    for a in annotations:
        if a.kind == "correct" and a.lease_id is not None:
            raise InvalidInput(f"a correction names no lease, got lease {a.lease_id!r} for item "
                               f"{a.item_id!r}")


def idem_payload(ann: Annotation) -> str:
    """What an idempotency key stands for: a repeat must carry the same."""
    return dumps([ann.item_id, ann.kind, ann.label, ann.comment, ann.lease_id])


def leased(item: Item, reasons: str | bytes | None) -> LeasedItem:
    """An item as a lease hands it out, with its queue reasons (None: those of pool order)."""
    return LeasedItem(item, loads(reasons) if reasons else dict(REASONS[item.pool]),
                      item.pool == "eval", item.pool)


def mix_gold(order: list[str], gold: list[str], start: int, end: int, lease_id: str) -> list[str]:
    """Place ``gold`` items among ``order[start:end]`` (the pool-order items), each at a place drawn
    by a hash of the lease and item ids, so a lease does not show which items are gold. The Redis
    lease script does the same."""
    out = list(order)
    for g in gold:
        h = int(hashlib.sha1(f"{lease_id}\x1f{g}".encode()).hexdigest()[:8], 16)
        out.insert(start + h % (end - start + 1), g)
        end += 1
    return out


class EncodedRound(NamedTuple):  # a round's outputs as both backends store them
    arrays: dict[str, bytes]  # name -> ``array_to_bytes``
    queue: list[tuple[str, float, str]]  # (item id, score, reasons JSON), best first
    round_json: str


def encode_round(project_id: str, arrays: Mapping[str, np.ndarray],
                 queue: tuple[Sequence[str], Sequence[float], Sequence[dict]],
                 rnd: Round) -> EncodedRound:
    """Check and encode :meth:`Store.commit_round`'s arguments."""
    if rnd.project_id != project_id:
        raise InvalidInput(f"round of project {rnd.project_id!r} committed to project {project_id!r}")
    ids, scores, reasons = queue
    if not len(ids) == len(scores) == len(reasons):
        raise InvalidInput(f"queue needs as many scores and reasons as item ids, got "
                           f"{len(ids)} ids, {len(scores)} scores, {len(reasons)} reasons")
    for name in arrays:
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"array names must be non-empty strings, got {name!r}")
    return EncodedRound(
        {name: array_to_bytes(np.asarray(a)) for name, a in arrays.items()},
        [(str(i), float(s), dumps(r)) for i, s, r in zip(ids, scores, reasons, strict=True)],
        to_json(rnd),
    )
