"""Request id, access log and HTTP metrics in one pure ASGI middleware (no task, no body buffering).

Promises, per HTTP request and per WebSocket handshake:
- a request id: the caller's ``X-Request-ID`` when it is sane (1-64 token characters, and not one of our API
  keys), else 32 fresh hex digits; bound for every log line of the request (``request_id``), readable with
  `aiotrade.observability.logs.current_request_id`, and sent back in the ``X-Request-ID`` response header;
- one access-log line (``aiotrade.access``, INFO): method, route template, status, duration in ms, request id;
  built only when INFO is enabled;
- ``aiotrade_http_request_duration_seconds`` by route template, method and status (HTTP only); WebSocket
  handshakes count in ``aiotrade_websocket_handshakes_total``, and a closed stream logs its lifetime.

While the server stops (`Drain`: the signal that stops uvicorn was received), a new HTTP request is answered
503 problem+json with ``Retry-After`` and ``Connection: close`` while those in flight finish.

The route template is the path as declared (``/api/v1/exchanges/{exchange}/ticker``), read from the scope once
routing has happened; requests that match no route are labelled ``<unmatched>``, so scanners cannot grow the
label set. An exception escaping the app is recorded as 500 and the request id stays bound while it travels
outward, so Starlette's error handler and uvicorn's "Exception in ASGI application" lines carry it too (each
request runs in a task of its own, so nothing leaks to the next one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import Any

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiotrade.api.problems import problem_response
from aiotrade.errors import StartupRefused
from aiotrade.observability import metrics
from aiotrade.observability.logs import AccessLog, reset_request_id, set_request_id

REQUEST_ID_HEADER = b"x-request-id"
UNMATCHED = "<unmatched>"

_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._~+-]{1,64}")
_LOOKS_LIKE_API_KEY = re.compile(rb"at_[A-Za-z0-9_-]{40,}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# FastAPI >= 0.13x resolves included routers lazily: scope["route"].path lacks the include prefixes, which it
# keeps in the effective route context (private). Read it when present, fall back to the route's own path.
_FASTAPI_SCOPE_KEY = "fastapi"
_EFFECTIVE_ROUTE_KEY = "effective_route_context"


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NOT_CAPTURED = (signal.SIG_DFL, signal.SIG_IGN, None, signal.default_int_handler)


class Drain:
    """Whether the server is stopping: once it is, `RequestContext` refuses new HTTP requests with 503."""

    def __init__(self, *, retry_after_s: int = 5) -> None:
        self.stopping = False
        self.retry_after_s = retry_after_s
        self._tasks: set[asyncio.Task[object]] = set()

    @contextlib.contextmanager
    def on_signals(self, *then: Callable[[], Awaitable[object]]) -> Iterator[None]:
        """While the block runs, SIGTERM and SIGINT start the drain and each of ``then`` (the live hub's close:
        subscribers get 1001 before uvicorn's own 1012), then go on to the handler the server installed.
        Where no server captured them (the app in a test process) nothing is installed."""
        loop = asyncio.get_running_loop()
        chained: dict[int, Callable[[int, FrameType | None], Any]] = {}
        for sig in _STOP_SIGNALS:
            previous = signal.getsignal(sig)
            if previous in _NOT_CAPTURED or not callable(previous):
                continue
            chained[sig] = previous

            def handler(number: int, frame: FrameType | None, hand_on: Callable[..., Any] = previous) -> None:
                loop.call_soon_threadsafe(self.start, *then)
                hand_on(number, frame)

            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, previous in chained.items():
                signal.signal(sig, previous)

    def start(self, *then: Callable[[], Awaitable[object]]) -> None:
        """Start draining (once) and run each of ``then`` in a task of its own."""
        if self.stopping:
            return
        self.stopping = True
        logging.getLogger(__name__).warning("stopping: new requests are refused, in-flight ones finish")
        for step in then:
            task: asyncio.Task[object] = asyncio.ensure_future(step())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


class RequestContext:
    """Pure ASGI middleware: ``app.add_middleware(RequestContext)`` (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, *, access_log: bool = True, trust_request_id: bool = True, drain: Drain | None = None
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.trust_request_id = trust_request_id
        self.drain = drain
        # Bound here, not at import: Starlette builds the middleware on the first request or lifespan, after
        # logging is configured; a bound logger skips the lazy proxy's lookups on every call.
        self._log = structlog.get_logger("aiotrade.access").bind()
        self._access = AccessLog("aiotrade.access")
        # (route, method, status) -> histogram child: skips prometheus_client's label lookup and its lock.
        self._durations: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = self._request_id(scope)
        token = set_request_id(request_id)
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        app = self.app if self.drain is None or not self.drain.stopping else self._refuse_while_stopping
        try:
            await app(scope, receive, send_with_id)
        except BaseException:
            self._record_http(scope, status, time.perf_counter() - started, request_id)
            raise  # the request id stays bound for the error handlers outside
        self._record_http(scope, status, time.perf_counter() - started, request_id)
        reset_request_id(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = self._request_id(scope)
        token = set_request_id(request_id)
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status: int | None = None
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if status is None:
                if kind == "websocket.accept":
                    status = 101
                    message["headers"] = [*message.get("headers", ()), header]
                    self._handshake(scope, status, started, request_id)
                elif kind == "websocket.http.response.start":  # a refusal with an HTTP answer
                    status = message["status"]
                    message["headers"] = [*message.get("headers", ()), header]
                    self._handshake(scope, status, started, request_id)
                elif kind == "websocket.close":  # closed before accepting: a 403 to the client
                    status = 403
                    self._handshake(scope, status, started, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if status is None:  # the app ended (or failed) without answering the handshake
                status = 500
                self._handshake(scope, status, started, request_id)
            elif status == 101 and self.access_log and self._log.is_enabled_for(logging.INFO):
                self._log.info(
                    "websocket closed",
                    route=route_template(scope),
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    request_id=request_id,
                )
        reset_request_id(token)

    async def _refuse_while_stopping(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.drain is not None
        response = problem_response(
            Request(scope),
            status=503,
            slug="shutting-down",
            title="Shutting down",
            detail="this server is stopping: send the request again (another replica will answer it)",
            headers={"Retry-After": str(self.drain.retry_after_s), "Connection": "close"},
        )
        await response(scope, receive, send)

    def _request_id(self, scope: Scope) -> str:
        if self.trust_request_id:
            for name, value in scope["headers"]:
                if name == REQUEST_ID_HEADER:
                    if _SANE_REQUEST_ID.fullmatch(value) and not _LOOKS_LIKE_API_KEY.search(value):
                        return value.decode("ascii")
                    break
        return os.urandom(16).hex()

    def _record_http(self, scope: Scope, status: int, elapsed: float, request_id: str) -> None:
        route = route_template(scope)
        method = scope["method"]
        if method not in _METHODS:
            method = "OTHER"
        key = (route, method, status)
        child = self._durations.get(key)
        if child is None:
            child = self._durations[key] = metrics.HTTP_REQUEST_DURATION.labels(route, method, str(status))
        child.observe(elapsed)
        if self.access_log and self._access.enabled:
            self._access.request(method, route, status, round(elapsed * 1000, 2), request_id)

    def _handshake(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        route = route_template(scope)
        metrics.WEBSOCKET_HANDSHAKES.labels(route, str(status)).inc()
        if self.access_log and self._log.is_enabled_for(logging.INFO):
            self._log.info(
                "websocket",
                route=route,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                request_id=request_id,
            )


class StartupRefusals:
    """Pure ASGI middleware: a start-up stopped by `errors.StartupRefused` is reported as its message alone.

    Starlette answers a failed lifespan start with the whole traceback as the failure's message, which
    uvicorn logs; for a refusal the operator has to act on (a key that may withdraw), that buries the one
    line that matters. The lifespan's exception is the one being handled while Starlette sends the failure.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_refusal_plainly(message: Message) -> None:
            refusal = sys.exception()
            if message["type"] == "lifespan.startup.failed" and isinstance(refusal, StartupRefused):
                message = {**message, "message": f"aiotrade: {refusal}"}
            await send(message)

        await self.app(scope, receive, send_refusal_plainly)


def route_template(scope: Scope) -> str:
    """The matched route's declared path with every include prefix (``<unmatched>`` when nothing matched)."""
    fastapi_scope = scope.get(_FASTAPI_SCOPE_KEY)
    if fastapi_scope is not None:
        context = fastapi_scope.get(_EFFECTIVE_ROUTE_KEY)
        if context is not None:
            path = getattr(getattr(context, "starlette_route", None), "path_format", None) or getattr(
                context, "path_format", None
            )
            if path:
                return path
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    return getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED
