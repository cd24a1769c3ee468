"""What the Redis store's modules share: client options, availability errors, the guard that maps
them, the item codec the Lua scripts' separator implies, the Lua scripts and the start-up
durability check.

The scripts are the ``.lua`` files beside this module, loaded once; each runs atomically on the
server. A lease script (:data:`LEASE_SCRIPTS`) gets the project's keys as ``KEYS``
(:data:`api.storage.keys.PROJECT` order, then the lease clock and the projects hash) and the lease
key prefix as ``ARGV[1]``; :func:`source` puts a line naming them (``K.pool`` ...) and
``prelude.lua`` before it, so no script builds a key. Item and annotation JSON is produced by
Python and stored as opaque strings, never re-encoded by Lua (whose JSON encoder rounds floats).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import redis

from api.storage.base import Store, StoreUnavailable
from api.storage.codec import loads
from api.storage.keys import PROJECT, SEP
from api.storage.records import Item
from labeling.errors import Conflict, InvalidInput, NotFound

__all__ = ["LEASE_SCRIPTS", "StoreUnavailable", "source"]

LEASE_SCRIPTS = ("lease", "submit", "renew", "release", "reclaim", "require", "queue_depth")


def _read(name: str) -> str:
    return files("api.storage").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def source(name: str) -> str:
    """The text of script ``name`` as the server runs it."""
    names = ", ".join(f"{what} = KEYS[{i}]" for i, what in enumerate(PROJECT, 1))
    n = len(PROJECT)
    header = f"local K = {{{names}, clock = KEYS[{n + 1}], projects = KEYS[{n + 2}]}}\n"
    return header + _read("prelude") + _read(name)

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


def refusal(exc: redis.ResponseError) -> Exception:
    """A script's refusal (``CONFLICT ...``, ``NOTFOUND ...``) as that store error; any other
    error as it is."""
    for prefix, err in (("CONFLICT ", Conflict), ("NOTFOUND ", NotFound)):
        if str(exc).startswith(prefix) and not isinstance(exc, _UNAVAILABLE):
            return err(str(exc)[len(prefix):])
    return exc


def guard_all(cls: type) -> type:
    """Wrap each method of the :class:`Store` interface in :func:`_guarded`."""
    for name in Store.__abstractmethods__:
        setattr(cls, name, _guarded(getattr(cls, name)))
    return cls


def _plain(what: str, value: str | None) -> None:
    """Refuse the field separator inside ids that the Lua scripts join with it."""
    if value is not None and SEP in value:
        raise InvalidInput(f"{what} {value!r} contains the control character U+001F, which the "
                           "Redis store reserves")


_SEP_BYTES = SEP.encode()


def _item(item_id: str, doc: bytes, state: bytes) -> Item:
    """An item from its stored document and its state (seq, is_eval, rand_key, pool, ...)."""
    d = loads(doc)
    seq, is_eval, _, pool = state.split(_SEP_BYTES, 4)[:4]
    votes = d["votes"]
    return Item(item_id, int(seq), d["text"], d["features"], d["meta"],
                None if votes is None else tuple(votes), d["gold"], is_eval == b"1", pool.decode())


log = logging.getLogger("api.storage.redis")


class DurabilityCheck:
    """The server's persistence settings, read over ``self.r`` (see :mod:`api.storage.redis`)."""

    @_guarded
    def durability(self) -> dict[str, str | None]:
        """The server's ``appendonly``, ``appendfsync`` and ``maxmemory-policy`` (None: unknown),
        and ``source``: ``"config"``, ``"info"`` (CONFIG disabled; INFO has no appendfsync) or
        None when the server answers neither."""
        names = ("appendonly", "appendfsync", "maxmemory-policy")
        try:
            cfg: dict[str, str | None] = {}
            for name in names:
                got = self.r.config_get(name)
                value = got.get(name, got.get(name.encode()))
                cfg[name] = (value.decode() if isinstance(value, bytes) else value) or None
            return {**cfg, "source": "config"}
        except redis.ResponseError:  # CONFIG renamed or denied (managed Redis): try INFO
            pass
        try:
            aof = self.r.info("persistence").get("aof_enabled")
            policy = self.r.info("memory").get("maxmemory_policy")
        except redis.ResponseError:
            return {**dict.fromkeys(names), "source": None}
        return {"appendonly": None if aof is None else ("yes" if int(aof) else "no"),
                "appendfsync": None, "maxmemory-policy": policy or None, "source": "info"}

    def check_durability(self, require: bool) -> None:
        """Refuse (``require``) or warn about a server that could lose acknowledged annotations."""
        cfg = self.durability()
        if cfg["source"] is None:
            message = (f"Redis at {self.where} answers neither CONFIG GET nor INFO, so labelloop "
                       "cannot check that it runs with appendonly yes and maxmemory-policy "
                       "noeviction; make sure it does, or acknowledged annotations can be lost")
            if require:
                raise InvalidInput(message + " (or start without LABELLOOP_REQUIRE_DURABLE)")
            log.warning(message)
            return
        problems = []
        if cfg["appendonly"] != "yes":
            problems.append(f"appendonly={cfg['appendonly']} (set appendonly yes, with appendfsync "
                            "everysec or always)")
        if cfg["maxmemory-policy"] != "noeviction":
            problems.append(f"maxmemory-policy={cfg['maxmemory-policy']} (set noeviction)")
        if cfg["source"] == "info":
            problems.append("CONFIG is disabled, so these were read from INFO")
        if cfg["appendfsync"] == "no":
            problems.append("appendfsync=no (the OS flushes the AOF when it likes; set everysec "
                            "or always)")
        if not problems:
            return
        blocking = cfg["appendonly"] != "yes" or cfg["maxmemory-policy"] != "noeviction"
        message = (f"Redis at {self.where}: {'; '.join(problems)}. labelloop needs appendonly yes "
                   "and maxmemory-policy noeviction to guarantee that no acknowledged annotation "
                   "is lost on a restart or under memory pressure.")
        if require and blocking:
            raise InvalidInput(message + " Set them, or start without LABELLOOP_REQUIRE_DURABLE.")
        log.warning(message)

