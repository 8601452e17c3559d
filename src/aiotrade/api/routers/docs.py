"""The interactive API docs with no internet: Swagger UI (``/docs``) and ReDoc (``/redoc``) from assets
shipped in the ``fastapi-offline`` package, served by the app itself (FastAPI's defaults load from a CDN).

The pages and their assets are open like ``/openapi.json``. The assets live under ``/dashboard/static/docs/``
because the authentication middleware opens ``/docs`` as one exact path and ``/dashboard`` as a prefix.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response

from aiotrade.api.security import open_route
from aiotrade.api.static import Assets

DOCS_ASSETS = "/dashboard/static/docs"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def docs_router(*, title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    """``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and their assets (read into memory here, once)."""
    assets = Assets.read(resources.files("fastapi_offline") / "static", _FILES, max_age_s=86_400)
    router = APIRouter(include_in_schema=False, dependencies=[open_route()])

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} — API docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            oauth2_redirect_url=OAUTH2_REDIRECT,
            swagger_ui_parameters={"persistAuthorization": True, "displayOperationId": True},
        )

    @router.get(OAUTH2_REDIRECT)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} — API reference",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    @router.get(DOCS_ASSETS + "/{name}")
    async def docs_asset(request: Request, name: str) -> Response:
        return assets.response(request, name)

    return router
