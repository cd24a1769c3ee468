"""The labeling page and dashboard (plain files in ``api/static/``), the offline API docs, the
page's small read routes and ``/metrics``.

The page is one HTML file with its script and style; its views are addressed after ``#``
(``/#/label/P``, ``/#/projects/P``), so ``/projects/{p}`` stays the API's JSON. Every asset is
served from the package: nothing is loaded from the internet.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.auth import Annotator, Engineer, authorize
from api.deps import Now, ServicesDep
from api.metrics import CONTENT_TYPE_LATEST
from api.service import dashboard as svc

__all__ = ["STATIC", "add_ui", "router"]

STATIC = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(tags=["page"])


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html",
                        headers={"cache-control": "no-cache"})


@router.get("/ui", include_in_schema=False)
@router.get("/label", include_in_schema=False)
def to_index() -> RedirectResponse:
    return RedirectResponse("/", status_code=307)


@router.get("/me")
def me(who: Annotator) -> dict:
    """Who the request's token is: name, role and projects (null = every project)."""
    return {"name": who.name, "role": who.role,
            "projects": None if who.projects is None else sorted(who.projects)}


@router.get("/projects/{project_id}/progress")
def progress(project_id: str, s: ServicesDep, now: Now, who: Annotator,
             annotator: str = Query(min_length=1, max_length=200)) -> dict:
    """One annotator's progress: labeled today (UTC), in total, and items left in the queue."""
    who.check_annotator(annotator)
    return svc.annotator_progress(s.store, project_id, annotator, now)


@router.get("/projects/{project_id}/dashboard")
def dashboard(project_id: str, s: ServicesDep, now: Now, who: Engineer) -> dict:
    """The dashboard's data: learning curve with 95% intervals, queue, annotators, recent jobs."""
    return svc.dashboard(s.store, project_id, now)


@router.get("/metrics", include_in_schema=True, tags=["health"])
def metrics(request: Request, s: ServicesDep) -> Response:
    """Prometheus text format. With tokens configured it needs an engineer token (Prometheus:
    ``authorization: {credentials: ...}`` in the scrape config)."""
    authorize(request, "engineer")
    return Response(s.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def add_ui(app: FastAPI) -> None:
    """The page, its assets, and the API docs (Swagger UI at ``/docs``, ReDoc at ``/redoc``)
    from the files the ``fastapi-offline`` package ships (Swagger UI 5, which reads the OpenAPI
    3.1 schema FastAPI writes)."""
    from importlib.resources import files

    assets = str(files("fastapi_offline") / "static")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                              redoc_js_url="/docs-assets/redoc.standalone.js",
                              redoc_favicon_url="/docs-assets/favicon.png", with_google_fonts=False)

    app.include_router(router)
