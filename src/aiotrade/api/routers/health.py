"""Liveness and readiness."""

from __future__ import annotations

import asyncio
import contextlib
import math

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from sqlalchemy import text

from aiotrade.api.deps import Gateway
from aiotrade.api.security import open_route, require
from aiotrade.errors import DomainError
from aiotrade.exchange.breaker import CircuitState
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.keys import Scope

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    operation_id="healthz",
    summary="Liveness: the process answers; touches nothing",
    dependencies=[open_route()],
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    dependencies=[open_route()],
    summary="Readiness: every venue's markets are loaded and its circuit closed, the store answers, Redis is seen",
    responses={503: {"description": "Not ready; the body says what is missing (a venue whose circuit is open)"}},
)
async def readyz(request: Request, gateway: Gateway) -> JSONResponse:
    """200 ``ready``; 200 ``degraded`` while Redis is out of reach and the in-process fallbacks serve; 503
    ``not ready`` naming what is missing: markets not loaded, a venue's circuit open, the store unreachable."""
    names = gateway.venue_names()
    checks = dict(await asyncio.gather(*(_venue_check(gateway, name) for name in names), _store_check(request)))
    redis = getattr(request.app.state, "redis", None)
    degraded = False
    if redis is not None:
        checks["redis"] = await _redis_check(redis)
        degraded = checks["redis"] != "ok"
    ready = all(value == "ok" for name, value in checks.items() if name != "redis")
    status = "not ready" if not ready else "degraded" if degraded else "ready"
    headers = {}
    if not ready:
        waits = [gateway.pool.breaker(name).retry_after_s() for name in names]
        headers["Retry-After"] = str(max(1, math.ceil(max(waits, default=1.0))))
    return JSONResponse({"status": status, "checks": checks}, status_code=200 if ready else 503, headers=headers)


async def _venue_check(gateway: ExchangeGateway, name: str) -> tuple[str, str]:
    breaker = gateway.pool.breaker(name)
    if breaker.state is CircuitState.OPEN and breaker.retry_after_s() <= 0:
        # A replica taken out of rotation gets no traffic to probe with: the readiness check probes itself.
        with contextlib.suppress(DomainError):
            await gateway.pool.probe(name)
    if breaker.state is CircuitState.OPEN:
        return f"venue:{name}", f"circuit open ({breaker.stats().last_failure or 'failing'})"
    state = gateway.venue_state(name)
    return f"venue:{name}", "ok" if state.markets_loaded else "markets not loaded"


async def _store_check(request: Request) -> tuple[str, str]:
    try:
        async with asyncio.timeout(2.0), request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return "store", "ok"
    except Exception as exc:  # any failure means "not ready", reported by its type only
        return "store", f"unreachable ({type(exc).__name__})"


async def _redis_check(redis: Redis) -> str:
    try:
        async with asyncio.timeout(0.5):
            await redis.ping()
        return "ok"
    except Exception as exc:  # out of reach: budgets and cache run on their in-process fallbacks
        return f"degraded: unreachable ({type(exc).__name__}), in-process fallbacks in use"


@router.get(
    "/debug/loop-lag",
    operation_id="loop_lag",
    dependencies=[require(Scope.ADMIN)],
    summary="Longest event-loop stall seen (ms), optionally resetting the measurement",
)
async def loop_lag(request: Request, reset: bool = Query(default=False)) -> dict[str, float]:
    lag = request.app.state.loop_monitor.read(reset=reset)
    return {"max_lag_ms": round(lag.max_lag_ms, 3), "samples": lag.samples, "interval_ms": lag.interval_ms}
