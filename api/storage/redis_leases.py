"""The Redis store's coordination half: the queue, leases, annotations, jobs and locks (mixed into
:class:`api.storage.redis.RedisStore`; the atomic parts are the Lua scripts of
:mod:`api.storage.redis_scripts`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
from redis.backoff import NoBackoff

from api.schemas import lease_body
from api.storage import redis_scripts as lua
from api.storage.codec import (
    dumps,
    job_from_json,
    job_to_json,
    loads,
)
from api.storage.keys import SEP
from api.storage.records import (
    ACTIVE_JOB_STATES,
    Annotation,
    Job,
    Lease,
    LeaseRequest,
    SubmitResult,
    leased_item,
)
from labeling.errors import InvalidInput, LabelloopError, NotFound, StaleToken

__all__ = ["RedisLeaseOps"]

from api.storage.redis_common import _CLIENT_OPTIONS, _guarded, _item, _plain

# the reasons the lease script gives pool items (see LEASE's ``take``), most of what it returns
_STRATEGY = {b'{"strategy":"pool_order"}': "pool_order", b'{"strategy":"evaluation_slice"}': "evaluation_slice"}


def _reasons(text: bytes) -> dict[str, Any]:
    strategy = _STRATEGY.get(text)
    return {"strategy": strategy} if strategy is not None else loads(text)


class RedisLeaseOps:
    """Queue, lease, annotation, job and lock operations over ``self.r`` (client), ``self.k``
    (keys) and ``self._run`` (Lua scripts); the lease route's batches over ``self._aio`` (the
    event loop's client, from ``self.url``)."""

    waits_on_network = True  # every call is a round trip to the Redis server
    leases_on_loop = True  # the lease route's batches: lease_bodies_async

    # -- queue ----------------------------------------------------------------------------
    @_guarded
    def set_queue(self, project_id, item_ids, scores, reasons):
        self._project_doc(project_id)
        with self.r.pipeline(transaction=True) as pipe:
            self._queue_writes(pipe, project_id, [(iid, dumps(rs)) for iid, rs in
                                                  zip(item_ids, reasons, strict=True)])
            pipe.execute()

    def _queue_writes(self, pipe: Any, project_id: str, entries: list[tuple[str, str]]) -> None:
        """Replace the queue with ``entries`` (item id, reasons JSON) in ``pipe``: ranks as
        scores, reasons in their own hash."""
        queue, why = self.k.p(project_id, "queue"), self.k.p(project_id, "reasons")
        pipe.delete(queue, why)
        for start in range(0, len(entries), 10_000):
            chunk = entries[start : start + 10_000]
            pipe.zadd(queue, {iid: start + r for r, (iid, _) in enumerate(chunk)})
            pipe.hset(why, mapping=dict(chunk))

    @_guarded
    def queue_depth(self, project_id: str, now: float) -> dict[str, int]:
        self._project_doc(project_id)
        got = self._run("QUEUE_DEPTH", args=[self.k.ns, project_id, repr(float(now))])
        return dict(zip(("total", "open", "leased", "done", "flagged", "eval"), map(int, got),
                        strict=True))

    # -- leases ---------------------------------------------------------------------------
    def lease(self, project_id, annotator, n, *, n_eval, now, ttl, lease_id):
        got = self.lease_many([LeaseRequest(project_id, annotator, n, n_eval, ttl, lease_id)], now=now)[0]
        if isinstance(got, Exception):
            raise got
        return got

    @_guarded
    def lease_many(self, requests, *, now):
        """One script call for the lot, atomic as a whole; each lease is refused or granted on
        its own."""
        out, sent = self._checked(requests)
        got = self._run("LEASE", args=self._batch_args(out, sent, now, positions=True)) if sent else []
        return self._replies(requests, out, sent, got, self._leased)

    async def lease_bodies_async(self, requests, *, now):
        """:meth:`lease_many` on the event loop's own connections, each lease encoded straight
        from the script's reply (no records: a third of the decoding), without the position
        records the route does not answer with: no thread waits for Redis. One round trip: the
        script goes by its digest alone, and only when the server has lost it (a restart) is it
        loaded and the call made again (it never ran)."""
        client, script = self._loop_client()
        out, sent = self._checked(requests)
        if not sent:
            return out
        args = self._batch_args(out, sent, now, positions=False)
        with self._unavailable():
            try:
                got = await client.evalsha(script.sha, 0, *args)
            except redis.exceptions.NoScriptError:
                await client.script_load(script.script)
                got = await client.evalsha(script.sha, 0, *args)
            return self._replies(requests, out, sent, got, self._body)

    def _loop_client(self) -> tuple[redis.asyncio.Redis, Any]:
        """The running event loop's own client and its lease script, made on first use (a
        client's connections belong to the loop that opened them). Never re-sends a call, as the
        store's other client."""
        loop = asyncio.get_running_loop()
        if self._aio is None or self._aio[0] is not loop:
            client = redis.asyncio.Redis.from_url(
                self.url, retry=redis.asyncio.retry.Retry(NoBackoff(), 0), **_CLIENT_OPTIONS)
            self._aio = (loop, client, client.register_script(lua.LEASE))
        return self._aio[1], self._aio[2]

    async def aclose(self) -> None:
        if self._aio is not None and self._aio[0] is asyncio.get_running_loop():
            await self._aio[1].aclose()
        self._aio = None

    def _checked(self, requests) -> tuple[list, list[int]]:
        """Each request's script arguments, or the error that refuses it; and the indexes sent."""
        out: list = [None] * len(requests)
        for i, req in enumerate(requests):
            try:
                out[i] = self._lease_args(req)
            except LabelloopError as e:
                out[i] = e
        return out, [i for i, o in enumerate(out) if not isinstance(o, LabelloopError)]

    def _batch_args(self, out: list, sent: list[int], now: float, *, positions: bool) -> list:
        """The lease script's arguments for the requests ``sent``."""
        return [self.k.ns, repr(float(now)), "1" if positions else "0",
                *(arg for i in sent for arg in out[i])]

    def _replies(self, requests, out: list, sent: list[int], got: list,
                 granted: Callable[[LeaseRequest, list], Any]) -> list:
        """Each request's ``granted(request, reply)``, or the error that refused it."""
        for i, res in zip(sent, got, strict=True):
            if res[0] == b"!":  # refused: ['!', 'NOTFOUND ...']
                refusal = self._refusal(redis.ResponseError(res[1].decode()))
                if not isinstance(refusal, LabelloopError):
                    raise refusal
                out[i] = refusal
            else:
                out[i] = granted(requests[i], res)
        return out

    def _lease_args(self, req: LeaseRequest) -> list:
        if req.n < 0 or req.n_eval < 0:
            raise InvalidInput(f"lease size must be >= 0, got n={req.n}, n_eval={req.n_eval}")
        _plain("annotator", req.annotator)
        _plain("lease id", req.lease_id)
        return [req.project_id, req.annotator, req.n, req.n_eval, repr(float(req.ttl)), req.lease_id]

    @staticmethod
    def _body(req: LeaseRequest, out: list) -> bytes:
        """The ``LeaseOut`` body of a granted lease's reply without position records."""
        items = []
        for i in range(2, len(out), 3):  # item, reasons, document per item
            d = loads(out[i + 2])
            items.append({"id": out[i].decode(), "text": d["text"], "features": d["features"],
                          "meta": d["meta"], "reasons": _reasons(out[i + 1])})
        return lease_body(req.lease_id, req.project_id, req.annotator, float(out[1]), out[0] == b"1", items)

    @staticmethod
    def _leased(req: LeaseRequest, out: list) -> Lease:
        ids, leased = [], []
        for i in range(2, len(out), 4):  # item, reasons, document, position per item
            item = _item(out[i].decode(), out[i + 2], out[i + 3])
            ids.append(item.id)
            leased.append(leased_item(item, _reasons(out[i + 1]), item.is_eval))
        return Lease(req.lease_id, req.project_id, req.annotator, float(out[1]), tuple(ids),
                     tuple(leased), exhausted=out[0] == b"1")

    @_guarded
    def get_lease(self, lease_id: str) -> Lease:
        meta = self.r.hgetall(self.k.lease(lease_id))
        if not meta:
            raise NotFound(f"unknown lease {lease_id!r}")
        pid, annotator = meta[b"project"].decode(), meta[b"annotator"].decode()
        # its items (a lease from before the items field: the keys of its item records); each one
        # is open while its hold names this lease
        items = (meta[b"items"].decode().split(SEP) if b"items" in meta
                 else sorted(i.decode() for i in self.r.hkeys(self.k.lease_items(lease_id))))
        # a sole hold (flag 1) is open until the lease's own expiry ends it (its entry in leasing
        # gone: a sweep ended it since the read above)
        sole = meta.get(b"sole", b"").decode()
        flagged = [i for i, flag in zip(items, sole, strict=False) if flag == "1"]
        until = self.r.zscore(self.k.p(pid, "leasing"), lease_id) if flagged else None
        open_items, expires = (flagged, until) if until is not None else ([], 0.0)
        shared = [i for k, i in enumerate(items) if sole[k : k + 1] != "1"]
        holds = self.r.hmget(self.k.p(pid, "hold"), [f"{i}{SEP}{annotator}" for i in shared]) if shared else []
        for item, hold in zip(shared, holds, strict=True):
            if hold is not None:
                held_by, exp = hold.decode().split(SEP)
                if held_by == lease_id:
                    open_items.append(item)
                    expires = max(expires, float(exp))
        return Lease(lease_id, pid, annotator, expires, tuple(sorted(open_items)))

    @_guarded
    def renew(self, lease_id, annotator, *, now, ttl):
        self._run("RENEW", args=[self.k.ns, lease_id, annotator, repr(float(now)), repr(float(now + ttl))])
        return self.get_lease(lease_id)

    @_guarded
    def release(self, lease_id, annotator, *, item_ids=None, now):
        args = [self.k.ns, lease_id, annotator, "1" if item_ids is None else "0", *(item_ids or ())]
        return int(self._run("RELEASE", args=args))

    @_guarded
    def expire(self, now: float) -> int:
        return int(self._run("EXPIRE", args=[self.k.ns, repr(float(now))]))

    # -- annotations ----------------------------------------------------------------------
    @_guarded
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

    @_guarded
    def annotations(self, project_id: str, *, since: int = 0) -> list[Annotation]:
        self._project_doc(project_id)
        docs = self.r.lrange(self.k.p(project_id, "log"), since, -1)
        return [replace(Annotation(**json.loads(d)), seq=since + i + 1) for i, d in enumerate(docs)]

    @_guarded
    def count_labels(self, project_id: str) -> int:
        return int(self.r.get(self.k.p(project_id, "labels")) or 0)

    # -- jobs -----------------------------------------------------------------------------
    @_guarded
    def create_job(self, job: Job) -> Job:
        self._project_doc(job.project_id)
        self._run("CREATE_JOB", keys=[self.k.job_active(job.project_id, job.kind), self.k.job(job.id),
                                      self.k.p(job.project_id, "jobs")],
                  args=[job.id, job_to_json(job)])
        return job

    @_guarded
    def update_job(self, job_id: str, *, fence: tuple[str, int] | None = None, **fields: Any) -> Job:
        """Atomic against concurrent updates (a worker's progress and a cancel never lose each
        other's fields); leaving queued/running frees the project's slot for that kind. With
        ``fence`` the write happens only while its token is the lock's latest (checked under the
        same WATCH)."""
        key = self.k.job(job_id)
        watched = [key] if fence is None else [key, self.k.fence(fence[0])]

        def apply(pipe: Any) -> Job:
            if fence is not None:
                latest = pipe.get(self.k.fence(fence[0]))
                if latest is None or int(latest) != fence[1]:
                    raise StaleToken(f"stale fencing token {fence[1]} for lock {fence[0]!r} (latest: "
                                   f"{None if latest is None else int(latest)}): its holder lost "
                                   "the lock, write refused")
            doc = pipe.get(key)
            if doc is None:
                raise NotFound(f"unknown job {job_id!r}")
            job = replace(job_from_json(doc), **fields)
            pipe.multi()
            pipe.set(key, job_to_json(job))
            if job.status not in ACTIVE_JOB_STATES:
                pipe.eval(lua.RELEASE_LOCK, 1, self.k.job_active(job.project_id, job.kind), job_id)
            return job

        return self._watched(watched, apply)[0]

    @_guarded
    def get_job(self, job_id: str) -> Job:
        doc = self.r.get(self.k.job(job_id))
        if doc is None:
            raise NotFound(f"unknown job {job_id!r}")
        return job_from_json(doc)

    @_guarded
    def list_jobs(self, project_id: str) -> list[Job]:
        self._project_doc(project_id)
        ids = self.r.lrange(self.k.p(project_id, "jobs"), 0, -1)
        docs = self.r.mget([self.k.job(i.decode()) for i in ids]) if ids else []
        return [job_from_json(d) for d in docs if d is not None]

    # -- locks with fencing tokens ----------------------------------------------------------
    @_guarded
    def acquire_lock(self, name: str, owner: str, ttl_s: float, now: float) -> int | None:
        """Take lock ``name`` for ``owner`` until ``now + ttl_s``.

        Returns a fencing token, larger than every token handed out for ``name`` before (a
        writer that records the largest token it has seen refuses a stale holder), or None while
        the lock is held, by another owner or by ``owner`` itself. The lock is free again once a
        caller's ``now`` reaches its expiry, or once Redis drops the key (``SET NX PX``: the
        server's clock, a backstop so a lock whose holders all died never outlives ``ttl_s``).
        Taking the lock and drawing the token (``INCR``) are one transaction.
        """
        if not ttl_s > 0:
            raise InvalidInput(f"ttl_s must be > 0, got {ttl_s!r}")
        key, fence = self.k.lock(name), self.k.fence(name)

        def apply(pipe: Any) -> None:
            held = pipe.get(key)
            if held is not None and float(held.decode().rpartition(SEP)[2]) > now:
                return
            pipe.multi()
            pipe.set(key, f"{owner}{SEP}{now + ttl_s!r}", px=max(1, round(ttl_s * 1000)))
            pipe.incr(fence)

        replies = self._watched([key], apply)[1]
        return int(replies[1]) if replies else None

    @_guarded
    def renew_lock(self, name: str, owner: str, token: int, ttl_s: float, now: float) -> bool:
        """Extend ``owner``'s hold while ``token`` is the latest of ``name``; one Lua script."""
        if not ttl_s > 0:
            raise InvalidInput(f"ttl_s must be > 0, got {ttl_s!r}")
        return bool(self._run("RENEW_LOCK", keys=[self.k.lock(name), self.k.fence(name)],
                              args=[owner, int(token), repr(float(now + ttl_s)),
                                    max(1, round(ttl_s * 1000))]))

    @_guarded
    def release_lock(self, name: str, owner: str) -> bool:
        """Drop lock ``name`` if ``owner`` holds it (compare-and-delete); False otherwise."""
        key = self.k.lock(name)

        def apply(pipe: Any) -> bool:
            held = pipe.get(key)
            if held is None or held.decode().rpartition(SEP)[0] != owner:
                return False
            pipe.multi()
            pipe.delete(key)
            return True

        return self._watched([key], apply)[0]
