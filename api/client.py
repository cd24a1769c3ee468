"""A Python client for the labelloop coordinator (httpx, synchronous).

    from api.client import Client

    with Client("http://127.0.0.1:8000", token=None) as c:
        with c.lease("youtube-spam", annotator="me", size=5) as lease:   # released on error
            answers = [lease.answer(it, label="SPAM") for it in lease.items]
            c.submit("youtube-spam", "me", answers)                        # retried safely

Errors from the server come back as :class:`ApiError` subclasses named after the status
(:class:`NotFound`, :class:`Conflict`, :class:`InvalidRequest`, ...), carrying the server's
``detail`` and error type. ``submit`` gives every annotation an idempotency key (unless it has
one) and retries on connection errors and 5xx: a retried submission has no second effect.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx

__all__ = ["ApiError", "Client", "Conflict", "Forbidden", "InvalidRequest", "Lease", "NotFound",
           "Unauthorized", "Unavailable"]


class ApiError(Exception):
    """An error answer: ``status``, the server's ``detail`` and its error type (``error``)."""

    def __init__(self, status: int, detail: Any, error: str | None = None) -> None:
        super().__init__(f"{status} {error or ''}: {detail}".replace("  ", " "))
        self.status, self.detail, self.error = status, detail, error


class InvalidRequest(ApiError):
    """400, 413 or 422: the request was refused; the detail names what was wrong."""


class Unauthorized(ApiError):
    """401: no token, or an unknown one."""


class Forbidden(ApiError):
    """403: the token lacks the role or the project."""


class NotFound(ApiError):
    """404."""


class Conflict(ApiError):
    """409: e.g. a job of that kind already runs, or the lease no longer holds the item."""


class Unavailable(ApiError):
    """503: the store is down (retry later)."""


_BY_STATUS = {400: InvalidRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
              409: Conflict, 413: InvalidRequest, 422: InvalidRequest, 503: Unavailable}


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text}
    detail = body.get("detail", body) if isinstance(body, dict) else body
    error = body.get("error") if isinstance(body, dict) else None
    raise _BY_STATUS.get(response.status_code, ApiError)(response.status_code, detail, error)


@dataclass
class Lease:
    """A leased batch. As a context manager it releases, when the block ends (by an error or
    not), the items no submission through this client answered: nothing, if all were."""

    client: Client
    lease_id: str
    project_id: str
    annotator: str
    expires_at: float
    items: list[dict[str, Any]]
    exhausted: bool
    classes: list[dict[str, str]] = field(default_factory=list)
    guidelines_version: int = 1
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    _answered: set[str] = field(default_factory=set, repr=False)

    def answer(self, item: dict[str, Any] | str, *, label: int | str | None = None,
               kind: str = "label", comment: str = "") -> dict[str, Any]:
        """One annotation of this lease for :meth:`Client.submit` (key: lease id / item id)."""
        item_id = item if isinstance(item, str) else item["id"]
        out: dict[str, Any] = {"item_id": item_id, "lease_id": self.lease_id, "kind": kind,
                               "idempotency_key": f"{self.lease_id}/{item_id}"}
        if label is not None:
            out["label"] = label
        if comment:
            out["comment"] = comment
        return out

    def renew(self) -> float:
        got = self.client._call("POST", f"/leases/{self.lease_id}/renew", json={"annotator": self.annotator})
        self.expires_at = got["expires_at"]
        return self.expires_at

    def release(self, item_ids: Sequence[str] | None = None) -> int:
        body: dict[str, Any] = {"annotator": self.annotator}
        if item_ids is not None:
            body["item_ids"] = list(item_ids)
        return self.client._call("POST", f"/leases/{self.lease_id}/release", json=body)["released"]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.client._leases.pop(self.lease_id, None)
        left = [it["id"] for it in self.items if it["id"] not in self._answered]
        if left:
            try:
                self.release(left)
            except (ApiError, httpx.HTTPError):
                if exc_type is None:
                    raise  # a failed release on an error path must not hide the error


