"""A ``LeanRoute`` refuses, when the route is made, an endpoint it could not call correctly."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from api.routes.lean import LeanRoute


class Body(BaseModel):
    name: str


class Other(BaseModel):
    size: int


async def good(project_id: str, body: Body, request: Request) -> Response:
    return Response(b"{}")


async def two_bodies(project_id: str, body: Body, other: Other) -> Response:
    return Response(b"{}")


def not_a_coroutine(project_id: str, body: Body) -> Response:
    return Response(b"{}")


async def unknown_parameter(project_id: str, body: Body, colour: str) -> Response:
    return Response(b"{}")


def route(endpoint) -> None:
    APIRouter().add_api_route("/projects/{project_id}/things", endpoint, methods=["POST"],
                              route_class_override=LeanRoute)


def test_an_endpoint_with_path_parameters_one_body_and_the_request_is_accepted():
    route(good)


@pytest.mark.parametrize(("endpoint", "message"), [
    (two_bodies, "at most one body"),
    (not_a_coroutine, "coroutine"),
    (unknown_parameter, "colour"),
])
def test_an_endpoint_it_cannot_call_is_refused_when_the_route_is_made(endpoint, message):
    with pytest.raises(TypeError, match=message):
        route(endpoint)


def test_the_lease_route_is_the_first_the_app_tries():
    """Starlette tries routes in order; the lease route, the hottest, is matched before any other
    and outside an included router (which matches a request twice)."""
    from api.app import create_app
    from api.settings import Settings

    app = create_app(Settings(store_url="sqlite:///:memory:"))
    first = app.router.routes[0]
    assert isinstance(first, LeanRoute) and first.path == "/projects/{project_id}/leases"
    assert first.methods == {"POST"}
