"""The Redis store's coordination half: the queue, leases, annotations, requirements and rounds
(mixed into :class:`api.storage.redis.RedisStore`; the atomic parts are the Lua scripts of
:mod:`api.storage.redis_common`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

from api.storage.codec import dumps, from_json
from api.storage.keys import SEP
from api.storage.records import (
    Annotation,
    Lease,
    LeaseRequest,
    Round,
    SubmitResult,
)
from api.storage.redis_common import _item, _plain, refusal
from api.storage.rules import (
    LOCK,
    check_fence,
    check_lease,
    check_required,
    check_submission,
    encode_round,
    idem_payload,
    leased,
)
from labeling.errors import InvalidInput, LabelloopError, NotFound

__all__ = ["RedisLeaseOps"]


_KEEP_S = 86400  # a lease's hash outlives its expiry by this long (get_lease still answers)

class RedisLeaseOps:
    """Over ``self.r`` (client), ``self.k`` (keys) and ``self._lease_script``."""

    # -- queue ----------------------------------------------------------------------------
    def queue_depth(self, project_id: str, now: float) -> dict[str, int]:
        self._project_doc(project_id)
        got = self._lease_script("queue_depth", project_id, repr(float(now)))
        names = ("total", "open", "leased", "done", "flagged", "eval", "gold", "review")
        return dict(zip(names, map(int, got), strict=True))

    # -- leases ---------------------------------------------------------------------------
    def lease(self, project_id, annotator, n, *, n_eval, now, ttl, lease_id, n_gold=0,
              pool="main"):
        r = LeaseRequest(project_id, annotator, n, n_eval, ttl, lease_id, n_gold, pool)
        return self._leased(r, self._lease_script("lease", project_id, *self._lease_args(r, now)))

    def lease_many(self, requests, *, now):
        """The lease scripts of all the valid requests in one pipeline (one round trip)."""
        out: list[Any] = []  # a request's error, or the request until its reply is read
        pipe = self.r.pipeline(transaction=False)
        for r in requests:
            try:
                self._lease_script("lease", r.project_id, *self._lease_args(r, now), client=pipe)
                out.append(r)
            except LabelloopError as e:
                out.append(e)
        replies = iter(pipe.execute(raise_on_error=False) if len(pipe) else ())
        for k, r in enumerate(out):
            if isinstance(r, LeaseRequest):
                reply = next(replies)  # a refusal, or a failure of the whole batch (raised)
                out[k] = refusal(reply) if isinstance(reply, Exception) else self._leased(r, reply)
                if isinstance(out[k], Exception) and not isinstance(out[k], LabelloopError):
                    raise out[k]
        return out

    @staticmethod
    def _lease_args(r: LeaseRequest, now: float) -> tuple:
        check_lease(r.n, r.n_eval, r.n_gold, r.pool)
        _plain("annotator", r.annotator)
        _plain("lease id", r.lease_id)
        return (repr(float(now)), r.annotator, r.n, r.n_eval, repr(float(r.ttl)), r.lease_id,
                r.project_id, r.n_gold, r.pool)

    @staticmethod
    def _leased(r: LeaseRequest, out: list) -> Lease:
        """The lease script's answer as a :class:`Lease`: exhausted, expiry, then item id, reasons,
        document and position per item."""
        items = tuple(leased(_item(out[i].decode(), out[i + 2], out[i + 3]), out[i + 1])
                      for i in range(2, len(out), 4))
        return Lease(r.lease_id, r.project_id, r.annotator, float(out[1]),
                     tuple(li.item.id for li in items), items, exhausted=out[0] == b"1")

    def _lease_hash(self, lease_id: str) -> dict[bytes, bytes]:
        meta = self.r.hgetall(self.k.lease(lease_id))
        if not meta:
            raise NotFound(f"unknown lease {lease_id!r}")
        return meta

    def _open(self, pid: str, meta: dict[bytes, bytes], lease_id: str) -> tuple[float, list[int]]:
        """The lease's expiry (0.0 once ended) and the positions in it of its open items."""
        annotator, items = meta[b"annotator"].decode(), meta[b"items"].decode().split(SEP)
        with self.r.pipeline(transaction=True) as pipe:
            pipe.zscore(self.k.p(pid, "leasing"), lease_id)
            pipe.hmget(self.k.p(pid, "holds"), [f"{i}{SEP}{annotator}" for i in items])
            expires, holders = pipe.execute()
        if expires is None:
            return 0.0, []
        return float(expires), [j for j, h in enumerate(holders) if h is not None and h.decode() == lease_id]

    def get_lease(self, lease_id: str) -> Lease:
        meta = self._lease_hash(lease_id)
        pid, annotator = meta[b"project"].decode(), meta[b"annotator"].decode()
        expires, open_at = self._open(pid, meta, lease_id)
        items = meta[b"items"].decode().split(SEP)
        return Lease(lease_id, pid, annotator, expires if open_at else 0.0, tuple(items[j] for j in open_at))

    def leases(self, project_id: str, annotator: str, *, now: float) -> list[Lease]:
        self._project_doc(project_id)
        ids = self.r.zrangebyscore(self.k.p(project_id, "leasing"), f"({float(now)!r}", "+inf")
        with self.r.pipeline(transaction=False) as pipe:
            for lid in ids:
                pipe.hgetall(self.k.lease(lid.decode()))
            metas = pipe.execute()
        out = []
        for lid, meta in zip(ids, metas, strict=True):
            if not meta or meta[b"annotator"].decode() != annotator:
                continue
            expires, open_at = self._open(project_id, meta, lid.decode())
            if not open_at or expires <= now:
                continue
            ids_ = meta[b"items"].decode().split(SEP)
            reasons = meta[b"reasons"].decode().split(SEP)
            picked = [ids_[j] for j in open_at]
            items = self._items(project_id, picked)
            out.append((float(meta[b"created_at"]), lid.decode(), Lease(
                lid.decode(), project_id, annotator, expires, tuple(picked),
                tuple(leased(it, reasons[j]) for it, j in zip(items, open_at, strict=True)))))
        return [lease for _, _, lease in sorted(out, key=lambda t: t[:2])]

    def renew(self, lease_id, annotator, *, now, ttl):
        pid = self._lease_hash(lease_id)[b"project"].decode()
        self._lease_script("renew", pid, repr(float(now)), lease_id, annotator, pid,
                           repr(float(now + ttl)), int(ttl) + _KEEP_S)
        return self.get_lease(lease_id)

    def release(self, lease_id, annotator, *, item_ids=None, now):
        pid = self._lease_hash(lease_id)[b"project"].decode()
        if item_ids is not None and not item_ids:
            return 0
        return int(self._lease_script("release", pid, lease_id, annotator, pid, *(item_ids or ())))

    def expire(self, now: float) -> int:
        ended = 0
        for pid in self.r.hkeys(self.k.projects()):
            more = True
            while more:
                got, more_flag = self._lease_script("reclaim", pid.decode(), repr(float(now)))
                ended, more = ended + int(got), more_flag == 1
        return ended

    def require(self, project_id: str, required: Mapping[str, int], *, now: float,
                pool: str | None = None) -> int:
        check_required(required, pool)
        self._project_doc(project_id)
        return self._require(project_id, required, pool)

    def _require(self, project_id: str, required: Mapping[str, int], pool: str | None = None) -> int:
        args = [x for item_id, k in required.items() for x in (item_id, str(k))]
        try:
            return int(self._lease_script("require", project_id, pool or "", *args))
        except NotFound as e:
            raise NotFound(f"{e} in project {project_id!r}") from None

    # -- annotations ----------------------------------------------------------------------
    def submit(self, annotations, *, now):
        pids = {a.project_id for a in annotations}
        if len(pids) > 1:
            raise InvalidInput(f"one submission carries annotations of one project, got {sorted(pids)}")
        if not annotations:
            return []
        check_submission(annotations)
        args: list[Any] = [repr(float(now))]
        for a in annotations:
            _plain("annotator", a.annotator)
            doc = dumps({**asdict(a), "created_at": now, "seq": -1})
            args += [a.item_id, a.annotator, a.kind, a.lease_id or "", a.idempotency_key or "",
                     idem_payload(a), doc]
        out = self._lease_script("submit", pids.pop(), *args)
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
    def commit_round(self, project_id, *, arrays, queue, rnd, fence=None):
        """One MULTI/EXEC. With ``fence``, the lock's record is WATCHed and read first: a token
        drawn after that read aborts the EXEC, the check runs again and refuses."""
        enc = encode_round(project_id, arrays, queue, rnd)
        self._project_doc(project_id)
        ranks, why = self.k.p(project_id, "queue"), self.k.p(project_id, "reasons")

        def apply(pipe: Any) -> None:
            check_fence(fence, lambda name: pipe.get(self.k.record(name)))
            pipe.multi()
            for name, data in enc.arrays.items():
                pipe.set(self.k.array(project_id, name), data)
            pipe.delete(ranks, why)  # the queue: ranks as scores, reasons in their own hash
            for start in range(0, len(enc.queue), 10_000):
                chunk = enc.queue[start:start + 10_000]
                pipe.zadd(ranks, {iid: start + r for r, (iid, _, _) in enumerate(chunk)})
                pipe.hset(why, mapping={iid: reasons for iid, _, reasons in chunk})
            pipe.rpush(self.k.p(project_id, "rounds"), enc.round_json)

        self._watched([] if fence is None else [self.k.record(LOCK + fence[0])], apply)

    def list_rounds(self, project_id: str) -> list[Round]:
        self._project_doc(project_id)
        return [from_json(Round, d) for d in self.r.lrange(self.k.p(project_id, "rounds"), 0, -1)]