class Client:
    """Sync client. ``token``: a bearer token (None on a server without tokens). ``retries``:
    how often a submit (idempotent by key) is retried on connection errors and 5xx."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", *, token: str | None = None,
                 timeout: float = 30.0, retries: int = 3, backoff_s: float = 0.5,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                 transport=transport)
        self.retries, self.backoff_s = retries, backoff_s
        self._leases: dict[str, Lease] = {}  # open context-managed leases, by id

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        _raise_for(r)
        return None if r.status_code == 204 or not r.content else r.json()

    # -- projects ----------------------------------------------------------------------
    def projects(self) -> list[dict[str, Any]]:
        return self._call("GET", "/projects")

    def project(self, project_id: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{project_id}")

    def create_project(self, project_id: str, classes: Sequence[str | dict[str, str]], *,
                       guidelines: str = "", settings: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call("POST", "/projects", json={"id": project_id, "classes": list(classes),
                                                     "guidelines": guidelines, "settings": settings or {}})

    def update_settings(self, project_id: str, **changes: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/projects/{project_id}/settings", json=changes)

    def update_guidelines(self, project_id: str, guidelines: str, **settings: Any) -> dict[str, Any]:
        """New guidelines text; ``guidelines_version`` goes up by one unless given."""
        return self._call("PATCH", f"/projects/{project_id}",
                          json={"guidelines": guidelines, "settings": settings})

    def stats(self, project_id: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{project_id}/stats")

    def rounds(self, project_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/projects/{project_id}/rounds")

    # -- items and LFs ---------------------------------------------------------------
    def ingest(self, project_id: str, items: Iterable[dict[str, Any]], *, on_conflict: str = "reject",
               chunk: int = 5000) -> dict[str, int]:
        """Add items (dicts with ``text``/``features``/``id``...), ``chunk`` per request; the
        counts summed."""
        total = {"inserted": 0, "updated": 0, "eval_items": 0, "vote_lfs": 0}
        batch: list[dict[str, Any]] = []

        def send() -> None:
            got = self._call("POST", f"/projects/{project_id}/items",
                             json={"items": batch, "on_conflict": on_conflict})
            for k in total:
                total[k] += got.get(k, 0)
            batch.clear()

        for it in items:
            batch.append(it)
            if len(batch) >= chunk:
                send()
        if batch:
            send()
        return total

    def register_lfs(self, project_id: str, *, source: str | None = None, module: str | None = None,
                     file: str | Path | None = None) -> list[dict[str, Any]]:
        if file is not None:
            source = Path(file).read_text(encoding="utf-8")
        return self._call("POST", f"/projects/{project_id}/lfs", json={"source": source, "module": module})

    def lf_analysis(self, project_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/projects/{project_id}/lfs/analysis")

    # -- annotation ---------------------------------------------------------------------
    def lease(self, project_id: str, annotator: str, size: int | None = None) -> Lease:
        return self._lease(f"/projects/{project_id}/leases", annotator, size)

    def review_lease(self, project_id: str, reviewer: str, size: int | None = None) -> Lease:
        """Lease items of the review queue (reviewer role); each item carries its earlier
        ``answers`` and ``review`` (why it is there). Decide with ``lease.answer(item,
        label=..., kind="review", comment=why)``."""
        return self._lease(f"/projects/{project_id}/review/leases", reviewer, size)

    def correct(self, project_id: str, annotator: str, item_id: str,
                label: int | str) -> dict[str, Any]:
        """Replace this annotator's earlier answer on ``item_id`` with ``label``."""
        return self.submit(project_id, annotator, [{"item_id": item_id, "lease_id": None,
                                                    "kind": "correct", "label": label}])

    def _lease(self, path: str, annotator: str, size: int | None) -> Lease:
        body: dict[str, Any] = {"annotator": annotator}
        if size is not None:
            body["size"] = size
        got = self._call("POST", path, json=body)
        lease = Lease(self, got["lease_id"], got["project_id"], got["annotator"], got["expires_at"],
                      got["items"], got["exhausted"], got.get("classes", []),
                      got.get("guidelines_version", 1), got)
        self._leases[lease.lease_id] = lease
        return lease

    def submit(self, project_id: str, annotator: str, annotations: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Submit annotations (from :meth:`Lease.answer` or dicts as the API takes them). Each
        gets an idempotency key if it has none, so the retries on connection errors and 5xx
        answers never count twice."""
        anns = [a if a.get("idempotency_key") else {**a, "idempotency_key": uuid.uuid4().hex}
                for a in annotations]
        body = {"annotator": annotator, "annotations": anns}
        for attempt in range(self.retries + 1):
            try:
                r = self.http.post(f"/projects/{project_id}/annotations", json=body)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
            else:
                if r.status_code < 500 or attempt == self.retries:
                    _raise_for(r)
                    got = r.json()
                    self._mark_answered(anns)
                    return got
            time.sleep(self.backoff_s * 2 ** attempt)
        raise AssertionError("unreachable")

    def _mark_answered(self, anns: Sequence[dict[str, Any]]) -> None:
        for a in anns:
            lease = self._leases.get(a.get("lease_id", ""))
            if lease is not None:
                lease._answered.add(a["item_id"])

    # -- jobs and export ------------------------------------------------------------------
    def start_job(self, project_id: str, kind: str = "round", **params: Any) -> dict[str, Any]:
        return self._call("POST", f"/projects/{project_id}/jobs", json={"kind": kind, **params})

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def wait_job(self, job_id: str, *, progress: Callable[[int, int, str], None] | None = None,
                 poll_s: float = 0.5, timeout_s: float = 3600.0) -> dict[str, Any]:
        """Poll a job until it ends, calling ``progress(done, total, message)`` on each change.
        Raises :class:`ApiError` (status 0) if it failed or was cancelled."""
        deadline, seen = time.monotonic() + timeout_s, None
        while True:
            job = self.job(job_id)
            now = (job["done"], job["total"], job["message"])
            if progress is not None and now != seen:
                progress(*now)
                seen = now
            if job["status"] == "succeeded":
                return job
            if job["status"] in ("failed", "cancelled"):
                raise ApiError(0, job.get("error") or job["status"], f"job {job['status']}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout_s}s")
            time.sleep(poll_s)

    def run_round(self, project_id: str, *, progress: Callable[[int, int, str], None] | None = None
                  ) -> dict[str, Any]:
        return self.wait_job(self.start_job(project_id, "round")["id"], progress=progress)

    def export(self, project_id: str, path: str | Path, *, format: str = "jsonl",
               min_confidence: float | None = None) -> Path:
        """Stream the export to ``path``."""
        params: dict[str, Any] = {"format": format}
        if min_confidence is not None:
            params["min_confidence"] = min_confidence
        path = Path(path)
        with self.http.stream("GET", f"/projects/{project_id}/export", params=params) as r:
            if not r.is_success:
                r.read()
                _raise_for(r)
            with path.open("wb") as f:
                for chunk in r.iter_bytes():
                    f.write(chunk)
        return path
