"""The OpenAPI document, made to say what the server really answers.

FastAPI documents each route's success response and a 422 of its own shape. On top of that this
adds, to every operation, the errors the app can answer (one body model, :data:`ERROR_OUT`, for
all of them: ``detail`` is text, or for a request that fails its model a list of
``{loc, msg, type, input}``), and gives the file downloads their real media types.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.auth import PUBLIC_PATHS

__all__ = ["ERROR_OUT", "FILE_MEDIA", "describe"]

ERROR_OUT: dict[str, Any] = {
    "title": "ErrorOut",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"anyOf": [
            {"type": "string"},
            {"type": "array", "items": {
                "type": "object", "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"},
                                                                 {"type": "integer"}]}},
                    "msg": {"type": "string"}, "type": {"type": "string"},
                    "input": {"type": "string", "description": "a short prefix of the input"},
                }}},
        ]},
        "error": {"type": "string", "description": "the error's class"},
    },
}
ERRORS = {
    "400": "malformed request (for example a body that is not JSON)",
    "401": "missing or unknown bearer token",
    "403": "the token's role or project scope does not allow this (or, without tokens, the "
           "request did not arrive on loopback)",
    "404": "no such project, item, lease, LF, assertion or job",
    "409": "conflicts with the current state (repeated id, a lease not yours or expired, a job "
           "of that kind already running, a model not trained yet)",
    "413": "request body larger than max_body_bytes",
    "422": "invalid input; ``detail`` names what was wrong",
    "503": "the store is unavailable",
}
PUBLIC_ERRORS = ("503",)
FILE_MEDIA = ("application/x-ndjson", "text/csv", "application/vnd.apache.parquet")
FILE_ROUTES = ("/projects/{project_id}/export", "/jobs/{job_id}/file")
TEXT_ROUTES = {"/metrics": "text/plain"}  # Prometheus' text format


def describe(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (built once, then cached on the app)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorOut"] = ERROR_OUT
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
    for path, ops in doc.get("paths", {}).items():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            codes = PUBLIC_ERRORS if path in PUBLIC_PATHS else ERRORS
            for code in codes:
                responses[code] = {"description": ERRORS[code], **ref}
            if path in FILE_ROUTES:
                ok = next(c for c in responses if c.startswith("2"))
                responses[ok]["content"] = {m: {"schema": {"type": "string", "format": "binary"}}
                                            for m in FILE_MEDIA}
            if path in TEXT_ROUTES:
                responses["200"]["content"] = {TEXT_ROUTES[path]: {"schema": {"type": "string"}}}
    app.openapi_schema = doc
    return doc
