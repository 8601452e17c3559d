"""Every error as RFC 9457 problem+json, rendered in one place.

Shape: ``{"type", "title", "status", "detail", "instance", "errors": [{"name", "in", "detail"}]}``;
``errors`` names each offending parameter (query, path, header or a JSON-pointer into the body).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from aiotrade.errors import DomainError
from aiotrade.observability.logs import current_request_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:aiotrade:problem:"
# For a 503 or 429 whose cause names no wait of its own (the venue unreachable after every send, a service
# starting): about the circuit breaker's half-open probe, so a retry meets a venue that was looked at again.
DEFAULT_RETRY_AFTER_S = 2


def problem_response(
    request: Request,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    request_id = current_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    if status in (429, 503) and not any(name.lower() == "retry-after" for name in headers or {}):
        # Every "not now" says when to ask again; a caller that knows no better waits this long.
        headers = {**(headers or {}), "Retry-After": str(DEFAULT_RETRY_AFTER_S)}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers: dict[str, str] = {}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    # An error may carry headers of its own (WWW-Authenticate on a 401, RateLimit-* on a 429).
    headers.update(getattr(exc, "headers", None) or {})
    if getattr(exc, "replayed", False):  # the stored first answer of an Idempotency-Key, replayed as it was
        headers["Idempotent-Replayed"] = "true"
    extra = {} if exc.order_may_exist is None else {"order_may_exist": exc.order_may_exist}
    errors = [{"name": p.name, "detail": p.reason} for p in exc.invalid_params]
    return problem_response(
        request,
        status=exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        errors=errors,
        headers=headers,
        extra=extra,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        location, *path = error.get("loc") or ("body",)
        if location == "body":
            name = "/" + "/".join(str(p) for p in path)  # a JSON pointer into the body
        else:
            name = ".".join(str(p) for p in path) or str(location)
        errors.append({"name": name, "in": str(location), "detail": str(error.get("msg", "invalid"))})
    summary = "; ".join(f"{e['in']} {e['name']}: {e['detail']}" for e in errors)
    return problem_response(
        request, status=422, slug="invalid-input", title="Invalid input", detail=summary, errors=errors
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    slugs = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large", 415: "unsupported-media"}
    return problem_response(
        request,
        status=exc.status_code,
        slug=slugs.get(exc.status_code, "http-error"),
        title=str(exc.detail) if exc.status_code != 404 else "Not found",
        detail=str(exc.detail),
        headers=dict(exc.headers or {}),
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route offers at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    scope = {**request.scope, "method": "OPTIONS-PROBE"}
    for route in _flat(request.app.router.routes):
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _flat(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    # FastAPI keeps included routers nested (our routers carry their full prefixes themselves).
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from _flat(included.routes) if included is not None else [route]


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # Logged with its traceback for us; the client learns only that it was our fault.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    request_id = current_request_id()
    # Starlette answers a 500 outside our middleware: the request id header is added here.
    return problem_response(
        request,
        status=500,
        slug="internal-error",
        title="Internal error",
        detail="An unexpected error occurred.",
        headers={"X-Request-ID": request_id} if request_id else None,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
