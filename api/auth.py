"""Tokens and roles.

Roles nest: ``annotator`` (lease, submit, skip in their projects) < ``engineer`` (register LFs and
assertions, which runs code; trigger jobs; read analysis; ingest; export) < ``admin`` (projects,
settings). Tokens come from a JSON file (a Kubernetes Secret) and/or ``LABELLOOP_ADMIN_TOKEN``:

    [{"token": "...", "name": "alice", "role": "annotator", "projects": ["spam"]}, ...]

``projects`` may be omitted or ``"*"`` for every project. With no tokens configured the service runs
open, which ``serve`` allows only on a loopback address.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from labeling.errors import InvalidInput

__all__ = ["ROLES", "Admin", "Annotator", "Engineer", "Principal", "TokenRegistry", "authorize", "require"]

ROLES = {"annotator": 1, "engineer": 2, "admin": 3}


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    projects: frozenset[str] | None  # None = every project

    def can(self, role: str) -> bool:
        return ROLES[self.role] >= ROLES[role]

    def check_project(self, project_id: str) -> None:
        if self.projects is not None and project_id not in self.projects:
            raise HTTPException(403, f"token {self.name!r} has no access to project {project_id!r}")

    def check_annotator(self, annotator: str) -> None:
        """Annotators act only as themselves; engineers and admins may act for anyone."""
        if self.role == "annotator" and annotator != self.name:
            raise HTTPException(403, f"token {self.name!r} cannot act as annotator {annotator!r}")


OPEN = Principal("local", "admin", None)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenRegistry:
    def __init__(self, entries: list[dict]) -> None:
        self._by_digest: dict[bytes, Principal] = {}
        for k, e in enumerate(entries):
            token, role = e.get("token"), e.get("role")
            if not isinstance(token, str) or len(token) < 16:
                raise InvalidInput(f"token entry {k}: 'token' must be a string of >= 16 characters")
            if role not in ROLES:
                raise InvalidInput(f"token entry {k}: role must be one of {list(ROLES)}, got {role!r}")
            projects = e.get("projects", "*")
            scope = None if projects == "*" else frozenset(projects)
            self._by_digest[_digest(token)] = Principal(str(e.get("name", f"token{k}")), role, scope)

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    @classmethod
    def load(cls, tokens_file: str | None, admin_token: str | None) -> TokenRegistry:
        entries: list[dict] = []
        if tokens_file:
            try:
                entries = json.loads(Path(tokens_file).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise InvalidInput(f"tokens file {tokens_file}: {exc}") from exc
            if not isinstance(entries, list):
                raise InvalidInput(f"tokens file {tokens_file}: expected a JSON list of tokens")
        if admin_token:
            entries.append({"token": admin_token, "name": "admin", "role": "admin"})
        return cls(entries)

    def lookup(self, token: str) -> Principal | None:
        return self._by_digest.get(_digest(token))  # keyed by SHA-256: no secret-dependent timing


def authorize(request: Request, role: str) -> Principal:
    """The request's principal if its token has ``role`` (and the path's project, if any);
    401 or 403 otherwise."""
    registry: TokenRegistry = request.app.state.tokens
    if not registry.enabled:
        return OPEN
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    principal = registry.lookup(token.strip())
    if principal is None:
        raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
    if not principal.can(role):
        raise HTTPException(403, f"this needs the {role!r} role; token {principal.name!r} is {principal.role!r}")
    project_id = request.path_params.get("project_id")
    if project_id is not None:
        principal.check_project(project_id)
    return principal


def require(role: str):
    async def dependency(request: Request) -> Principal:
        return authorize(request, role)

    return dependency


Annotator = Annotated[Principal, Depends(require("annotator"))]
Engineer = Annotated[Principal, Depends(require("engineer"))]
Admin = Annotated[Principal, Depends(require("admin"))]
