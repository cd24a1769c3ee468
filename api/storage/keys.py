"""Every Redis key name labelloop uses, in one place.

``ns`` is a namespace prefix so several deployments (or tests) can share one server; deleting
``{ns}:*`` removes everything a store wrote. Per-project keys put the project id in a hash tag
(``{pid}``). The Lua scripts in :mod:`api.storage.redis_scripts` build the same names from the
namespace (they take it as ``ARGV[1]``); keep the two in step.
"""

from __future__ import annotations

__all__ = ["SEP", "Keys"]

SEP = "\x1f"  # joins fields in set members and values; refused inside item ids and annotators


class Keys:
    def __init__(self, ns: str) -> None:
        self.ns = ns

    def projects(self) -> str:
        return f"{self.ns}:projects"  # hash: project id -> project JSON

    def p(self, pid: str, what: str) -> str:
        """Per-project keys. ``what`` is one of:

        ==========  ==============================================================================
        items       hash id -> item JSON (text, features, meta, votes, gold)
        seq         list of ids; index = the item's seq
        pos         hash id -> ``seq SEP is_eval SEP rand_key``
        pool        zset of non-evaluation ids with room for another holder, by rand_key
        evalpool    the same for the evaluation slice
        evalset     set of evaluation ids (all of them, for counts)
        leasing     zset lease id -> expires_at, until that expiry ends the lease's holds
        held        zset ``id SEP annotator`` -> expires_at (holds written before ``leasing``)
        hold        hash ``id SEP annotator`` -> ``lease SEP expires_at`` (shared holds); nholds: id -> count
        queue       zset id -> rank (best first); reasons: hash id -> reasons JSON
        answered    set of ``id SEP annotator``
        nlabels     hash id -> number of label answers; flagged: set of flagged ids
        log         list of annotation JSON; position (1-based) = the annotation's seq
        idem        hash idempotency key -> log position; labels: counter of label events
        lfs         hash name -> LF JSON; rounds: list of round JSON; jobs: list of job ids
        assertions  hash name -> registered assertion JSON (with its registration order)
        ==========  ==============================================================================
        """
        return f"{self.ns}:p:{{{pid}}}:{what}"

    def votes(self, pid: str, version: str) -> str:
        return f"{self.ns}:p:{{{pid}}}:votes:{version}"  # hash: data, faults, first_error

    def array(self, pid: str, name: str) -> str:
        return f"{self.ns}:p:{{{pid}}}:array:{name}"

    def job_active(self, pid: str, kind: str) -> str:
        return f"{self.ns}:p:{{{pid}}}:job-active:{kind}"  # id of the queued/running job of a kind

    def lease(self, lease_id: str) -> str:
        # hash: project, annotator, created_at, items (its item ids joined by SEP), keys (their
        # pool keys, likewise), evals (a 1 or 0 per item), sole (a 1 per item held by this flag
        # alone while it is open); another item is open in the lease while the project's ``hold``
        # names the lease
        return f"{self.ns}:lease:{lease_id}"

    def lease_format(self) -> str:
        # "2": holds an item's only holder takes are sole flags in the lease's hash; absent: every
        # hold is an entry in ``hold`` (all that releases before sole flags read); see
        # RedisStore.upgrade_lease_format
        return f"{self.ns}:lease-format"

    def lease_items(self, lease_id: str) -> str:
        # a lease written before the ``items`` field: hash item id -> ``state SEP expires_at ...``
        return f"{self.ns}:lease:{lease_id}:items"

    def job(self, job_id: str) -> str:
        return f"{self.ns}:job:{job_id}"

    def lock(self, name: str) -> str:
        return f"{self.ns}:lock:{name}"  # string ``owner SEP expires_at`` with PX ttl

    def fence(self, name: str) -> str:
        return f"{self.ns}:fence:{name}"  # counter: the last fencing token handed out
