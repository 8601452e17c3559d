"""`/__paper/*`: the paper exchange's controls for tests and benchmarks (who may call them: `middleware`).

- `GET|POST /__paper/faults`: the fault configuration (a `FaultConfig` body replaces it; `{}` clears it)
- `GET /__paper/stats`, `POST /__paper/stats/reset`: request, status, fault and weight counters
- `GET|POST /__paper/clock`: `{"offset_ms": N}` makes the exchange's clock run N ms ahead (negative: behind)
- `GET|POST /__paper/freeze`: `{"frozen": true}` holds every exchange request unanswered until `false`
"""

from __future__ import annotations

import json

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, ValidationError

from aiotrade.paper.config import FaultConfig
from aiotrade.paper.middleware import ADMIN_PREFIX
from aiotrade.paper.responses import json_response
from aiotrade.paper.state import PAPER_STATE, PaperState


class ClockBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    offset_ms: StrictInt


class FreezeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    frozen: StrictBool = True


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get(ADMIN_PREFIX + "faults", _get_faults)
    app.router.add_post(ADMIN_PREFIX + "faults", _post_faults)
    app.router.add_get(ADMIN_PREFIX + "stats", _get_stats)
    app.router.add_post(ADMIN_PREFIX + "stats/reset", _reset_stats)
    app.router.add_get(ADMIN_PREFIX + "clock", _get_clock)
    app.router.add_post(ADMIN_PREFIX + "clock", _post_clock)
    app.router.add_get(ADMIN_PREFIX + "freeze", _get_freeze)
    app.router.add_post(ADMIN_PREFIX + "freeze", _post_freeze)


def _state(request: web.Request) -> PaperState:
    return request.app[PAPER_STATE]


def _invalid(what: str, exc: ValidationError) -> web.Response:
    # Binance's error shape, with pydantic's account of what was wrong
    body = {"code": -1130, "msg": f"Data sent for parameter '{what}' is not valid.", "detail": json.loads(exc.json())}
    return json_response(body, status=400)


async def _get_faults(request: web.Request) -> web.Response:
    faults = _state(request).faults
    return json_response(faults.model_dump(mode="json") if faults else {"policy": "custom"})


async def _post_faults(request: web.Request) -> web.Response:
    """Replace the fault configuration with the JSON body (a FaultConfig; `{}` clears every fault)."""
    try:
        faults = FaultConfig.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        return _invalid("faults", exc)
    _state(request).set_faults(faults)
    return json_response(faults.model_dump(mode="json"))


async def _get_stats(request: web.Request) -> web.Response:
    state = _state(request)
    return json_response(state.stats.snapshot(state.config.weight_limit))


async def _reset_stats(request: web.Request) -> web.Response:
    state = _state(request)
    state.stats.reset()
    return json_response(state.stats.snapshot(state.config.weight_limit))


async def _get_clock(request: web.Request) -> web.Response:
    return json_response(_clock(_state(request)))


async def _post_clock(request: web.Request) -> web.Response:
    """Move the exchange's clock: every later time it tells or checks is the machine's plus offset_ms."""
    try:
        body = ClockBody.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        return _invalid("offset_ms", exc)
    state = _state(request)
    state.clock_offset_ms = body.offset_ms
    return json_response(_clock(state))


async def _get_freeze(request: web.Request) -> web.Response:
    return json_response({"frozen": _state(request).frozen})


async def _post_freeze(request: web.Request) -> web.Response:
    try:
        body = FreezeBody.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        return _invalid("frozen", exc)
    state = _state(request)
    state.set_frozen(body.frozen)
    return json_response({"frozen": state.frozen})


def _clock(state: PaperState) -> dict[str, int]:
    return {"offset_ms": state.clock_offset_ms, "server_time": state.clock()}
