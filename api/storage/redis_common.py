"""What the Redis store's modules share: client options, availability errors, the guard that maps
them, and the item codec the Lua scripts' separator implies."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import redis

from api.storage.base import StoreUnavailable
from api.storage.codec import loads
from api.storage.keys import SEP
from api.storage.records import Item
from labeling.errors import InvalidInput, StaleToken

__all__ = ["StoreUnavailable"]

# how the client talks to the server
_CLIENT_OPTIONS: dict[str, Any] = {"decode_responses": False, "socket_timeout": 30,
                                   "socket_connect_timeout": 10, "health_check_interval": 30}

# server states that make a call fail without touching data: retry later, or fix the server
_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError,
                redis.exceptions.OutOfMemoryError)


def _guarded(method: Callable) -> Callable:
    """Re-raise redis-py's availability errors as :class:`StoreUnavailable`."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._unavailable():
            return method(self, *args, **kwargs)

    return call


def _stale(name: str, token: int, latest: bytes | None) -> StaleToken:
    """The refusal of a write fenced by ``token`` when ``latest`` is the lock's current token."""
    return StaleToken(f"stale fencing token {token} for lock {name!r} (latest: "
                      f"{None if latest is None else int(latest)}): its holder lost the lock, "
                      "write refused")


def _plain(what: str, value: str | None) -> None:
    """Refuse the field separator inside ids that the Lua scripts join with it."""
    if value is not None and SEP in value:
        raise InvalidInput(f"{what} {value!r} contains the control character U+001F, which the "
                           "Redis store reserves")


_SEP_BYTES = SEP.encode()


def _item(item_id: str, doc: bytes, pos: bytes) -> Item:
    """An item from its stored document and its position record (seq, is_eval, ...)."""
    d = loads(doc)
    seq, is_eval, _ = pos.split(_SEP_BYTES)
    votes = d["votes"]
    return Item(item_id, int(seq), d["text"], d["features"], d["meta"],
                None if votes is None else tuple(votes), d["gold"], is_eval == b"1")
