"""The FastAPI coordinator: app factory, error mapping, body limits, the lease sweeper."""

from __future__ import annotations

import gc
import logging
import math
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from api.auth import AuthGate, TokenRegistry
from api.openapi import describe
from api.routes import (
    annotate,
    assertions,
    export,
    items,
    jobs,
    label_studio,
    lfs,
    projects,
    quality,
    review,
)
from api.routes.ui import add_ui
from api.service.render import LeaseRenderer
from api.service.services import Services, build_services
from api.settings import Settings
from api.storage.base import StoreUnavailable
from labeling.errors import (
    Conflict,
    InvalidInput,
    LabelloopError,
    LFLoadError,
    NotFittedError,
    NotFound,
)
from labeling.validation import quote

__all__ = ["SERVER_OPTIONS", "build_services", "create_app"]

log = logging.getLogger(__name__)

# How uvicorn serves the app: httptools parses HTTP when installed (uvicorn[standard])
SERVER_OPTIONS = {"http": "auto"}
MAX_ERRORS = 20  # validation errors listed in one 422

STATUS = [  # most specific first; api/ alone knows HTTP codes
    (StoreUnavailable, 503),
    (NotFound, 404),
    (Conflict, 409),
    (NotFittedError, 409),
    (LFLoadError, 422),
    (InvalidInput, 422),
    (LabelloopError, 500),
]


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, counting streamed bodies too."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._reject(send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send):
        body = b'{"detail":"request body larger than the configured limit (max_body_bytes)"}'
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def _sweeper(services: Services, stop: threading.Event) -> None:
    while not stop.wait(services.settings.sweep_interval_s):
        try:
            services.metrics.leases_expired.inc(services.store.expire(services.clock()))
        except LabelloopError:
            log.exception("lease sweep failed")
        try:  # jobs whose replica died: fail them once their lock expired
            services.jobs.reap()
        except LabelloopError:
            log.exception("job sweep failed")


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or (services.settings if services else Settings.from_env())
    tokens = TokenRegistry.load(settings.tokens_file, settings.admin_token)
    if not tokens.enabled and not settings.loopback:
        raise InvalidInput(
            f"refusing to serve on {settings.host} without tokens: set LABELLOOP_TOKENS_FILE or "
            "LABELLOOP_ADMIN_TOKEN, or bind to 127.0.0.1"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        svc = services or build_services(settings)
        app.state.services = svc
        # what start-up imported and built lives as long as the process: kept out of the
        # collector's full passes, which otherwise walk it all (about 200k objects) every few
        # hundred leases, their objects being alive while they wait for a batch (bench.lease_load)
        gc.freeze()
        stop = threading.Event()
        thread = threading.Thread(target=_sweeper, args=(svc, stop), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
            if services is None:
                svc.close()

    app = FastAPI(
        title="labelloop",
        version="0.1.0",
        description="Active-learning and weak-supervision labeling service.",
        lifespan=lifespan,
        docs_url=None,  # served from vendored assets by add_ui: /docs works offline
        redoc_url=None,
    )
    app.state.tokens = tokens
    app.state.renderer = LeaseRenderer()
    if services is not None:
        app.state.services = services

    for exc_type, status in STATUS:
        app.add_exception_handler(exc_type, _handler(status))
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(RecursionError, _too_deep)

    @app.get("/health", tags=["health"])
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", tags=["health"])
    def ready(request: Request):
        ok = request.app.state.services.store.ping()
        return JSONResponse({"store": "ok" if ok else "down"}, status_code=200 if ok else 503)

    for module in (annotate, projects, items, lfs, assertions, jobs, export, label_studio, quality,
                   review):
        app.include_router(module.router)
    add_ui(app)
    app.openapi = lambda: describe(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(AuthGate, tokens=tokens)  # no body is read before this
    if settings.cors_origins:  # off unless LABELLOOP_CORS_ORIGINS names origins; outermost, so
        # preflights and refusals carry the CORS headers
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["authorization", "content-type"])
    return app


def _handler(status: int):
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        if status >= 500:
            log.error("unmapped labelloop error: %s", exc)
        return error_response(status, str(exc), type(exc).__name__)

    return handle


def error_response(status: int, detail: str | list, error: str) -> JSONResponse:
    """An error body (:class:`api.schemas.ErrorOut`) that always encodes: text made valid
    Unicode (a lone surrogate written as its escape), numbers finite, long text cut."""
    return JSONResponse({"detail": _encodable(detail), "error": error}, status_code=status)


def _encodable(value, limit: int = 2000):
    if isinstance(value, str):
        value = value if len(value) <= limit else value[:limit] + "..."
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_encodable(str(k), 200): _encodable(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v, limit) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _encodable(str(value), limit)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 for a body, query or path that fails its model: where, what, and at most a short
    prefix of the input (never the input itself, which may be megabytes)."""
    errors = [{"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
               "msg": e.get("msg", ""), "type": e.get("type", ""),
               **({"input": quote(e["input"])} if "input" in e else {})}
              for e in exc.errors()[:MAX_ERRORS]]
    return error_response(422, errors, "RequestValidationError")


async def _too_deep(request: Request, exc: RecursionError) -> JSONResponse:
    return error_response(422, "input nested too deeply to read", "InvalidInput")
