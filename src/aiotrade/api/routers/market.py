"""Market data over REST: thin handlers, one service call each.

Answers built from the market-data cache carry an ``Age`` header (whole seconds since the oldest cached part
was fetched from the venue, RFC 9111); none when the cache is switched off.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query, Response

from aiotrade.api.deps import Gateway
from aiotrade.api.openapi import PROBLEM_RESPONSES
from aiotrade.api.security import require
from aiotrade.exchange.cache import answer_age
from aiotrade.models.keys import Scope
from aiotrade.models.market import ExchangeStatus, ExchangeSummary, Market, Ohlcv, OrderBook, Ticker, Trades
from aiotrade.services import market

T = TypeVar("T")

router = APIRouter(
    prefix="/api/v1/exchanges", tags=["market-data"], responses=PROBLEM_RESPONSES, dependencies=[require(Scope.READ)]
)

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)?$"

Venue = Annotated[str, Path(description="A configured venue, e.g. `paper`.", max_length=64)]
Symbol = Annotated[
    str,
    Query(
        description="A ccxt unified symbol, e.g. `BTC/USDT`.",
        min_length=3,
        max_length=64,
        pattern=SYMBOL_PATTERN,
    ),
]


@router.get("", operation_id="list_exchanges", summary="Configured venues")
async def list_exchanges(gateway: Gateway) -> list[ExchangeSummary]:
    return await market.list_exchanges(gateway)


@router.get("/{exchange}/status", operation_id="get_exchange_status", summary="Exchange status")
async def get_exchange_status(gateway: Gateway, exchange: Venue, response: Response) -> ExchangeStatus:
    return await aged(response, market.get_exchange_status(gateway, exchange))


@router.get("/{exchange}/markets", operation_id="list_markets", summary="Markets with precision and limits")
async def list_markets(gateway: Gateway, exchange: Venue) -> list[Market]:
    return await market.get_markets(gateway, exchange)


@router.get("/{exchange}/ticker", operation_id="get_ticker", summary="Ticker for one symbol")
async def get_ticker(gateway: Gateway, exchange: Venue, symbol: Symbol, response: Response) -> Ticker:
    return await aged(response, market.get_ticker(gateway, exchange, symbol))


@router.get("/{exchange}/tickers", operation_id="get_tickers", summary="Tickers for several symbols")
async def get_tickers(
    gateway: Gateway,
    exchange: Venue,
    response: Response,
    symbols: Annotated[
        str,
        Query(description="Comma-separated unified symbols, e.g. `BTC/USDT,ETH/USDT`.", max_length=4096),
    ],
) -> list[Ticker]:
    wanted = [s.strip() for s in symbols.split(",") if s.strip()]
    return await aged(response, market.get_tickers(gateway, exchange, wanted))


@router.get("/{exchange}/orderbook", operation_id="get_order_book", summary="Order book")
async def get_order_book(
    gateway: Gateway,
    exchange: Venue,
    response: Response,
    symbol: Symbol,
    limit: Annotated[int, Query(ge=1, le=market.MAX_BOOK_LIMIT, description="Levels per side.")] = 100,
) -> OrderBook:
    return await aged(response, market.get_order_book(gateway, exchange, symbol, limit))


@router.get("/{exchange}/trades", operation_id="get_recent_trades", summary="Recent public trades")
async def get_recent_trades(
    gateway: Gateway,
    exchange: Venue,
    response: Response,
    symbol: Symbol,
    limit: Annotated[int, Query(ge=1, le=market.MAX_TRADES_LIMIT)] = 100,
) -> Trades:
    return await aged(response, market.get_recent_trades(gateway, exchange, symbol, limit))


@router.get("/{exchange}/ohlcv", operation_id="get_ohlcv", summary="Candles (OHLCV)")
async def get_ohlcv(
    gateway: Gateway,
    exchange: Venue,
    response: Response,
    symbol: Symbol,
    timeframe: Annotated[str, Query(max_length=8, description="e.g. `1m`, `1h`, `1d`.")] = "1h",
    limit: Annotated[
        int, Query(ge=1, le=market.MAX_OHLCV_LIMIT, description="Candles; pages past the exchange's cap.")
    ] = 100,
    since: Annotated[
        datetime | None, Query(description="ISO 8601 with a timezone; default: the latest candles.")
    ] = None,
) -> Ohlcv:
    return await aged(response, market.get_ohlcv(gateway, exchange, symbol, timeframe, limit=limit, since=since))


async def aged(response: Response, answer: Awaitable[T]) -> T:
    """``await answer``, with an ``Age`` header when it was built from cached market data."""
    with answer_age() as age:
        result = await answer
    header = age.header()
    if header is not None:
        response.headers["Age"] = header
    return result
