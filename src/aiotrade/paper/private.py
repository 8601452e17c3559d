"""The paper exchange's private (signed) API, over the matching engine, exactly as Binance Spot signs it.

Signing: `X-MBX-APIKEY` names the account; the HMAC-SHA256 (hex, with the account's secret) of the raw
query string followed by the raw form body, up to `&signature=`, must equal `signature`. Wrong signature
-1022, unknown key -2015 (HTTP 401), and a `timestamp` outside `recvWindow` -1021 — checked when the
request is *executed*, so a request held in flight past its window is refused, as Binance does. That is
what lets a client decide, after the window, that an unanswered order will never land.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from aiotrade.paper.market import SyntheticMarket
from aiotrade.paper.matching import MatchingEngine, PaperApiError, SymbolFilters
from aiotrade.paper.matching_types import Level
from aiotrade.paper.symbols import E8, SymbolSpec
from aiotrade.paper.wire import BinanceError

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
CLOCK_AHEAD_TOLERANCE_MS = 1_000


@dataclass(frozen=True, slots=True)
class PaperAccount:
    api_key: str
    secret: str
    balances: Mapping[str, Decimal]


class MarketPrices:
    """The synthetic market as the matching engine's price source (ticks and lots become Decimals)."""

    def __init__(self, market: SyntheticMarket) -> None:
        self._market = market
        self._filters = {symbol: _filters(spec) for symbol, spec in market.symbols.items()}

    def book(self, symbol: str, now_ms: int, depth: int) -> tuple[list[Level], list[Level]]:
        spec = self._market.symbols[symbol]
        book = self._market.order_book(symbol, now_ms, depth)
        return (
            [(_price(spec, p), _qty(spec, q)) for p, q in book.bids],
            [(_price(spec, p), _qty(spec, q)) for p, q in book.asks],
        )

    def price_range(self, symbol: str, start_ms: int, end_ms: int) -> tuple[Decimal, Decimal] | None:
        traded = self._market.traded_range(symbol, start_ms, end_ms)
        if traded is None:
            return None
        spec = self._market.symbols[symbol]
        return _price(spec, traded[0]), _price(spec, traded[1])

    def filters(self, symbol: str) -> SymbolFilters | None:
        return self._filters.get(symbol)


class PrivateApi:
    """Accounts (keys and secrets) and the matching engine behind the signed endpoints."""

    def __init__(self, engine: MatchingEngine, accounts: list[PaperAccount]) -> None:
        self.engine = engine
        self._secrets: dict[str, str] = {}
        for account in accounts:
            self.open_account(account)

    def open_account(self, account: PaperAccount) -> None:
        self._secrets[account.api_key] = account.secret
        self.engine.open_account(account.api_key, dict(account.balances))

    def authenticate(self, request: web.Request, raw_body: str, now_ms: int) -> tuple[str, dict[str, str]]:
        """The account's key and the request's parameters, or the Binance error that refuses it."""
        api_key = request.headers.get("X-MBX-APIKEY")
        if not api_key:
            raise BinanceError(-2014, "API-key format invalid.", status=401)
        secret = self._secrets.get(api_key)
        if secret is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        total = request.query_string + raw_body
        payload, marker, signature = total.rpartition("&signature=")
        if not marker:
            raise BinanceError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(payload, keep_blank_values=True))
        _check_timestamp(params, now_ms)
        return api_key, {k: v for k, v in params.items() if k not in ("timestamp", "recvWindow")}


def _check_timestamp(params: Mapping[str, str], now_ms: int) -> None:
    try:
        timestamp = int(params["timestamp"])
    except (KeyError, ValueError):
        raise BinanceError(
            -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
        ) from None
    try:
        window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
    except ValueError:
        raise BinanceError(-1100, "Illegal characters found in parameter 'recvWindow'.") from None
    if not 0 < window <= MAX_RECV_WINDOW_MS:
        raise BinanceError(-1131, "recvWindow must be less than 60000")
    if timestamp > now_ms + CLOCK_AHEAD_TOLERANCE_MS:
        raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now_ms - timestamp > window:
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


