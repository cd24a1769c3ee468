"""Redis store: shared state for several coordinator replicas.

Leases, submissions, renewals, releases, sweeps and ``require`` are Lua scripts
(:mod:`api.storage.redis_common`, the lease model of :mod:`api.storage.base`), each atomic across
replicas; adding items is one MULTI/EXEC (all of an upload or none of it, also when the client
dies midway); the other read-modify-write methods use WATCH/MULTI. Key names live in
:mod:`api.storage.keys` only. Time is always passed in (``now``); the Redis clock is never read for
lease logic.

Errors. Connection failures, timeouts, a server still loading its AOF, a read-only replica and
out-of-memory refusals are raised as :class:`StoreUnavailable` (a ``LabelloopError``) ``from`` the
redis-py error; messages name the server without its credentials.

The queue, lease, annotation and round operations live in :mod:`api.storage.redis_leases`
(mixed in); what both modules share is in :mod:`api.storage.redis_common`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.storage.base import Store
from api.storage.codec import (
    array_to_bytes,
    bytes_to_array,
    dumps,
    from_json,
    to_json,
)
from api.storage.keys import SEP, Keys
from api.storage.records import (
    Item,
    Project,
    ProjectSettings,
    required_answers,
)
from api.storage.redis_common import (
    _CLIENT_OPTIONS,
    _UNAVAILABLE,
    LEASE_SCRIPTS,
    DurabilityCheck,
    StoreUnavailable,
    _item,
    _plain,
    guard_all,
    refusal,
    source,
)
from api.storage.redis_leases import RedisLeaseOps
from api.storage.rules import check_upload
from labeling.errors import Conflict, NotFound

__all__ = ["RedisStore", "StoreUnavailable"]


@guard_all
class RedisStore(RedisLeaseOps, DurabilityCheck, Store):
    """Store on one Redis server (or a primary with replicas; not Redis Cluster).

    ``url``: a redis-py URL (``redis://[:password@]host:port/db``, ``rediss://``, ``unix://``).
    ``namespace`` prefixes every key, so deployments and tests can share a server.
    ``require_durable``: refuse (``InvalidInput``) a server without ``appendonly yes`` and
    ``maxmemory-policy noeviction`` instead of logging a warning.
    """

    def __init__(self, url: str, *, namespace: str = "labelloop", require_durable: bool = False) -> None:
        self.k = Keys(namespace)
        # never re-send a call after a failure: a script that may have run must not run twice
        # (the pool still replaces connections that died while idle before handing them out)
        self.r = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **_CLIENT_OPTIONS)
        kw = self.r.connection_pool.connection_kwargs  # where, without user or password
        self.where = (f"unix://{kw['path']}" if kw.get("path")
                      else f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}")
        self._scripts = {name: self.r.register_script(source(name))
                         for name in LEASE_SCRIPTS}
        self.check_durability(require_durable)

    # -- plumbing -------------------------------------------------------------------------
    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        try:
            yield
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"Redis at {self.where} is unavailable ({type(exc).__name__}: {exc}); the call may "
                "or may not have taken effect: retry it once the server answers (a submission "
                "with its idempotency key)"
            ) from exc

    def _lease_script(self, name: str, project_id: str, *args: Any, client: Any = None) -> Any:
        """Run a lease script (:data:`~api.storage.redis_common.LEASE_SCRIPTS`) on a project (on
        ``client``: a pipeline queues it); its refusals (``CONFLICT ...``, ``NOTFOUND ...``) are
        raised as those store errors (:func:`refusal`)."""
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
        """Optimistic transaction: ``apply(pipe)`` reads through ``pipe`` (immediate mode), then
        calls ``pipe.multi()`` and queues its writes. Re-run while a watched key changed in between.
        Returns ``apply``'s result."""
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    if keys:  # none: the writes need no check
                        pipe.watch(*keys)
                    result = apply(pipe)
                    if pipe.explicit_transaction:
                        pipe.execute()
                    return result  # (leaving the pipeline unwatches)
                except redis.WatchError:
                    continue

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

        def apply(pipe: Any) -> Project:
            doc = pipe.hget(key, project_id)
            if doc is None:
                raise NotFound(f"unknown project {project_id!r}")
            before = from_json(Project, doc)
            project = replace(before, settings=settings, guidelines=before.guidelines
                              if guidelines is None else guidelines)
            pipe.multi()
            pipe.hset(key, project_id, to_json(project))
            return project

        project = self._watched([key], apply)
        seq, s = self.k.p(project_id, "seq"), settings
        # every item's ``required`` drawn again, a script call per 5000 items (each atomic with
        # leases; a settings change is rare and never undone halfway by one)
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
                pipe.hset(k.p(project_id, "items"),
                          mapping={it.id: dumps({"text": it.text, "features": it.features,
                                                 "meta": it.meta, "gold": it.gold, "votes": None
                                                 if it.votes is None else list(it.votes)})
                                   for it in items[start:start + 5000]})
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

    # -- rounds ---------------------------------------------------------------------------
