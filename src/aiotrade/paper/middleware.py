"""What every request of the paper exchange goes through before and after its handler.

Exchange requests (everything but `/__paper/`), in this order:
1. frozen: the request is held without an answer until the exchange thaws, then its connection is closed —
   it is never executed (an outage that accepts connections but never answers);
2. an IP ban (418, after repeated weight 429s, when configured) answers at once;
3. the fault policy decides (one draw): a drop closes the connection, an injected 429 answers at once;
   neither is charged, since neither reached the engine (and aiohttp resends a dropped GET once by itself,
   so charging it would bill the client twice for one ccxt call);
4. the weight gate: over budget -> 429 -1003 with Retry-After, not charged; otherwise charged;
5. latency (fixed + seeded jitter), then a 5xx fault or the slow hold, then the handler; an after-execution
   fault then loses, delays or garbles its answer.
Weight headers go on every answer; `/sapi/*` is counted in its own window and never refused. A refusal is
always Binance's JSON error, paths the exchange does not serve included (404/405, never plain text).

Admin requests (`/__paper/`) bypass all of it, and answer only loopback peers or a request carrying the
configured `X-Paper-Admin-Token`; anyone else gets 403 in Binance's error shape.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from aiotrade.paper.errors import BinanceError, banned, too_much_weight, unauthorized, unsupported_operation
from aiotrade.paper.faults import Fault, FaultKind
from aiotrade.paper.responses import error_response, json_response
from aiotrade.paper.state import PAPER_STATE, PaperState
from aiotrade.paper.weights import interval_name, request_weight, weight_headers

ADMIN_PREFIX = "/__paper/"
ADMIN_TOKEN_HEADER = "X-Paper-Admin-Token"
SAPI_WEIGHT = 1  # every /sapi endpoint served here weighs 1 (system/status, account/apiRestrictions)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    if not _admin_allowed(request, request.app[PAPER_STATE].config.admin_token):
        return error_response(unauthorized())
    try:
        return await handler(request)
    except BinanceError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            return error_response(unsupported_operation(exc.status))
        raise


@web.middleware
async def exchange_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith(ADMIN_PREFIX):
        return await handler(request)
    state = request.app[PAPER_STATE]
    stats = state.stats
    known = request.match_info.route.resource is not None
    stats.requests[path if known else "other"] += 1
    if state.frozen:
        stats.faults["frozen"] += 1
        await state.wait_thawed()
        return _drop(request)

    now = state.clock()
    is_sapi = path.startswith("/sapi/")
    window = state.sapi_weights if is_sapi else state.weights
    if state.banned_until > now:
        stats.banned += 1
        retry = max(1, math.ceil((state.banned_until - now) / 1000))
        return _finish(state, error_response(banned(state.banned_until, retry)), window.current(now), is_sapi)
    fault = state.fault_policy.decide(request.method, path)
    if fault is not None:
        stats.faults[fault.kind.value] += 1
    if fault is not None and fault.kind is FaultKind.DROP:
        return _drop(request)
    if fault is not None and fault.kind is FaultKind.RATE_LIMIT:
        refusal = too_much_weight(state.config.weight_limit, _interval(state), fault.retry_after_s)
        return _finish(state, error_response(refusal), window.current(now), is_sapi)
    if is_sapi:
        weight = SAPI_WEIGHT
        window.charge(weight, now)
    else:
        weight = request_weight(path, request.query, request.method)
        if not window.try_charge(weight, now):
            stats.rate_limited += 1
            state.note_weight_refusal(now)
            refusal = too_much_weight(state.config.weight_limit, _interval(state), window.retry_after_s(now))
            return _finish(state, error_response(refusal), window.current(now), is_sapi)
    stats.charge(stats.sapi_weight if is_sapi else stats.weight, window.window_start, weight)

    latency = state.latency_s()
    if latency > 0:
        await asyncio.sleep(latency)
    if fault is not None and fault.kind is FaultKind.SERVER_ERROR:
        return _finish(state, _server_error(fault), window.current(now), is_sapi)
    if fault is not None and fault.kind is FaultKind.SLOW:
        await asyncio.sleep(fault.delay_ms / 1000)
    try:
        response = await handler(request)
    except BinanceError as error:
        response = error_response(error)
    except web.HTTPException as exc:
        if exc.status not in (404, 405):
            raise
        response = error_response(unsupported_operation(exc.status))
    if fault is not None and fault.kind.after_execution:
        return await _after_execution(request, fault, response)
    return _finish(state, response, window.current(now), is_sapi)


def _admin_allowed(request: web.Request, token: str | None) -> bool:
    """Loopback peers always; others only with the configured token (none configured: never)."""
    sent = request.headers.get(ADMIN_TOKEN_HEADER)
    if token and sent and hmac.compare_digest(sent.encode(), token.encode()):
        return True
    return _is_loopback(request.remote)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


async def _after_execution(request: web.Request, fault: Fault, response: web.StreamResponse) -> web.StreamResponse:
    """The request took effect; now its answer is lost, late or garbled."""
    if fault.kind is FaultKind.COMMIT_THEN_DROP:
        return _drop(request)
    if fault.kind is FaultKind.COMMIT_THEN_SLOW:
        await asyncio.sleep(fault.delay_ms / 1000)  # the client has usually given up by now
        return response
    return web.Response(status=200, text='{"symbol":"BTCUSDT","orderId":', content_type="application/json")


def _finish(state: PaperState, response: web.StreamResponse, used: int, is_sapi: bool) -> web.StreamResponse:
    if is_sapi:
        response.headers["X-SAPI-USED-IP-WEIGHT-1M"] = str(used)
    else:
        response.headers.update(weight_headers(used, state.config.weight_window_ms))
    state.stats.statuses[response.status] += 1
    return response


def _interval(state: PaperState) -> str:
    number, name = interval_name(state.config.weight_window_ms)
    return f"{number} {name}"


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without a byte of answer; the response returned is never written."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=599)


def _server_error(fault: Fault) -> web.Response:
    if fault.json_body:
        body = {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}
        return json_response(body, status=fault.status)
    reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(
        fault.status, "Server Error"
    )
    page = f"<html><head><title>{fault.status} {reason}</title></head><body><h1>{reason}</h1></body></html>"
    return web.Response(status=fault.status, text=page, content_type="text/html")
