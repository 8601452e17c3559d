"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from aiotrade.api.deps import Pool

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", summary="Liveness: the process answers; touches nothing")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Readiness: every venue's markets are loaded",
    responses={503: {"description": "Not ready; the body says what is missing"}},
)
async def readyz(pool: Pool) -> JSONResponse:
    venues = {name: pool.venue_state(name) for name in pool.venue_names()}
    checks = {name: "ok" if state.markets_loaded else "markets not loaded" for name, state in venues.items()}
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )
