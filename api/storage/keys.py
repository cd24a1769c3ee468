"""Every Redis key name labelloop uses, in one place.

``ns`` is a namespace prefix so several deployments (or tests) can share one server.
"""

from __future__ import annotations

__all__ = ["Keys", "SEP"]

SEP = "\x1f"  # joins item id and annotator in set members and hold values


class Keys:
    def __init__(self, ns: str) -> None:
        self.ns = ns

    def projects(self) -> str:
        return f"{self.ns}:projects"  # hash: project id -> project JSON

    def p(self, pid: str, what: str) -> str:
        """Per-project keys. ``what`` is one of:

        items (hash id -> item JSON), seq (list of ids in seq order), pool / evalpool (zsets of
        unheld open items by rand_key), held (zset id -> hold expiry), pos (hash id -> seq SEP is_eval SEP rand_key), evalset (set of evaluation items), queue (zset id -> rank),
        reasons (hash id -> reasons JSON), hold (hash id -> lease SEP annotator SEP expires),
        answered (set of id SEP annotator), nlabels (hash id -> count), flagged (set),
        log (list of annotation JSON), idem (hash key -> log position), labels (counter),
        lfs (hash name -> LF JSON), rounds (list of round JSON), jobs (list of job ids)
        """
        return f"{self.ns}:p:{{{pid}}}:{what}"

    def votes(self, pid: str, version: str) -> str:
        return f"{self.ns}:p:{{{pid}}}:votes:{version}"  # hash: data, faults, first_error

    def array(self, pid: str, name: str) -> str:
        return f"{self.ns}:p:{{{pid}}}:array:{name}"

    def job_active(self, pid: str, kind: str) -> str:
        return f"{self.ns}:p:{{{pid}}}:job-active:{kind}"  # id of the queued/running job of a kind

    def lease(self, lease_id: str) -> str:
        return f"{self.ns}:lease:{lease_id}"  # hash: project, annotator, created_at

    def lease_items(self, lease_id: str) -> str:
        return f"{self.ns}:lease:{lease_id}:items"  # hash: item id -> JSON {state, expires, eval, reasons}

    def expiry(self) -> str:
        return f"{self.ns}:expiry"  # zset: project SEP item SEP lease -> expires_at

    def job(self, job_id: str) -> str:
        return f"{self.ns}:job:{job_id}"

    def lock(self, name: str) -> str:
        return f"{self.ns}:lock:{name}"

    def fence(self, name: str) -> str:
        return f"{self.ns}:fence:{name}"
