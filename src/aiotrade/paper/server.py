"""The paper exchange over HTTP: Binance Spot's public REST API on aiohttp.web, with weights and faults.

Every exchange request goes through one middleware, in this order:
1. the fault policy decides (one draw): a drop closes the connection, an injected 429 answers at once;
   neither is charged, since neither reached the engine (and aiohttp resends a dropped GET once by itself,
   so charging it would bill the client twice for one ccxt call);
2. the weight gate: over budget -> 429 -1003 with Retry-After, not charged; otherwise charged;
3. latency (fixed + seeded jitter), then a 5xx fault or the slow hold, then the handler.
Weight headers go on every answer. `/sapi/*` is counted in its own window and never refused.
Admin endpoints under `/__paper/` bypass all of it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

from aiotrade.paper.config import Clock, FaultConfig, PaperConfig, PaperSettings
from aiotrade.paper.faults import Fault, FaultKind, FaultPolicy, RandomFaults
from aiotrade.paper.market import INTERVALS, SyntheticMarket
from aiotrade.paper.matching import MatchingEngine
from aiotrade.paper.private import MarketPrices, PaperAccount, PrivateApi, add_private_routes
from aiotrade.paper.symbols import listing
from aiotrade.paper.weights import WeightWindow, request_weight
from aiotrade.paper.wire import (
    BinanceError,
    Wire,
    bad_combination,
    exchange_info,
    illegal,
    invalid_symbol,
    mandatory,
    not_valid,
    too_much_weight,
)

__all__ = ["PAPER_STATE", "PaperConfig", "PaperExchange", "PaperSettings", "create_paper_app", "serve_paper"]

log = structlog.get_logger(__name__)

ADMIN_PREFIX = "/__paper/"
SAPI_WEIGHT_LIMIT = 12_000  # Binance's separate per-IP SAPI budget; counted, never enforced here
SAPI_WEIGHT = 1  # /sapi/v1/system/status
_SYMBOL_PATTERN = "^[A-Z0-9-_.]{1,20}$"
_INTEGER_PATTERN = "^[0-9]{1,20}$"
_STATS_WINDOWS = 120  # minutes of per-window weight history kept for /__paper/stats


def system_clock() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class PaperStats:
    """Counters read by tests and benchmarks (via `PaperExchange.stats` or `GET /__paper/stats`)."""

    requests: Counter[str] = field(default_factory=Counter)  # by path; unknown paths as "other"
    statuses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)  # by FaultKind value
    rate_limited: int = 0  # 429s sent because the weight budget was exceeded (not injected ones)
    weight: deque[list[int]] = field(default_factory=lambda: deque(maxlen=_STATS_WINDOWS))  # [start, used]
    sapi_weight: deque[list[int]] = field(default_factory=lambda: deque(maxlen=_STATS_WINDOWS))

    def reset(self) -> None:
        fresh = PaperStats()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def charge(self, history: deque[list[int]], window_start: int, weight: int) -> None:
        if history and history[-1][0] == window_start:
            history[-1][1] += weight
        else:
            history.append([window_start, weight])

    def snapshot(self, weight_limit: int) -> dict[str, Any]:
        return {
            "weight_limit": weight_limit,
            "requests_total": sum(self.requests.values()),
            "requests": dict(self.requests),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "rate_limited": self.rate_limited,
            "faults": dict(self.faults),
            "weight": [{"window_start": s, "used": u} for s, u in self.weight],
            "sapi_weight": [{"window_start": s, "used": u} for s, u in self.sapi_weight],
        }


class PaperState:
    """Everything mutable about one running paper exchange."""

    def __init__(self, config: PaperConfig, clock: Clock, fault_policy: FaultPolicy | None) -> None:
        self.config = config
        self.clock = clock
        assets, symbols = listing(config.extra_assets)
        self.market = SyntheticMarket(config.seed, symbols=symbols, assets=assets, origin_ms=config.origin_ms)
        self.wires = {symbol: Wire(spec) for symbol, spec in self.market.symbols.items()}
        self.weights = WeightWindow(config.weight_limit, config.weight_window_ms)
        self.sapi_weights = WeightWindow(SAPI_WEIGHT_LIMIT)
        self.stats = PaperStats()
        self.fault_policy: FaultPolicy = fault_policy or RandomFaults(config.faults, seed=config.seed)
        engine = MatchingEngine(
            MarketPrices(self.market),
            clock=clock,
            commission_rate=config.commission_rate,
            orders_per_10s=config.orders_per_10s,
        )
        self.private = PrivateApi(
            engine, [PaperAccount(a.api_key, a.secret, dict(a.balances)) for a in config.accounts]
        )
        self._latency_random = random.Random(config.seed ^ 0x1A7E)

    def set_faults(self, faults: FaultConfig) -> None:
        self.fault_policy = RandomFaults(faults, seed=self.config.seed)

    @property
    def faults(self) -> FaultConfig | None:
        return self.fault_policy.config if isinstance(self.fault_policy, RandomFaults) else None

    def latency_s(self) -> float:
        jitter = self._latency_random.uniform(0, self.config.jitter_ms) if self.config.jitter_ms else 0.0
        return (self.config.latency_ms + jitter) / 1000


PAPER_STATE = web.AppKey("paper_state", PaperState)


def create_paper_app(
    config: PaperConfig, *, clock: Clock | None = None, fault_policy: FaultPolicy | None = None
) -> web.Application:
    """The paper exchange as an aiohttp application; state in `app[PAPER_STATE]`."""
    app = web.Application(middlewares=[_exchange_middleware])
    app[PAPER_STATE] = PaperState(config, clock or system_clock, fault_policy)
    app.router.add_get("/api/v3/ping", _ping)
    app.router.add_get("/api/v3/time", _time)
    app.router.add_get("/api/v3/exchangeInfo", _exchange_info)
    app.router.add_get("/api/v3/depth", _depth)
    app.router.add_get("/api/v3/trades", _trades)
    app.router.add_get("/api/v3/aggTrades", _agg_trades)
    app.router.add_get("/api/v3/klines", _klines)
    app.router.add_get("/api/v3/ticker/24hr", _ticker_24hr)
    app.router.add_get("/api/v3/ticker/price", _ticker_price)
    app.router.add_get("/api/v3/ticker/bookTicker", _book_ticker)
    app.router.add_get("/sapi/v1/system/status", _system_status)
    add_private_routes(app)
    app.router.add_get(ADMIN_PREFIX + "faults", _get_faults)
    app.router.add_post(ADMIN_PREFIX + "faults", _post_faults)
    app.router.add_get(ADMIN_PREFIX + "stats", _get_stats)
    app.router.add_post(ADMIN_PREFIX + "stats/reset", _reset_stats)
    return app


class PaperExchange:
    """Runs the paper exchange on a port of the current event loop.

    `async with PaperExchange(PaperConfig(port=0)) as paper: paper.url` -> "http://127.0.0.1:<port>".
    """

    def __init__(
        self,
        config: PaperConfig | None = None,
        *,
        clock: Clock | None = None,
        fault_policy: FaultPolicy | None = None,
        shutdown_timeout: float = 1.0,
    ) -> None:
        self.config = config or PaperConfig()
        self.app = create_paper_app(self.config, clock=clock, fault_policy=fault_policy)
        self.state = self.app[PAPER_STATE]
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def market(self) -> SyntheticMarket:
        return self.state.market

    @property
    def stats(self) -> PaperStats:
        return self.state.stats

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the paper exchange is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def set_faults(self, faults: FaultConfig | None = None, **rates: Any) -> FaultConfig:
        """Replace the fault configuration (`set_faults()` clears it); keywords build a FaultConfig."""
        config = faults if faults is not None else FaultConfig(**rates)
        self.state.set_faults(config)
        return config

    def set_fault_policy(self, policy: FaultPolicy) -> None:
        self.state.fault_policy = policy

    async def start(self) -> None:
        # handler_cancellation: a slow answer whose client gave up stops at once instead of lingering.
        runner = web.AppRunner(
            self.app, access_log=None, handler_cancellation=True, shutdown_timeout=self._shutdown_timeout
        )
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]  # the port the OS chose when config.port is 0

    async def stop(self) -> None:
        runner, self._runner, self._port = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> PaperExchange:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def serve_paper(config: PaperConfig) -> None:
    """Serve the paper exchange until cancelled."""
    async with PaperExchange(config) as paper:
        log.info("paper exchange listening", url=paper.url, seed=config.seed)
        await asyncio.Event().wait()


# ---- the middleware: faults, weights, latency ---------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _exchange_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith(ADMIN_PREFIX):
        return await handler(request)
    state = request.app[PAPER_STATE]
    stats = state.stats
    known = request.match_info.route.resource is not None
    stats.requests[path if known else "other"] += 1
    fault = state.fault_policy.decide(request.method, path)
    if fault is not None:
        stats.faults[fault.kind.value] += 1
    now = state.clock()

    is_sapi = path.startswith("/sapi/")
    window = state.sapi_weights if is_sapi else state.weights
    if fault is not None and fault.kind is FaultKind.DROP:
        return _drop(request)
    if fault is not None and fault.kind is FaultKind.RATE_LIMIT:
        response = _error_response(too_much_weight(state.config.weight_limit))
        response.headers["Retry-After"] = str(fault.retry_after_s)
        return _finish(stats, response, window.current(now), is_sapi)
    if is_sapi:
        weight = SAPI_WEIGHT
        window.charge(weight, now)
    else:
        weight = request_weight(path, request.query, request.method)
        if not window.try_charge(weight, now):
            stats.rate_limited += 1
            response = _error_response(too_much_weight(state.config.weight_limit))
            response.headers["Retry-After"] = str(window.retry_after_s(now))
            return _finish(stats, response, window.current(now), is_sapi)
    stats.charge(stats.sapi_weight if is_sapi else stats.weight, window.window_start, weight)

    latency = state.latency_s()
    if latency > 0:
        await asyncio.sleep(latency)
    if fault is not None and fault.kind is FaultKind.SERVER_ERROR:
        return _finish(stats, _server_error(fault), window.current(now), is_sapi)
    if fault is not None and fault.kind is FaultKind.SLOW:
        await asyncio.sleep(fault.delay_ms / 1000)
    try:
        response = await handler(request)
    except BinanceError as error:
        response = _error_response(error)
    except web.HTTPException as exc:  # 404/405 from the router: let aiohttp render it, with our headers
        exc.headers.update(_weight_headers(window.current(now), is_sapi))
        stats.statuses[exc.status] += 1
        raise
    if fault is not None and fault.kind.after_execution:
        return await _after_execution(request, fault, response)
    return _finish(stats, response, window.current(now), is_sapi)


async def _after_execution(request: web.Request, fault: Fault, response: web.StreamResponse) -> web.StreamResponse:
    """The request took effect; now its answer is lost, late or garbled."""
    if fault.kind is FaultKind.COMMIT_THEN_DROP:
        return _drop(request)
    if fault.kind is FaultKind.COMMIT_THEN_SLOW:
        await asyncio.sleep(fault.delay_ms / 1000)  # the client has usually given up by now
        return response
    return web.Response(status=200, text='{"symbol":"BTCUSDT","orderId":', content_type="application/json")


def _finish(stats: PaperStats, response: web.StreamResponse, used: int, is_sapi: bool) -> web.StreamResponse:
    response.headers.update(_weight_headers(used, is_sapi))
    stats.statuses[response.status] += 1
    return response


def _weight_headers(used: int, is_sapi: bool) -> dict[str, str]:
    if is_sapi:
        return {"X-SAPI-USED-IP-WEIGHT-1M": str(used)}
    return {"X-MBX-USED-WEIGHT": str(used), "X-MBX-USED-WEIGHT-1M": str(used)}


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without a byte of answer; the response returned is never written."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=599)


def _server_error(fault: Fault) -> web.Response:
    if fault.json_body:
        body = {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}
        return _json(body, status=fault.status)
    reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(
        fault.status, "Server Error"
    )
    page = f"<html><head><title>{fault.status} {reason}</title></head><body><h1>{reason}</h1></body></html>"
    return web.Response(status=fault.status, text=page, content_type="text/html")


def _error_response(error: BinanceError) -> web.Response:
    return _json(error.body(), status=error.status)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(data, separators=(",", ":")).encode(), content_type="application/json"
    )


# ---- endpoints ------------------------------------------------------------------------------------------------


class _Params:
    """Query parameters checked the way Binance checks them (unknown ones are an error, -1104)."""

    def __init__(self, request: web.Request, allowed: frozenset[str] = frozenset()) -> None:
        self.query: Mapping[str, str] = request.query
        unread = set(self.query) - allowed
        if unread:
            read = len(set(self.query) & allowed)
            raise BinanceError(
                -1104,
                f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{len(self.query)}'.",
            )

    def has(self, name: str) -> bool:
        return name in self.query

    def symbol(self, state: PaperState, name: str = "symbol") -> str:
        value = self.query.get(name, "")
        if not value:
            raise mandatory(name)
        return _known_symbol(state, value, name)

    def symbols(self, state: PaperState) -> list[str]:
        """`symbols=["BTCUSDT","ETHUSDT"]`: a JSON list, as Binance takes it."""
        legal = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'
        try:
            names = json.loads(self.query["symbols"])
        except ValueError:
            raise illegal("symbols", legal) from None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise illegal("symbols", legal)
        return [_known_symbol(state, n, "symbols") for n in names]

    def integer(self, name: str) -> int | None:
        value = self.query.get(name)
        if value is None:
            return None
        if not value.isdigit() or len(value) > 20:
            raise illegal(name, _INTEGER_PATTERN)
        return int(value)

    def limit(self, default: int, maximum: int) -> int:
        value = self.integer("limit")
        if value is None:
            return default
        if value < 1:
            raise not_valid("limit")
        return min(value, maximum)


def _known_symbol(state: PaperState, value: str, name: str) -> str:
    if not (1 <= len(value) <= 20) or not all(ch.isupper() or ch.isdigit() or ch in "-_." for ch in value):
        raise illegal(name, _SYMBOL_PATTERN)
    if value not in state.wires:
        raise invalid_symbol()
    return value


def _state(request: web.Request) -> PaperState:
    return request.app[PAPER_STATE]


async def _ping(request: web.Request) -> web.Response:
    _Params(request)
    return _json({})


async def _time(request: web.Request) -> web.Response:
    _Params(request)
    return _json({"serverTime": _state(request).clock()})


async def _exchange_info(request: web.Request) -> web.Response:
    state = _state(request)
    params = _Params(request, frozenset({"symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus"}))
    if params.has("symbol") and params.has("symbols"):
        raise bad_combination()
    if params.has("symbol"):
        names = [params.symbol(state)]
    elif params.has("symbols"):
        names = params.symbols(state)
    else:
        names = list(state.wires)
    return _json(exchange_info([state.wires[n] for n in names], state.config.weight_limit, state.clock()))


async def _depth(request: web.Request) -> web.Response:
    state = _state(request)
    params = _Params(request, frozenset({"symbol", "limit"}))
    symbol = params.symbol(state)
    limit = params.limit(100, 5000)
    book = state.market.order_book(symbol, state.clock(), limit)
    return _json(state.wires[symbol].depth(book))


async def _trades(request: web.Request) -> web.Response:
    state = _state(request)
    params = _Params(request, frozenset({"symbol", "limit"}))
    symbol = params.symbol(state)
    trades = state.market.recent_trades(symbol, state.clock(), params.limit(500, 1000))
    wire = state.wires[symbol]
    return _json([wire.trade(t) for t in trades])


async def _agg_trades(request: web.Request) -> web.Response:
    state = _state(request)
    params = _Params(request, frozenset({"symbol", "fromId", "startTime", "endTime", "limit"}))
    symbol = params.symbol(state)
    from_id, start, end = params.integer("fromId"), params.integer("startTime"), params.integer("endTime")
    limit = params.limit(500, 1000)
    now = state.clock()
    if from_id is not None:
        if start is not None or end is not None:
            raise bad_combination()
        trades = state.market.trades_from_id(symbol, now, from_id, limit)
    else:
        if start is not None and end is not None:
            if start > end:
                raise BinanceError(-1023, "Start time is greater than end time.")
            if end - start > 3_600_000:  # Binance allows at most one hour between the two
                raise BinanceError(-1127, "More than 1 hours between startTime and endTime.")
        trades = state.market.trades_between(symbol, now, start=start, end=end, limit=limit)
    wire = state.wires[symbol]
    return _json([wire.agg_trade(t) for t in trades])


async def _klines(request: web.Request) -> web.Response:
    state = _state(request)
    params = _Params(request, frozenset({"symbol", "interval", "startTime", "endTime", "limit"}))
    symbol = params.symbol(state)
    interval_name = request.query.get("interval", "")
    if not interval_name:
        raise mandatory("interval")
    interval = INTERVALS.get(interval_name)
    if interval is None:
        raise BinanceError(-1120, "Invalid interval.")
    start, end = params.integer("startTime"), params.integer("endTime")
    if start is not None and end is not None and start > end:
        raise BinanceError(-1023, "Start time is greater than end time.")
    limit = params.limit(500, 1000)
    candles = state.market.klines(symbol, interval, state.clock(), start=start, end=end, limit=limit)
    wire = state.wires[symbol]
    return _json([wire.kline(c) for c in candles])


def _symbols_selected(state: PaperState, params: _Params) -> tuple[list[str], bool]:
    """The symbols asked for, and whether the answer is one object (symbol=) rather than a list."""
    if params.has("symbol") and params.has("symbols"):
        raise bad_combination()
    if params.has("symbol"):
        return [params.symbol(state)], True
    if params.has("symbols"):
        return params.symbols(state), False
    return list(state.wires), False


async def _ticker_24hr(request: web.Request) -> web.Response:
    state = _state(request)
    params = _Params(request, frozenset({"symbol", "symbols", "type"}))
    kind = request.query.get("type", "FULL")
    if kind not in ("FULL", "MINI"):
        raise not_valid("type")
    names, single = _symbols_selected(state, params)
    now = state.clock()
    tickers = [state.wires[n].ticker_24hr(state.market.ticker(n, now), mini=kind == "MINI") for n in names]
    return _json(tickers[0] if single else tickers)


async def _ticker_price(request: web.Request) -> web.Response:
    state = _state(request)
    names, single = _symbols_selected(state, _Params(request, frozenset({"symbol", "symbols"})))
    now = state.clock()
    prices = []
    for name in names:
        last = state.market.last_trade(name, now)
        price = last.price if last else state.market.ticker(name, now).last
        prices.append(state.wires[name].price_ticker(price))
    return _json(prices[0] if single else prices)


async def _book_ticker(request: web.Request) -> web.Response:
    state = _state(request)
    names, single = _symbols_selected(state, _Params(request, frozenset({"symbol", "symbols"})))
    now = state.clock()
    books = [state.wires[n].book_ticker(state.market.order_book(n, now, 1)) for n in names]
    return _json(books[0] if single else books)


async def _system_status(request: web.Request) -> web.Response:
    _Params(request)
    return _json({"status": 0, "msg": "normal"})


# ---- admin ------------------------------------------------------------------------------------------------------


async def _get_faults(request: web.Request) -> web.Response:
    faults = _state(request).faults
    return _json(faults.model_dump(mode="json") if faults else {"policy": "custom"})


async def _post_faults(request: web.Request) -> web.Response:
    """Replace the fault configuration with the JSON body (a FaultConfig; `{}` clears every fault)."""
    try:
        faults = FaultConfig.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        return _json({"error": "invalid fault configuration", "detail": json.loads(exc.json())}, status=400)
    _state(request).set_faults(faults)
    return _json(faults.model_dump(mode="json"))


async def _get_stats(request: web.Request) -> web.Response:
    state = _state(request)
    return _json(state.stats.snapshot(state.config.weight_limit))


async def _reset_stats(request: web.Request) -> web.Response:
    state = _state(request)
    state.stats.reset()
    return _json(state.stats.snapshot(state.config.weight_limit))
