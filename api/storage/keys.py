"""Every Redis key name labelloop uses, in one place (the Lua scripts get theirs as arguments:
:mod:`api.storage.redis_common`). ``ns`` is a namespace prefix so several deployments (or tests)
can share one server; per-project keys put the project id in a hash tag (``{pid}``)."""

from __future__ import annotations

__all__ = ["PROJECT", "SEP", "Keys"]

SEP = "\x1f"  # joins fields in set members and values; refused inside item ids and annotators

# The per-project keys the lease scripts use, in the order they are passed (KEYS[1], ...):
#   items     hash id -> item JSON (text, features, meta, votes, gold)
#   state     hash id -> ``seq SEP is_eval SEP rand_key SEP pool SEP pool_key SEP required SEP
#             answers SEP holds``: where the item is and how many answers it needs and has
#   flagged   set of flagged ids
#   pool      zset of the open ids of the main pool, by pool_key (rand_key);  evalpool, goldpool,
#             reviewpool: the same for the other pools (review by arrival: reviewseq counts them)
#   queue     zset id -> rank (best first);  reasons: hash id -> reasons JSON
#   holds     hash ``id SEP annotator`` -> lease id: the live holds (at most one per pair)
#   leasing   zset lease id -> expires_at, until that expiry (or a sweep) ends its holds
#   answered  set of ``id SEP annotator``
#   log       list of annotation JSON; position (1-based) = the annotation's seq
#   idem      hash ``annotator SEP key`` -> ``log position SEP payload``;  labels: answer counter
#   seq       list of ids (index = the item's seq);  evalset: set of evaluation ids
PROJECT = ("items", "state", "flagged", "pool", "evalpool", "goldpool", "reviewpool", "reviewseq",
           "queue", "reasons", "holds", "leasing", "answered", "log", "idem", "labels", "seq",
           "evalset")


class Keys:
    def __init__(self, ns: str) -> None:
        self.ns = ns

    def projects(self) -> str:
        return f"{self.ns}:projects"  # hash: project id -> project JSON

    def p(self, pid: str, what: str) -> str:
        """A per-project key: one of :data:`PROJECT`, or ``rounds`` (list of round JSON)."""
        return f"{self.ns}:p:{{{pid}}}:{what}"

    def project(self, pid: str) -> list[str]:
        """The project's keys in :data:`PROJECT` order, as the scripts take them."""
        return [self.p(pid, what) for what in PROJECT]

    def clock(self) -> str:
        return f"{self.ns}:lease-clock"  # the latest time a lease or a sweep ran at

    def array(self, pid: str, name: str) -> str:
        return f"{self.ns}:p:{{{pid}}}:array:{name}"

    def lease(self, lease_id: str) -> str:
        # hash: project, annotator, created_at, items (ids joined by SEP), reasons (their reasons
        # JSON, likewise); kept a day past its expiry
        return f"{self.ns}:lease:{lease_id}"

    def record(self, name: str) -> str:
        return f"{self.ns}:r:{name}"  # a small record of the store (see ``Store._records``)
