"""Market data: venues, markets, tickers, books, trades, candles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aiotrade.client.core import ClientCore, segment
from aiotrade.client.retrying import SAFE
from aiotrade.models.market import ExchangeStatus, ExchangeSummary, Market, Ohlcv, OrderBook, Ticker, Trades

_EXCHANGES = "/api/v1/exchanges"


class MarketApi(ClientCore):
    async def list_exchanges(self) -> list[ExchangeSummary]:
        return await self._call("GET", _EXCHANGES, list[ExchangeSummary], kind=SAFE)

    async def get_exchange_status(self, exchange: str) -> ExchangeStatus:
        return await self._call("GET", f"{_EXCHANGES}/{segment(exchange)}/status", ExchangeStatus, kind=SAFE)

    async def list_markets(self, exchange: str) -> list[Market]:
        return await self._call("GET", f"{_EXCHANGES}/{segment(exchange)}/markets", list[Market], kind=SAFE)

    async def get_ticker(self, exchange: str, symbol: str) -> Ticker:
        path = f"{_EXCHANGES}/{segment(exchange)}/ticker"
        return await self._call("GET", path, Ticker, kind=SAFE, query={"symbol": symbol})

    async def get_tickers(self, exchange: str, symbols: str | Sequence[str]) -> list[Ticker]:
        """``symbols``: a list, or the wire's comma-separated text."""
        joined = symbols if isinstance(symbols, str) else ",".join(symbols)
        path = f"{_EXCHANGES}/{segment(exchange)}/tickers"
        return await self._call("GET", path, list[Ticker], kind=SAFE, query={"symbols": joined})

    async def get_order_book(self, exchange: str, symbol: str, *, limit: int | None = None) -> OrderBook:
        path = f"{_EXCHANGES}/{segment(exchange)}/orderbook"
        return await self._call("GET", path, OrderBook, kind=SAFE, query={"symbol": symbol, "limit": limit})

    async def get_recent_trades(self, exchange: str, symbol: str, *, limit: int | None = None) -> Trades:
        path = f"{_EXCHANGES}/{segment(exchange)}/trades"
        return await self._call("GET", path, Trades, kind=SAFE, query={"symbol": symbol, "limit": limit})

    async def get_ohlcv(
        self,
        exchange: str,
        symbol: str,
        *,
        timeframe: str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> Ohlcv:
        path = f"{_EXCHANGES}/{segment(exchange)}/ohlcv"
        query = {"symbol": symbol, "timeframe": timeframe, "limit": limit, "since": since}
        return await self._call("GET", path, Ohlcv, kind=SAFE, query=query)