# ----- handlers ------------------------------------------------------------------------------------------------


async def _signed(request: web.Request) -> tuple[PrivateApi, str, dict[str, str]]:
    from aiotrade.paper.server import PAPER_STATE  # the state lives with the server

    state = request.app[PAPER_STATE]
    raw_body = (await request.text()) if request.can_read_body else ""
    api_key, params = state.private.authenticate(request, raw_body, state.clock())
    return state.private, api_key, params


def _engine_call(call: Any) -> web.Response:
    try:
        result = call()
    except PaperApiError as error:
        return _json(error.body(), status=error.http_status)
    return _json(result)


async def _new_order(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _engine_call(lambda: api.engine.place(key, params))


async def _get_order(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _engine_call(
        lambda: api.engine.get(key, params.get("symbol", ""), params.get("orderId"), params.get("origClientOrderId"))
    )


async def _cancel_order(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _engine_call(
        lambda: api.engine.cancel(
            key,
            params.get("symbol", ""),
            params.get("orderId"),
            params.get("origClientOrderId"),
            params.get("newClientOrderId"),
        )
    )


async def _open_orders(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _engine_call(lambda: api.engine.open_orders(key, params.get("symbol")))


async def _cancel_open_orders(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _engine_call(lambda: api.engine.cancel_all(key, params.get("symbol", "")))


async def _all_orders(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _engine_call(
        lambda: api.engine.all_orders(
            key,
            params.get("symbol", ""),
            params.get("orderId"),
            params.get("startTime"),
            params.get("endTime"),
            params.get("limit") or 500,
        )
    )


async def _my_trades(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _engine_call(
        lambda: api.engine.my_trades(
            key,
            params.get("symbol", ""),
            params.get("orderId"),
            params.get("startTime"),
            params.get("endTime"),
            params.get("fromId"),
            params.get("limit") or 500,
        )
    )


async def _account(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    omit = params.get("omitZeroBalances", "false").lower() == "true"
    return _engine_call(lambda: api.engine.account(key, omit_zero_balances=omit))


async def _order_rate_limits(request: web.Request) -> web.Response:
    api, key, _ = await _signed(request)
    return _engine_call(lambda: api.engine.order_rate_limits(key))


def add_private_routes(app: web.Application) -> None:
    app.router.add_post("/api/v3/order", _new_order)
    app.router.add_get("/api/v3/order", _get_order)
    app.router.add_delete("/api/v3/order", _cancel_order)
    app.router.add_get("/api/v3/openOrders", _open_orders)
    app.router.add_delete("/api/v3/openOrders", _cancel_open_orders)
    app.router.add_get("/api/v3/allOrders", _all_orders)
    app.router.add_get("/api/v3/myTrades", _my_trades)
    app.router.add_get("/api/v3/account", _account)
    app.router.add_get("/api/v3/rateLimit/order", _order_rate_limits)


# ----- conversions ---------------------------------------------------------------------------------------------


def _price(spec: SymbolSpec, ticks: int) -> Decimal:
    return Decimal(ticks * spec.tick_e8) / E8


def _qty(spec: SymbolSpec, lots: int) -> Decimal:
    return Decimal(lots * spec.step_e8) / E8


def _e8(units: int) -> Decimal:
    return Decimal(units) / E8


def _filters(spec: SymbolSpec) -> SymbolFilters:
    return SymbolFilters(
        symbol=spec.id,
        base_asset=spec.base,
        quote_asset=spec.quote,
        tick_size=_e8(spec.tick_e8),
        min_price=_e8(spec.tick_e8),
        max_price=_e8(spec.max_price_e8),
        step_size=_e8(spec.step_e8),
        min_qty=_e8(spec.min_qty_e8),
        max_qty=_e8(spec.max_qty_e8),
        min_notional=_e8(spec.min_notional_e8),
        max_notional=_e8(spec.max_notional_e8),
        market_max_qty=_e8(spec.market_max_qty_e8),
    )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(data, separators=(",", ":")).encode(), content_type="application/json"
    )
