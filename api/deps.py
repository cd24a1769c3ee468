"""Dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.service.services import Services

__all__ = ["Now", "ServicesDep"]


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_now(request: Request) -> float:
    return request.app.state.services.clock()


ServicesDep = Annotated[Services, Depends(get_services)]
Now = Annotated[float, Depends(get_now)]
