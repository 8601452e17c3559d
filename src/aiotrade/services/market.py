"""Market data: markets, tickers, order books, recent trades, OHLCV, exchange status.

Stateless async functions. Each takes the pool and plain arguments, validates what it can without
I/O (symbol against the loaded markets, timeframe, ranges), then reads through the pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiotrade.errors import InvalidInput, UnknownSymbol
from aiotrade.exchange.pool import ExchangePool
from aiotrade.models.market import (
    Candle,
    ExchangeStatus,
    ExchangeSummary,
    Market,
    MarketLimits,
    MarketPrecision,
    Ohlcv,
    OrderBook,
    Ticker,
    Trade,
    Trades,
)
from aiotrade.services.convert import ms_to_datetime, to_decimal

MAX_OHLCV_LIMIT = 5000
MAX_BOOK_LIMIT = 5000
MAX_TRADES_LIMIT = 1000
MAX_TICKERS = 100


async def list_exchanges(pool: ExchangePool) -> list[ExchangeSummary]:
    states = [pool.venue_state(name) for name in pool.venue_names()]
    return [
        ExchangeSummary(
            name=s.name,
            exchange_class=s.exchange_class,
            sandbox=s.sandbox,
            markets_loaded=s.markets_loaded,
            market_count=s.market_count,
        )
        for s in states
    ]


async def get_markets(pool: ExchangePool, venue: str) -> list[Market]:
    markets = await pool.markets(venue)
    return [_market(m) for m in sorted(markets.values(), key=lambda m: m["symbol"])]


async def get_ticker(pool: ExchangePool, venue: str, symbol: str) -> Ticker:
    await require_symbols(pool, venue, [symbol])
    raw = await pool.read(venue, lambda c: c.fetch_ticker(symbol))
    return _ticker(venue, raw)


async def get_tickers(pool: ExchangePool, venue: str, symbols: Sequence[str]) -> list[Ticker]:
    """Tickers for several symbols in one exchange request where the venue supports it."""
    unique = list(dict.fromkeys(symbols))
    if not unique:
        raise InvalidInput.param("symbols", "at least one symbol is required")
    if len(unique) > MAX_TICKERS:
        raise InvalidInput.param("symbols", f"at most {MAX_TICKERS} symbols per request")
    await require_symbols(pool, venue, unique)
    if pool.capabilities(venue).has.get("fetchTickers"):
        raw = await pool.read(venue, lambda c: c.fetch_tickers(unique))
        missing = [s for s in unique if s not in raw]
        if missing:
            raise UnknownSymbol.param("symbols", f"the exchange returned no ticker for {', '.join(missing)}")
        return [_ticker(venue, raw[s]) for s in unique]
    return list(await asyncio.gather(*(get_ticker(pool, venue, s) for s in unique)))


async def get_order_book(pool: ExchangePool, venue: str, symbol: str, limit: int = 100) -> OrderBook:
    _in_range("limit", limit, 1, MAX_BOOK_LIMIT)
    await require_symbols(pool, venue, [symbol])
    raw = await pool.read(venue, lambda c: c.fetch_order_book(symbol, limit))
    return OrderBook(
        exchange=venue,
        symbol=symbol,
        timestamp=ms_to_datetime(raw.get("timestamp")),
        bids=[(Decimal(p), Decimal(a)) for p, a, *_ in raw["bids"][:limit]],
        asks=[(Decimal(p), Decimal(a)) for p, a, *_ in raw["asks"][:limit]],
        nonce=raw.get("nonce"),
    )


async def get_recent_trades(pool: ExchangePool, venue: str, symbol: str, limit: int = 100) -> Trades:
    _in_range("limit", limit, 1, MAX_TRADES_LIMIT)
    await require_symbols(pool, venue, [symbol])
    raw = await pool.read(venue, lambda c: c.fetch_trades(symbol, None, limit))
    trades = [
        Trade(
            id=t.get("id"),
            timestamp=ms_to_datetime(t["timestamp"]),
            side=t.get("side"),
            price=t["price"],
            amount=t["amount"],
            cost=t.get("cost"),
        )
        for t in raw[-limit:]
    ]
    return Trades(exchange=venue, symbol=symbol, trades=trades)


async def get_ohlcv(
    pool: ExchangePool,
    venue: str,
    symbol: str,
    timeframe: str = "1h",
    *,
    limit: int = 100,
    since: datetime | None = None,
) -> Ohlcv:
    """Up to ``limit`` candles from ``since`` (or the latest ``limit``), oldest first.

    Past the exchange's per-call limit the range is split into time windows fetched concurrently.
    """
    rows = await ohlcv_rows(pool, venue, symbol, timeframe, limit=limit, since=since)
    candles = [
        Candle(timestamp=ms_to_datetime(ts), open=o, high=h, low=lo, close=c, volume=v if v is not None else 0)
        for ts, o, h, lo, c, v in rows
    ]
    return Ohlcv(exchange=venue, symbol=symbol, timeframe=timeframe, candles=candles)


async def ohlcv_rows(
    pool: ExchangePool,
    venue: str,
    symbol: str,
    timeframe: str,
    *,
    limit: int,
    since: datetime | None = None,
) -> list[list[Any]]:
    """ccxt's OHLCV rows ([ms, o, h, l, c, v] as exact strings), validated, paged, deduplicated."""
    _in_range("limit", limit, 1, MAX_OHLCV_LIMIT)
    capabilities = pool.capabilities(venue)
    if timeframe not in capabilities.timeframes:
        raise InvalidInput.param(
            "timeframe", f"{timeframe!r} is not offered; one of {', '.join(sorted(capabilities.timeframes))}"
        )
    await require_symbols(pool, venue, [symbol])
    step = capabilities.timeframe_ms(timeframe)
    page = capabilities.ohlcv_page_limit
    if since is None:
        start = (int(time.time() * 1000) // step - (limit - 1)) * step
    else:
        if since.tzinfo is None:
            raise InvalidInput.param("since", "must carry a timezone (e.g. 2024-01-01T00:00:00Z)")
        start = int(since.timestamp() * 1000)
        if start < 0:
            raise InvalidInput.param("since", "must not be before 1970-01-01")
    windows = [(start + i * page * step, min(page, limit - i * page)) for i in range(-(-limit // page))]
    pages = await asyncio.gather(
        *(
            pool.read(
                venue,
                lambda c, w_start=w_start, w_count=w_count: c.fetch_ohlcv(
                    symbol, timeframe, w_start, w_count, {"until": w_start + w_count * step - 1}
                ),
                heavy=w_count > 100,
            )
            for w_start, w_count in windows
        )
    )
    rows: dict[int, list[Any]] = {}
    for rows_of_page in pages:
        for row in rows_of_page:
            rows[int(row[0])] = row
    return [rows[ts] for ts in sorted(rows)][:limit]


async def get_exchange_status(pool: ExchangePool, venue: str) -> ExchangeStatus:
    raw = await pool.read(venue, lambda c: c.fetch_status())
    status = raw.get("status") or "unknown"
    known = {"ok", "maintenance", "shutdown", "error"}
    return ExchangeStatus(
        exchange=venue,
        status=status if status in known else "unknown",
        updated=ms_to_datetime(raw.get("updated")),
        eta=ms_to_datetime(raw.get("eta")),
        checked_at=datetime.now(UTC),
    )


async def require_symbols(pool: ExchangePool, venue: str, symbols: Sequence[str]) -> Mapping[str, Any]:
    """The venue's markets, after checking every symbol is one of them (no request for unknown ones)."""
    markets = await pool.markets(venue)
    unknown = [s for s in symbols if s not in markets]
    if unknown:
        name = "symbol" if len(symbols) == 1 else "symbols"
        raise UnknownSymbol.param(name, f"not a market on {venue}: {', '.join(unknown)}")
    return markets


# ----- conversions from ccxt's unified structures (strings, thanks to number=str) ----------------


def _ticker(venue: str, t: Mapping[str, Any]) -> Ticker:
    return Ticker(
        exchange=venue,
        symbol=t["symbol"],
        timestamp=ms_to_datetime(t.get("timestamp")),
        last=t.get("last"),
        bid=t.get("bid"),
        ask=t.get("ask"),
        bid_volume=t.get("bidVolume"),
        ask_volume=t.get("askVolume"),
        open=t.get("open"),
        high=t.get("high"),
        low=t.get("low"),
        vwap=t.get("vwap"),
        base_volume=t.get("baseVolume"),
        quote_volume=t.get("quoteVolume"),
        change=t.get("change"),
        percentage=t.get("percentage"),
    )


def _market(m: Mapping[str, Any]) -> Market:
    limits = m.get("limits") or {}
    precision = m.get("precision") or {}

    def bound(kind: str, side: str) -> Any:
        return (limits.get(kind) or {}).get(side)

    return Market(
        symbol=m["symbol"],
        base=m["base"],
        quote=m["quote"],
        type=m.get("type") or "spot",
        active=m.get("active"),
        precision=MarketPrecision(amount=to_decimal(precision.get("amount")), price=to_decimal(precision.get("price"))),
        limits=MarketLimits(
            amount_min=to_decimal(bound("amount", "min")),
            amount_max=to_decimal(bound("amount", "max")),
            price_min=to_decimal(bound("price", "min")),
            price_max=to_decimal(bound("price", "max")),
            cost_min=to_decimal(bound("cost", "min")),
            cost_max=to_decimal(bound("cost", "max")),
        ),
        maker_fee=to_decimal(m.get("maker")),
        taker_fee=to_decimal(m.get("taker")),
    )


def _in_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise InvalidInput.param(name, f"must be between {low} and {high}, got {value}")
