"""Redis store: shared state for several coordinator replicas.

Lease, submit, release, renew and expire are Lua scripts (:mod:`api.storage.redis_scripts`), so
each is atomic across replicas. Items nobody holds sit in sorted sets by pool order; a lease puts
expired holds back, then walks the evaluation set, the ranked queue (bounded by the queue size)
and the pool in windows, and stops when it has its items: it reads what it returns plus the items
the annotator already answered, whatever the pool size or the number of live leases. Time is always passed in; the Redis clock is never read for lease logic.

At start-up the store reads ``appendonly`` and ``maxmemory-policy``: with ``require_durable`` it
refuses a server that could lose acknowledged annotations, otherwise it warns.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import redis

from api.storage import redis_scripts as lua
from api.storage.base import Store
from api.storage.codec import (
    array_to_bytes,
    bytes_to_array,
    dumps,
    job_from_json,
    job_to_json,
    project_from_json,
    project_to_json,
    round_from_json,
    round_to_json,
)
from api.storage.keys import SEP, Keys
from api.storage.records import (
    Annotation,
    Item,
    Job,
    Lease,
    LeasedItem,
    LFRecord,
    Project,
    ProjectSettings,
    Round,
    SubmitResult,
)
from labeling.errors import Conflict, InvalidInput, LabelloopError, NotFound

__all__ = ["RedisStore", "StoreUnavailable"]

log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")


class StoreUnavailable(LabelloopError):
    """The Redis server cannot be reached."""


def _item_doc(it: Item) -> str:
    return dumps({"text": it.text, "features": it.features, "meta": it.meta,
                  "votes": list(it.votes) if it.votes is not None else None, "gold": it.gold})


class RedisStore(Store):
    def __init__(self, url: str, *, namespace: str = "labelloop", require_durable: bool = False) -> None:
        self.url, self.k = url, Keys(namespace)
        self.r = redis.Redis.from_url(url, decode_responses=False, socket_timeout=30,
                                      health_check_interval=30)
        self._scripts = {name: self.r.register_script(getattr(lua, name)) for name in
                         ("ADD_ITEMS", "LEASE", "RENEW", "RELEASE", "EXPIRE", "SUBMIT",
                          "CREATE_JOB", "RELEASE_LOCK")}
        self.check_durability(require_durable)

    # -- plumbing -------------------------------------------------------------------------
    def _run(self, name: str, keys: Sequence[str] = (), args: Sequence[Any] = ()):
        try:
            return self._scripts[name](keys=list(keys), args=list(args))
        except redis.ResponseError as exc:
            msg = str(exc)
            for prefix, err in (("CONFLICT ", Conflict), ("NOTFOUND ", NotFound)):
                if msg.startswith(prefix):
                    raise err(msg[len(prefix):]) from None
            raise
        except redis.ConnectionError as exc:
            raise StoreUnavailable(f"Redis at {self.url} is unreachable: {exc}") from exc

    def durability(self) -> dict[str, str | None]:
        try:
            cfg = {}
            for name in ("appendonly", "appendfsync", "maxmemory-policy"):
                got = self.r.config_get(name)
                value = got.get(name.encode(), got.get(name))
                cfg[name] = (value.decode() if isinstance(value, bytes) else value) or None
            return cfg
        except redis.ResponseError:  # CONFIG disabled (managed Redis)
            return {"appendonly": None, "appendfsync": None, "maxmemory-policy": None}
        except redis.ConnectionError as exc:
            raise StoreUnavailable(f"Redis at {self.url} is unreachable: {exc}") from exc

    def check_durability(self, require: bool) -> None:
        cfg = self.durability()
        problems = []
        if cfg["appendonly"] != "yes":
            problems.append(f"appendonly={cfg['appendonly']} (need yes, appendfsync everysec or always)")
        if cfg["maxmemory-policy"] != "noeviction":
            problems.append(f"maxmemory-policy={cfg['maxmemory-policy']} (need noeviction)")
        if not problems:
            return
        if cfg["appendonly"] is None:
            problems = ["CONFIG GET is disabled on this server, so its persistence cannot be checked"]
        message = (f"Redis at {self.url}: {'; '.join(problems)}. Without them a restart or memory "
                   "pressure can lose acknowledged annotations.")
        if require:
            raise InvalidInput(message + " Fix the server, or start without LABELLOOP_REQUIRE_DURABLE.")
        log.warning(message)

    def ping(self) -> bool:
        try:
            return bool(self.r.ping())
        except redis.ConnectionError:
            return False

    def close(self) -> None:
        self.r.close()

    def _project_doc(self, project_id: str) -> bytes:
        doc = self.r.hget(self.k.projects(), project_id)
        if doc is None:
            raise NotFound(f"unknown project {project_id!r}")
        return doc

    # -- projects -------------------------------------------------------------------------
    def create_project(self, project: Project) -> Project:
        if not self.r.hsetnx(self.k.projects(), project.id, project_to_json(project)):
            raise Conflict(f"project {project.id!r} already exists")
        return project

    def get_project(self, project_id: str) -> Project:
        return project_from_json(self._project_doc(project_id))

    def list_projects(self) -> list[Project]:
        docs = self.r.hgetall(self.k.projects())
        return sorted((project_from_json(d) for d in docs.values()), key=lambda p: p.id)

    def update_settings(self, project_id: str, settings: ProjectSettings) -> Project:
        project = replace(self.get_project(project_id), settings=settings)
        self.r.hset(self.k.projects(), project_id, project_to_json(project))
        return project

    # -- items ----------------------------------------------------------------------------
    def add_items(self, project_id, items, *, on_conflict, rand_keys):
        if on_conflict not in ("reject", "upsert"):
            raise InvalidInput(f"on_conflict must be 'reject' or 'upsert', got {on_conflict!r}")
        ids = [it.id for it in items]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            dup = next(i for i in ids if i in seen or seen.add(i))
            raise Conflict(f"item id {dup!r} appears twice in one upload")
        self._project_doc(project_id)
        args: list[Any] = [self.k.ns, project_id, on_conflict]
        for it, key in zip(items, rand_keys, strict=True):
            args += [it.id, "1" if it.is_eval else "0", repr(float(key)), _item_doc(it)]
        inserted, updated = self._run("ADD_ITEMS", args=args)
        return int(inserted), int(updated)

    def count_items(self, project_id: str) -> int:
        self._project_doc(project_id)
        return int(self.r.llen(self.k.p(project_id, "seq")))

    def _items(self, project_id: str, ids: list[bytes | str]) -> list[Item]:
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(self.k.p(project_id, "items"), ids)
        pipe.hmget(self.k.p(project_id, "pos"), ids)
        docs, pos = pipe.execute()
        out = []
        for item_id, doc, p in zip(ids, docs, pos, strict=True):
            d = json.loads(doc)
            seq, is_eval, _ = p.decode().split(SEP)
            iid = item_id.decode() if isinstance(item_id, bytes) else item_id
            votes = tuple(d["votes"]) if d["votes"] is not None else None
            out.append(Item(iid, int(seq), d["text"], d["features"], d["meta"], votes, d["gold"],
                            is_eval == "1"))
        return out

    def get_item(self, project_id: str, item_id: str) -> Item:
        self._project_doc(project_id)
        if not self.r.hexists(self.k.p(project_id, "items"), item_id):
            raise NotFound(f"unknown item {item_id!r} in project {project_id!r}")
        return self._items(project_id, [item_id])[0]

    def iter_items(self, project_id: str, *, start: int = 0, chunk: int = 10_000):
        self._project_doc(project_id)
        pos = start
        while True:
            ids = self.r.lrange(self.k.p(project_id, "seq"), pos, pos + chunk - 1)
            if not ids:
                return
            yield self._items(project_id, ids)
            pos += len(ids)

    # -- LFs, votes, arrays ---------------------------------------------------------------
    def put_lfs(self, project_id: str, lfs: Sequence[LFRecord]) -> None:
        self._project_doc(project_id)
        key = self.k.p(project_id, "lfs")
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    current = {k.decode(): json.loads(v) for k, v in pipe.hgetall(key).items()}
                    nxt = max((d["ord"] for d in current.values()), default=-1) + 1
                    pipe.multi()
                    for lf in lfs:
                        ordinal = current[lf.name]["ord"] if lf.name in current else nxt
                        nxt += lf.name not in current
                        pipe.hset(key, lf.name, dumps({**asdict(lf), "ord": ordinal}))
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def list_lfs(self, project_id: str) -> list[LFRecord]:
        self._project_doc(project_id)
        docs = [json.loads(v) for v in self.r.hgetall(self.k.p(project_id, "lfs")).values()]
        docs.sort(key=lambda d: d.pop("ord"))
        return [LFRecord(**d) for d in docs]

    def deactivate_lf(self, project_id: str, name: str) -> None:
        self._project_doc(project_id)
        key = self.k.p(project_id, "lfs")
        doc = self.r.hget(key, name)
        if doc is None:
            raise NotFound(f"unknown labeling function {name!r}")
        self.r.hset(key, name, dumps({**json.loads(doc), "active": False}))

    def get_votes(self, project_id, version):
        data, faults, first = self.r.hmget(self.k.votes(project_id, version), "data", "faults", "first_error")
        if data is None:
            return np.empty(0, dtype=np.int8), 0, None
        return bytes_to_array(data), int(faults), first.decode() if first else None

    def put_votes(self, project_id, version, votes, faults, first_error):
        mapping = {"data": array_to_bytes(np.asarray(votes, dtype=np.int8)), "faults": int(faults),
                   "first_error": first_error or ""}
        self.r.hset(self.k.votes(project_id, version), mapping=mapping)

    def put_array(self, project_id: str, name: str, array: np.ndarray) -> None:
        self.r.set(self.k.array(project_id, name), array_to_bytes(array))

    def get_array(self, project_id: str, name: str) -> np.ndarray | None:
        data = self.r.get(self.k.array(project_id, name))
        return None if data is None else bytes_to_array(data)

    # -- queue ----------------------------------------------------------------------------
    def set_queue(self, project_id, item_ids, scores, reasons):
        self._project_doc(project_id)
        queue, why = self.k.p(project_id, "queue"), self.k.p(project_id, "reasons")
        with self.r.pipeline(transaction=True) as pipe:
            pipe.delete(queue, why)
            for start in range(0, len(item_ids), 10_000):
                ids = item_ids[start : start + 10_000]
                pipe.zadd(queue, {iid: start + r for r, iid in enumerate(ids)})
                pipe.hset(why, mapping={iid: dumps(rs) for iid, rs in
                                        zip(ids, reasons[start : start + 10_000], strict=True)})
            pipe.execute()

    def queue_depth(self, project_id: str, now: float) -> dict[str, int]:
        self._project_doc(project_id)
        pipe = self.r.pipeline(transaction=False)
        for what, op in (("seq", "llen"), ("pool", "zcard"), ("evalpool", "zcard"),
                         ("flagged", "scard"), ("evalset", "scard")):
            getattr(pipe, op)(self.k.p(project_id, what))
        pipe.zcard(self.k.p(project_id, "held"))
        pipe.zcount(self.k.p(project_id, "held"), f"({now!r}", "+inf")
        total, pool, evalpool, flagged, evals, held, leased = pipe.execute()
        open_ = pool + evalpool + held
        return {"total": total, "open": open_, "leased": leased,
                "done": total - open_ - flagged, "flagged": flagged, "eval": evals}

    # -- leases ---------------------------------------------------------------------------
    def lease(self, project_id, annotator, n, *, n_eval, now, ttl, lease_id):
        if n < 0 or n_eval < 0:
            raise InvalidInput(f"lease size must be >= 0, got n={n}, n_eval={n_eval}")
        self._project_doc(project_id)
        expires = now + ttl
        out = self._run("LEASE", args=[self.k.ns, project_id, annotator, n, n_eval, repr(float(now)),
                                       repr(float(expires)), lease_id])
        ids = [out[i].decode() for i in range(0, len(out), 3)]
        by_id = {it.id: it for it in self._items(project_id, ids)}
        leased = tuple(
            LeasedItem(by_id[out[i].decode()], json.loads(out[i + 2]), out[i + 1] == b"1")
            for i in range(0, len(out), 3)
        )
        return Lease(lease_id, project_id, annotator, expires, tuple(ids), leased)

    def get_lease(self, lease_id: str) -> Lease:
        meta = self.r.hgetall(self.k.lease(lease_id))
        if not meta:
            raise NotFound(f"unknown lease {lease_id!r}")
        open_items, expires = [], 0.0
        for item, rec in self.r.hgetall(self.k.lease_items(lease_id)).items():
            state, exp = rec.decode().split(SEP)[:2]
            if state == "open":
                open_items.append(item.decode())
                expires = max(expires, float(exp))
        return Lease(lease_id, meta[b"project"].decode(), meta[b"annotator"].decode(), expires,
                     tuple(sorted(open_items)))

    def renew(self, lease_id, annotator, *, now, ttl):
        self._run("RENEW", args=[self.k.ns, lease_id, annotator, repr(float(now)), repr(float(now + ttl))])
        return self.get_lease(lease_id)

    def release(self, lease_id, annotator, *, item_ids=None, now):
        args = [self.k.ns, lease_id, annotator, "1" if item_ids is None else "0", *(item_ids or ())]
        return int(self._run("RELEASE", args=args))

    def expire(self, now: float) -> int:
        return int(self._run("EXPIRE", args=[self.k.ns, repr(float(now))]))

    # -- annotations ----------------------------------------------------------------------
    def submit(self, annotations, *, now):
        args: list[Any] = [self.k.ns]
        for a in annotations:
            doc = dumps({**asdict(a), "created_at": now, "seq": -1})
            args += [a.project_id, a.item_id, a.annotator, a.kind, a.lease_id or "",
                     a.idempotency_key or "", doc]
        out = self._run("SUBMIT", args=args)
        return [SubmitResult(replace(Annotation(**json.loads(out[i + 2])), seq=int(out[i + 1])),
                             duplicate=out[i] == 1)
                for i in range(0, len(out), 3)]

    def annotations(self, project_id: str, *, since: int = 0) -> list[Annotation]:
        self._project_doc(project_id)
        docs = self.r.lrange(self.k.p(project_id, "log"), since, -1)
        return [replace(Annotation(**json.loads(d)), seq=since + i + 1) for i, d in enumerate(docs)]

    def count_labels(self, project_id: str) -> int:
        return int(self.r.get(self.k.p(project_id, "labels")) or 0)

    # -- rounds ---------------------------------------------------------------------------
    def add_round(self, rnd: Round) -> None:
        self._project_doc(rnd.project_id)
        self.r.rpush(self.k.p(rnd.project_id, "rounds"), round_to_json(rnd))

    def list_rounds(self, project_id: str) -> list[Round]:
        self._project_doc(project_id)
        return [round_from_json(d) for d in self.r.lrange(self.k.p(project_id, "rounds"), 0, -1)]

    # -- jobs -----------------------------------------------------------------------------
    def create_job(self, job: Job) -> Job:
        self._project_doc(job.project_id)
        self._run("CREATE_JOB", keys=[self.k.job_active(job.project_id, job.kind), self.k.job(job.id),
                                      self.k.p(job.project_id, "jobs")],
                  args=[job.id, job_to_json(job)])
        return job

    def update_job(self, job_id: str, **fields: Any) -> Job:
        job = replace(self.get_job(job_id), **fields)
        with self.r.pipeline(transaction=True) as pipe:
            pipe.set(self.k.job(job_id), job_to_json(job))
            if job.status not in ACTIVE:
                pipe.eval(lua.RELEASE_LOCK, 1, self.k.job_active(job.project_id, job.kind), job_id)
            pipe.execute()
        return job

    def get_job(self, job_id: str) -> Job:
        doc = self.r.get(self.k.job(job_id))
        if doc is None:
            raise NotFound(f"unknown job {job_id!r}")
        return job_from_json(doc)

    def list_jobs(self, project_id: str) -> list[Job]:
        self._project_doc(project_id)
        ids = self.r.lrange(self.k.p(project_id, "jobs"), 0, -1)
        docs = self.r.mget([self.k.job(i.decode()) for i in ids]) if ids else []
        return [job_from_json(d) for d in docs if d is not None]

    # -- locks for replicas ---------------------------------------------------------------
    def acquire_lock(self, name: str, owner: str, ttl_s: float) -> int | None:
        """Take lock ``name`` for ``ttl_s`` seconds; returns a fencing token that grows with every
        acquisition (writers compare it to refuse stale holders), or None when someone holds it."""
        if not self.r.set(self.k.lock(name), owner, nx=True, px=int(ttl_s * 1000)):
            return None
        return int(self.r.incr(self.k.fence(name)))

    def release_lock(self, name: str, owner: str) -> bool:
        return bool(self._run("RELEASE_LOCK", keys=[self.k.lock(name)], args=[owner]))
