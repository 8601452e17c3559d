"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from aiotrade.api.deps import Gateway
from aiotrade.api.security import open_route, require
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
    summary="Readiness: every venue's markets are loaded and the store answers",
    responses={503: {"description": "Not ready; the body says what is missing"}},
)
async def readyz(request: Request, gateway: Gateway) -> JSONResponse:
    venues = {name: gateway.venue_state(name) for name in gateway.venue_names()}
    checks = {f"venue:{name}": "ok" if state.markets_loaded else "markets not loaded" for name, state in venues.items()}
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["store"] = "ok"
    except Exception as exc:  # any failure means "not ready", reported by its type only
        checks["store"] = f"unreachable ({type(exc).__name__})"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get(
    "/debug/loop-lag",
    operation_id="loop_lag",
    dependencies=[require(Scope.ADMIN)],
    summary="Longest event-loop stall seen (ms), optionally resetting the measurement",
)
async def loop_lag(request: Request, reset: bool = Query(default=False)) -> dict[str, float]:
    lag = request.app.state.loop_monitor.read(reset=reset)
    return {"max_lag_ms": round(lag.max_lag_ms, 3), "samples": lag.samples, "interval_ms": lag.interval_ms}
