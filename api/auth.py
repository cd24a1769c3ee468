"""Tokens and roles.

Roles nest: ``annotator`` (lease, submit, skip, correct their answers in their projects) <
``reviewer`` (also lease the review queue and submit ``review`` decisions) < ``engineer`` (register
LFs and assertions, which runs code; trigger jobs; read analysis; ingest; export) < ``admin``
(projects, settings). Tokens come from a JSON file (a Kubernetes Secret) and/or ``LABELLOOP_ADMIN_TOKEN``:

    [{"token": "...", "name": "alice", "role": "annotator", "projects": ["spam"]}, ...]

``projects`` may be omitted or ``"*"`` for every project. The file is checked at start-up: a
``projects`` that is neither ``"*"`` nor a list of project ids, a token listed twice, and the
placeholder tokens of ``k8s/secret.yaml`` are refused with the entry named.

:class:`AuthGate` authenticates every request before its route reads the body: no token or an
unknown one gets 401 at once (roles and project scopes are checked by the routes' dependencies).
With no tokens configured the service runs open, and then it answers only requests that arrived
on a loopback address, wherever it is bound.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from labeling.errors import InvalidInput
from labeling.validation import PROJECT_ID

__all__ = ["PUBLIC_PATHS", "ROLES", "Admin", "Annotator", "AuthGate", "Engineer", "Principal",
           "Reviewer", "TokenRegistry", "authorize", "require"]

ROLES = {"annotator": 1, "reviewer": 2, "engineer": 3, "admin": 4}
ACTS_AS_SELF = ("annotator", "reviewer")  # roles that may act only under their own name
PUBLIC_PATHS = frozenset({"/health", "/ready", "/docs", "/docs/oauth2-redirect", "/redoc",
                          "/openapi.json", "/", "/ui", "/label"})
# the labeling page's and the docs' static files: the page asks for a token once it has loaded
PUBLIC_PREFIXES = ("/static/", "/docs-assets/")
PLACEHOLDER = "change-me"  # the k8s/secret.yaml placeholders all start with it


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
        """Annotators and reviewers act only as themselves; engineers and admins may act for
        anyone."""
        if self.role in ACTS_AS_SELF and annotator != self.name:
            raise HTTPException(403, f"token {self.name!r} cannot act as annotator {annotator!r}")


OPEN = Principal("local", "admin", None)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenRegistry:
    def __init__(self, entries: list[dict]) -> None:
        self._by_digest: dict[bytes, Principal] = {}
        first: dict[bytes, str] = {}
        for k, e in enumerate(entries):
            if not isinstance(e, dict):
                raise InvalidInput(f"token entry {k}: expected an object, got {type(e).__name__}")
            token, role = e.get("token"), e.get("role")
            name = str(e.get("name", f"token{k}"))
            where = f"token entry {k} ({name!r})"
            if not isinstance(token, str) or len(token) < 16 or token != token.strip():
                raise InvalidInput(f"{where}: 'token' must be a string of >= 16 characters "
                                   "without surrounding whitespace")
            if token.lower().startswith(PLACEHOLDER):
                raise InvalidInput(f"{where}: the token is a placeholder from k8s/secret.yaml; "
                                   "replace it with a long random string")
            if role not in ROLES:
                raise InvalidInput(f"{where}: role must be one of {list(ROLES)}, got {role!r}")
            projects = e.get("projects", "*")
            if projects == "*":
                scope = None
            elif isinstance(projects, list) and all(
                    isinstance(p, str) and PROJECT_ID.fullmatch(p) for p in projects):
                scope = frozenset(projects)
            else:
                raise InvalidInput(f"{where}: 'projects' must be \"*\" or a list of project ids, "
                                   f"got {projects!r:.80}")
            digest = _digest(token)
            if digest in first:
                raise InvalidInput(f"{where}: the same token as {first[digest]}; each token must "
                                   "be listed once")
            first[digest] = where
            self._by_digest[digest] = Principal(name, role, scope)

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


def bearer_or_basic(header: str) -> str | None:
    """The token an ``Authorization`` header carries: ``Bearer <token>``, or HTTP basic auth
    with the token as the password (any user name; what Label Studio sends an ML backend)."""
    scheme, _, cred = header.partition(" ")
    cred = cred.strip()
    if scheme.lower() == "bearer":
        return cred or None
    if scheme.lower() == "basic":
        try:
            token = base64.b64decode(cred, validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return token or None
    return None


def authorize(request: Request, role: str) -> Principal:
    """The request's principal if its token has ``role`` (and the path's project, if any);
    401 or 403 otherwise."""
    registry: TokenRegistry = request.app.state.tokens
    if not registry.enabled:
        return OPEN
    token = bearer_or_basic(request.headers.get("authorization", ""))
    if token is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    principal = registry.lookup(token)
    if principal is None:
        raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
    if not principal.can(role):
        raise HTTPException(403, f"this needs the {role!r} role; token {principal.name!r} is {principal.role!r}")
    project_id = request.path_params.get("project_id")
    if project_id is not None:
        principal.check_project(project_id)
    return principal


def _network_reachable(host: str | None) -> bool:
    """True when a connection arrived on a non-loopback IP address (a unix socket or an
    in-process transport names no IP: not reachable from the network)."""
    try:
        return host is not None and not ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class AuthGate:
    """ASGI middleware: authenticate before any route reads its body. With tokens, a request
    to a non-public path without a known bearer token gets 401 (its body unread); without
    tokens, a request that did not arrive on a loopback address gets 403."""

    def __init__(self, app, tokens: TokenRegistry) -> None:
        self.app, self.tokens = app, tokens

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self.tokens.enabled:
            server = scope.get("server")
            if server is not None and _network_reachable(server[0]):
                return await _refuse(send, 403, "this server runs without tokens and answers on "
                                                "loopback only", b"")
            return await self.app(scope, receive, send)
        if scope["path"] in PUBLIC_PATHS or scope["path"].startswith(PUBLIC_PREFIXES):
            return await self.app(scope, receive, send)
        header = b""
        for key, value in scope.get("headers") or ():
            if key == b"authorization":
                header = value
                break
        token = bearer_or_basic(header.decode("latin-1"))
        if token is None:
            return await _refuse(send, 401, "missing bearer token", b"Bearer")
        if self.tokens.lookup(token) is None:
            return await _refuse(send, 401, "unknown token", b"Bearer")
        return await self.app(scope, receive, send)


async def _refuse(send, status: int, detail: str, challenge: bytes) -> None:
    body = json.dumps({"detail": detail, "error": "HTTPException"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if challenge:
        headers.append((b"www-authenticate", challenge))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def require(role: str):
    async def dependency(request: Request) -> Principal:
        return authorize(request, role)

    return dependency


Annotator = Annotated[Principal, Depends(require("annotator"))]
Reviewer = Annotated[Principal, Depends(require("reviewer"))]
Engineer = Annotated[Principal, Depends(require("engineer"))]
Admin = Annotated[Principal, Depends(require("admin"))]
