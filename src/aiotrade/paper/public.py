"""Binance Spot's public REST endpoints (market data and status) over the synthetic market."""

from __future__ import annotations

from aiohttp import web

from aiotrade.paper.errors import BinanceError, bad_combination, mandatory, not_valid
from aiotrade.paper.market import INTERVALS
from aiotrade.paper.responses import Params, json_response
from aiotrade.paper.state import PAPER_STATE, PaperState
from aiotrade.paper.wire import avg_price, exchange_info

AVG_PRICE_MINS = 5  # Binance's average price interval


def add_public_routes(app: web.Application) -> None:
    app.router.add_get("/api/v3/ping", _ping)
    app.router.add_get("/api/v3/time", _time)
    app.router.add_get("/api/v3/exchangeInfo", _exchange_info)
    app.router.add_get("/api/v3/depth", _depth)
    app.router.add_get("/api/v3/trades", _trades)
    app.router.add_get("/api/v3/aggTrades", _agg_trades)
    app.router.add_get("/api/v3/klines", _klines)
    app.router.add_get("/api/v3/avgPrice", _avg_price)
    app.router.add_get("/api/v3/ticker/24hr", _ticker_24hr)
    app.router.add_get("/api/v3/ticker/price", _ticker_price)
    app.router.add_get("/api/v3/ticker/bookTicker", _book_ticker)
    app.router.add_get("/sapi/v1/system/status", _system_status)


def _state(request: web.Request) -> PaperState:
    return request.app[PAPER_STATE]


async def _ping(request: web.Request) -> web.Response:
    Params(request)
    return json_response({})


async def _time(request: web.Request) -> web.Response:
    Params(request)
    return json_response({"serverTime": _state(request).clock()})


async def _exchange_info(request: web.Request) -> web.Response:
    state = _state(request)
    params = Params(request, frozenset({"symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus"}))
    if params.has("symbol") and params.has("symbols"):
        raise bad_combination()
    if params.has("symbol"):
        names = [params.symbol(state.wires)]
    elif params.has("symbols"):
        names = params.symbols(state.wires)
    else:
        names = list(state.wires)
    return json_response(exchange_info([state.wires[n] for n in names], state.rate_limits(), state.clock()))


async def _depth(request: web.Request) -> web.Response:
    state = _state(request)
    params = Params(request, frozenset({"symbol", "limit"}))
    symbol = params.symbol(state.wires)
    limit = params.limit(100, 5000)
    book = state.market.order_book(symbol, state.clock(), limit)
    return json_response(state.wires[symbol].depth(book))


async def _trades(request: web.Request) -> web.Response:
    state = _state(request)
    params = Params(request, frozenset({"symbol", "limit"}))
    symbol = params.symbol(state.wires)
    trades = state.market.recent_trades(symbol, state.clock(), params.limit(500, 1000))
    wire = state.wires[symbol]
    return json_response([wire.trade(t) for t in trades])


async def _agg_trades(request: web.Request) -> web.Response:
    state = _state(request)
    params = Params(request, frozenset({"symbol", "fromId", "startTime", "endTime", "limit"}))
    symbol = params.symbol(state.wires)
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
    return json_response([wire.agg_trade(t) for t in trades])


async def _klines(request: web.Request) -> web.Response:
    state = _state(request)
    params = Params(request, frozenset({"symbol", "interval", "startTime", "endTime", "limit"}))
    symbol = params.symbol(state.wires)
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
    return json_response([wire.kline(c) for c in candles])


def _symbols_selected(state: PaperState, params: Params) -> tuple[list[str], bool]:
    """The symbols asked for, and whether the answer is one object (symbol=) rather than a list."""
    if params.has("symbol") and params.has("symbols"):
        raise bad_combination()
    if params.has("symbol"):
        return [params.symbol(state.wires)], True
    if params.has("symbols"):
        return params.symbols(state.wires), False
    return list(state.wires), False


async def _ticker_24hr(request: web.Request) -> web.Response:
    state = _state(request)
    params = Params(request, frozenset({"symbol", "symbols", "type"}))
    kind = request.query.get("type", "FULL")
    if kind not in ("FULL", "MINI"):
        raise not_valid("type")
    names, single = _symbols_selected(state, params)
    now = state.clock()
    tickers = [state.wires[n].ticker_24hr(state.market.ticker(n, now), mini=kind == "MINI") for n in names]
    return json_response(tickers[0] if single else tickers)


async def _ticker_price(request: web.Request) -> web.Response:
    state = _state(request)
    names, single = _symbols_selected(state, Params(request, frozenset({"symbol", "symbols"})))
    now = state.clock()
    prices = []
    for name in names:
        last = state.market.last_trade(name, now)
        price = last.price if last else state.market.ticker(name, now).last
        prices.append(state.wires[name].price_ticker(price))
    return json_response(prices[0] if single else prices)


async def _book_ticker(request: web.Request) -> web.Response:
    state = _state(request)
    names, single = _symbols_selected(state, Params(request, frozenset({"symbol", "symbols"})))
    now = state.clock()
    books = [state.wires[n].book_ticker(state.market.order_book(n, now, 1)) for n in names]
    return json_response(books[0] if single else books)


async def _system_status(request: web.Request) -> web.Response:
    Params(request)
    return json_response({"status": 0, "msg": "normal"})


async def _avg_price(request: web.Request) -> web.Response:
    state = _state(request)
    symbol = Params(request, frozenset({"symbol"})).symbol(state.wires)
    now = state.clock()
    totals = state.market.traded_totals(symbol, now - AVG_PRICE_MINS * 60_000, now)
    last = state.market.last_trade(symbol, now)
    return json_response(avg_price(state.wires[symbol], totals, last, AVG_PRICE_MINS))
