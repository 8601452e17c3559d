"""The live dashboard page: static HTML, JS and CSS shipped in the package (api/static/), open without a key.

The page itself asks for an API key and calls the API with it (REST with the header, the live stream with a
single-use ticket); nothing served here needs or reveals a key. The Content-Security-Policy keeps the page to
its own origin: no CDN, no inline script, no frames.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from aiotrade.api.security import open_route
from aiotrade.api.static import DASHBOARD_FILES, Assets, dashboard_files

PAGE = "index.html"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def dashboard_router() -> APIRouter:
    """``/dashboard`` and its files under ``/dashboard/static/`` (read into memory here, once)."""
    # Short-lived caching: a new release's page and script must not be mixed with an old one for long.
    assets = Assets.read(dashboard_files(), DASHBOARD_FILES, max_age_s=60)
    router = APIRouter(include_in_schema=False, dependencies=[open_route()])

    @router.get("/dashboard")
    async def dashboard(request: Request) -> Response:
        response = assets.response(request, PAGE)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @router.get("/dashboard/static/{name}")
    async def dashboard_asset(request: Request, name: str) -> Response:
        if name == PAGE:
            return await dashboard(request)
        return assets.response(request, name)

    return router
