"""Redis store: shared state for several coordinator replicas (the model is
:mod:`api.storage.base`'s).

Leases, submissions, renewals, releases, sweeps and ``require`` are the Lua scripts of
:mod:`api.storage.redis_common`, each atomic across replicas (run from
:mod:`api.storage.redis_leases`, mixed in); adding items is one MULTI/EXEC; the other
read-modify-write methods use WATCH/MULTI. Connection failures, timeouts, a server still loading
its AOF, a read-only replica and out-of-memory refusals are raised as :class:`StoreUnavailable`
``from`` the redis-py error, naming the server without its credentials.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.storage.base import Store, StoreUnavailable
from api.storage.codec import array_to_bytes, bytes_to_array, dumps, from_json, to_json
from api.storage.keys import SEP, Keys
from api.storage.records import Item, Project, ProjectSettings, required_answers
from api.storage.redis_common import LEASE_SCRIPTS, _item, _plain, refusal, source
from api.storage.redis_leases import RedisLeaseOps
from api.storage.rules import check_upload
from labeling.errors import Conflict, InvalidInput, NotFound

__all__ = ["RedisStore", "StoreUnavailable"]

log = logging.getLogger(__name__)

# server states that make a call fail without touching data: retry later, or fix the server
_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError,
                redis.exceptions.OutOfMemoryError)


def _guard_all(cls: type) -> type:
    """Re-raise redis-py's availability errors in the :class:`Store` methods (and
    ``durability``) as :class:`StoreUnavailable`."""

    def guarded(method: Callable) -> Callable:
        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except _UNAVAILABLE as exc:
                raise StoreUnavailable(
                    f"Redis at {self.where} is unavailable ({type(exc).__name__}: {exc}); the call "
                    "may or may not have taken effect: retry it once the server answers (a "
                    "submission with its idempotency key)") from exc

        return call

    for name in (*Store.__abstractmethods__, "durability"):
        setattr(cls, name, guarded(getattr(cls, name)))
    return cls


@_guard_all
class RedisStore(RedisLeaseOps, Store):
    """Store on one Redis server (or a primary with replicas; not Redis Cluster) at ``url``
    (``redis://[:password@]host:port/db``, ``rediss://``, ``unix://``). ``namespace`` prefixes
    every key. ``require_durable``: refuse (``InvalidInput``) a server without ``appendonly yes``
    and ``maxmemory-policy noeviction`` instead of logging a warning."""

    def __init__(self, url: str, *, namespace: str = "labelloop", require_durable: bool = False) -> None:
        self.k = Keys(namespace)
        # never re-send a call after a failure: a script that may have run must not run twice
        # (the pool still replaces connections that died while idle before handing them out)
        self.r = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_timeout=30,
                                      socket_connect_timeout=10, health_check_interval=30)
        kw = self.r.connection_pool.connection_kwargs  # where, without user or password
        self.where = (f"unix://{kw['path']}" if kw.get("path")
                      else f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}")
        self._scripts = {name: self.r.register_script(source(name)) for name in LEASE_SCRIPTS}
        self.check_durability(require_durable)

    # -- plumbing -------------------------------------------------------------------------
    def _lease_script(self, name: str, project_id: str, *args: Any, client: Any = None) -> Any:
        """Run a lease script (:data:`~api.storage.redis_common.LEASE_SCRIPTS`) on a project (on
        ``client``: a pipeline queues it); its refusals are raised as store errors (:func:`refusal`)."""
        keys = [*self.k.project(project_id), self.k.clock(), self.k.projects()]
        try:
            return self._scripts[name](keys=keys, args=[self.k.lease(""), *args], client=client)
        except redis.ResponseError as exc:
            raise refusal(exc) from None

    def ping(self) -> bool:
        try:
            return bool(self.r.ping())
        except _UNAVAILABLE:
            return False

    def close(self) -> None:
        self.r.close()

    def _watched(self, keys: Sequence[str], apply: Callable[[Any], Any]) -> Any:
        """Optimistic transaction: ``apply(pipe)`` reads (immediate mode), calls ``pipe.multi()``
        and queues its writes; re-run while a watched key changed in between. Returns its result."""
        return self.r.transaction(apply, *keys, value_from_callable=True)

    def _project_doc(self, project_id: str) -> bytes:
        doc = self.r.hget(self.k.projects(), project_id)
        if doc is None:
            raise NotFound(f"unknown project {project_id!r}")
        return doc

    # -- projects -------------------------------------------------------------------------
    def create_project(self, project: Project) -> Project:
        if not self.r.hsetnx(self.k.projects(), project.id, to_json(project)):
            raise Conflict(f"project {project.id!r} already exists")
        return project

    def get_project(self, project_id: str) -> Project:
        return from_json(Project, self._project_doc(project_id))

    def list_projects(self) -> list[Project]:
        docs = self.r.hgetall(self.k.projects())
        return sorted((from_json(Project, d) for d in docs.values()), key=lambda p: p.id)

    def update_settings(self, project_id: str, settings: ProjectSettings, *,
                        guidelines: str | None = None) -> Project:
        key = self.k.projects()

        def apply(pipe: Any) -> tuple[Project, Project]:
            before = from_json(Project, self._project_doc(project_id))
            project = replace(before, settings=settings, guidelines=before.guidelines
                              if guidelines is None else guidelines)
            pipe.multi()
            pipe.hset(key, project_id, to_json(project))
            return before, project

        before, project = self._watched([key], apply)
        seq, old, s = self.k.p(project_id, "seq"), before.settings, settings
        if (s.redundancy_fraction, s.redundancy_k) == (old.redundancy_fraction, old.redundancy_k):
            return project
        # drawn again, a script call per 5000 items (each atomic with leases; a change is rare)
        for start in range(0, int(self.r.llen(seq)), 5000):
            ids = [i.decode() for i in self.r.lrange(seq, start, start + 4999)]
            self._require(project_id, {i: required_answers(i, s.redundancy_fraction, s.redundancy_k)
                                       for i in ids})
        return project

    # -- items ----------------------------------------------------------------------------
    def add_items(self, project_id, items, *, on_conflict, rand_keys):
        pools = dict(zip((it.id for it in items), check_upload(items, on_conflict, rand_keys)))
        ids = list(pools)
        for item_id in ids:
            _plain("item id", item_id)
        keys = [float(k) for k in rand_keys]
        k = self.k

        def apply(pipe: Any) -> tuple[int, int]:
            s = from_json(Project, self._project_doc(project_id)).settings
            known: set[str] = set()
            for start in range(0, len(ids), 10_000):
                chunk = ids[start:start + 10_000]
                got = pipe.hmget(k.p(project_id, "state"), chunk)
                known.update(i for i, pos in zip(chunk, got, strict=True) if pos is not None)
            if known and on_conflict == "reject":
                raise Conflict(f"{len(known)} item id(s) already exist (first: {min(known)!r}); "
                               "upload with on_conflict='upsert' to replace them")
            seq = int(pipe.llen(k.p(project_id, "seq")))
            pipe.multi()
            new = [(it, key) for it, key in zip(items, keys, strict=True) if it.id not in known]
            for start in range(0, len(items), 5000):
                pipe.hset(k.p(project_id, "items"), mapping={it.id: dumps({
                    "text": it.text, "features": it.features, "meta": it.meta, "gold": it.gold,
                    "votes": it.votes}) for it in items[start:start + 5000]})
            for start in range(0, len(new), 5000):
                part = [(it, key, pools[it.id]) for it, key in new[start:start + 5000]]
                pipe.hset(k.p(project_id, "state"), mapping={it.id: SEP.join(map(str, (
                    seq + start + j, int(it.is_eval or pool == "eval"), repr(key), pool, repr(key),
                    required_answers(it.id, s.redundancy_fraction, s.redundancy_k), 0, 0)))
                    for j, (it, key, pool) in enumerate(part)})
                pipe.rpush(k.p(project_id, "seq"), *(it.id for it, _, _ in part))
                for pool, what in (("main", "pool"), ("eval", "evalpool"), ("gold", "goldpool")):
                    if members := {it.id: key for it, key, p in part if p == pool}:
                        pipe.zadd(k.p(project_id, what), members)
                if evals := [it.id for it, _, p in part if it.is_eval or p == "eval"]:
                    pipe.sadd(k.p(project_id, "evalset"), *evals)
            return len(new), len(items) - len(new)

        return self._watched([k.p(project_id, "state"), k.projects()], apply)

    def count_items(self, project_id: str) -> int:
        self._project_doc(project_id)
        return int(self.r.llen(self.k.p(project_id, "seq")))

    def _items(self, project_id: str, ids: list[bytes | str]) -> list[Item]:
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(self.k.p(project_id, "items"), ids)
        pipe.hmget(self.k.p(project_id, "state"), ids)
        docs, states = pipe.execute()
        return [_item(item_id.decode() if isinstance(item_id, bytes) else item_id, doc, p)
                for item_id, doc, p in zip(ids, docs, states, strict=True)]

    def get_item(self, project_id: str, item_id: str) -> Item:
        self._project_doc(project_id)
        if not self.r.hexists(self.k.p(project_id, "items"), item_id):
            raise NotFound(f"unknown item {item_id!r} in project {project_id!r}")
        return self._items(project_id, [item_id])[0]

    def _item_chunk(self, project_id: str, start: int, n: int) -> list[Item]:
        return self._items(project_id, self.r.lrange(self.k.p(project_id, "seq"), start, start + n - 1))

    # -- small records (see Store._records) -----------------------------------------------
    def _records(self, names: Sequence[str]) -> list[bytes | None]:
        return self.r.mget([self.k.record(n) for n in names]) if names else []

    def _swap(self, names, change):
        def apply(pipe: Any) -> Any:
            writes, result = change([pipe.get(self.k.record(n)) for n in names])
            if writes:
                pipe.multi()
                pipe.mset({self.k.record(n): value for n, value in writes.items()})
            return result

        return self._watched([self.k.record(n) for n in names], apply)

    def put_array(self, project_id: str, name: str, array: np.ndarray) -> None:
        self._project_doc(project_id)
        self.r.set(self.k.array(project_id, name), array_to_bytes(array))

    def get_array(self, project_id: str, name: str) -> np.ndarray | None:
        data = self.r.get(self.k.array(project_id, name))
        return None if data is None else bytes_to_array(data)

    # -- durability -----------------------------------------------------------------------
    def durability(self) -> dict[str, str | None]:
        """The server's ``appendonly``, ``appendfsync`` and ``maxmemory-policy`` (None: unknown),
        and ``source``: ``"config"``, ``"info"`` (CONFIG disabled; INFO has no appendfsync) or
        None when the server answers neither."""
        names = ("appendonly", "appendfsync", "maxmemory-policy")
        try:
            cfg = {name: self.r.config_get(name).get(name) or None for name in names}
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
        problems = []
        if cfg["appendonly"] != "yes":
            problems.append(f"appendonly={cfg['appendonly']} (set appendonly yes, with appendfsync "
                            "everysec or always)")
        if cfg["maxmemory-policy"] != "noeviction":
            problems.append(f"maxmemory-policy={cfg['maxmemory-policy']} (set noeviction)")
        blocking = bool(problems)
        if cfg["source"] != "config":
            problems.append("CONFIG is disabled, so these were read from INFO" if cfg["source"]
                            else "it answers neither CONFIG GET nor INFO, so these are unknown")
        if cfg["appendfsync"] == "no":
            problems.append("appendfsync=no (the OS flushes the AOF when it likes; set everysec "
                            "or always)")
        if not problems:
            return
        message = (f"Redis at {self.where}: {'; '.join(problems)}. labelloop needs appendonly yes "
                   "and maxmemory-policy noeviction to guarantee that no acknowledged annotation "
                   "is lost on a restart or under memory pressure.")
        if require and blocking:
            raise InvalidInput(message + " Set them, or start without LABELLOOP_REQUIRE_DURABLE.")
        log.warning(message)
