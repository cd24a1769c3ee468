"""A route class for the hottest endpoints: documented by FastAPI, run without its machinery."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, get_type_hints

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

__all__ = ["LeanRoute"]


class LeanRoute(APIRoute):
    """FastAPI documents the endpoint from its signature as for any route, but each request calls
    it directly: the path parameters as strings, the body parsed straight from its bytes into the
    one pydantic model parameter (a body that is not JSON or not valid is a 422 as on any route),
    the ``Request`` itself;
    the endpoint returns the ``Response``. FastAPI's own per-request work (solving dependencies,
    decoding and validating the body generically, encoding the result) cost a lease about 0.2 ms
    of CPU, as much again as the whole hello-world request (bench.lease_load). So an endpoint
    on this route takes no dependencies and checks its own token."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        hints = get_type_hints(endpoint)
        names = list(inspect.signature(endpoint).parameters)
        bodies = [n for n in names if isinstance(hints.get(n), type) and issubclass(hints[n], BaseModel)]
        if len(bodies) > 1 or not inspect.iscoroutinefunction(endpoint):
            raise TypeError(f"{endpoint.__name__}: a LeanRoute endpoint is a coroutine with at most one body")
        body = bodies[0] if bodies else None
        model = hints[body] if body else None
        requests = [n for n in names if hints.get(n) is Request]
        paths = [n for n in names if n != body and n not in requests]
        if set(paths) != set(self.param_convertors):
            raise TypeError(f"{endpoint.__name__}: parameters {paths} are not the path's {list(self.param_convertors)}")

        async def handle(request: Request) -> Response:
            kwargs: dict[str, Any] = {n: request.path_params[n] for n in paths}
            kwargs.update(dict.fromkeys(requests, request))
            if model is not None:
                if not _is_json(request.headers.get("content-type", "")):
                    raise RequestValidationError([{
                        "type": "content_type", "loc": ("body",), "input": request.headers.get("content-type"),
                        "msg": "the body must be JSON, sent with content-type application/json"}])
                try:
                    kwargs[body] = model.model_validate_json(await request.body())
                except ValidationError as e:  # located in the body, as FastAPI places them
                    errors = [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
                    raise RequestValidationError(errors) from None
            return await endpoint(**kwargs)

        return handle


def _is_json(content_type: str) -> bool:
    """Whether a content type is JSON (``application/json``, ``application/*+json``), as FastAPI
    requires of a JSON body."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))
