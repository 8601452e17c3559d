"""The typed calls services make to exchanges: one method per exchange operation, through the pool.

Each method names what it asks for and returns a typed record (see `exchange/records.py`); the pool
underneath throttles, retries reads and maps errors. Reads of public data go through the market-data cache
when the gateway has one (`exchange/cache.py`: tickers, order books, trades, candle pages, status; one TTL
per kind, closed candles kept long), so identical reads join one upstream request; private data (balances,
orders, fills) never does. Markets are loaded once per process by the pool and kept.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel

from aiotrade import errors as domain
from aiotrade.config import CacheConfig
from aiotrade.domain.candles import CandleSeries
from aiotrade.domain.convert import ms_to_datetime
from aiotrade.domain.market_rules import PreparedOrder
from aiotrade.domain.records import KeyRestrictions, VenueFill, VenueOrder
from aiotrade.domain.valuation import Valuation, pricing_symbols, value_assets
from aiotrade.exchange import records
from aiotrade.exchange.cache import MarketCache
from aiotrade.exchange.klines import fetch_klines, supports_bulk_klines
from aiotrade.exchange.pool import ExchangePool, VenueCapabilities, VenueState
from aiotrade.models.account import Balances
from aiotrade.models.market import ExchangeStatus, Market, OrderBook, Ticker, Trades


@dataclass(frozen=True, slots=True)
class ValuedHoldings:
    balances: Balances
    valuation: Valuation
    tickers: dict[str, Ticker]

    @property
    def total(self) -> Decimal | None:
        """The account's value in the quote currency; None if a holding cannot be priced."""
        return self.valuation.total(self.balances.holdings())


# Candle pages with more rows than this are "heavy": only a few are parsed at once per venue.
HEAVY_PAGE_ROWS = 100

M = TypeVar("M", bound=BaseModel)
V = TypeVar("V")


class ExchangeGateway:
    """Typed access to every configured venue and account, over one `ExchangePool`."""

    def __init__(
        self, pool: ExchangePool, *, cache: MarketCache | None = None, ttls: CacheConfig | None = None
    ) -> None:
        """``cache``: where public market data is kept and joined (None: every read goes upstream)."""
        self.pool = pool
        self.cache = cache
        self._ttls = ttls or CacheConfig()
        self._markets: dict[str, tuple[int, dict[str, Market]]] = {}

    # ----- venues and accounts ---------------------------------------------------------------------

    def venue_names(self) -> list[str]:
        return self.pool.venue_names()

    def venue_state(self, venue: str) -> VenueState:
        return self.pool.venue_state(venue)

    def capabilities(self, venue: str) -> VenueCapabilities:
        return self.pool.capabilities(venue)

    def venue_of(self, account: str) -> str:
        return self.pool.venue_of(account)

    def recv_window_ms(self, account: str) -> int | None:
        return self.pool.recv_window_ms(account)

    # ----- public data -----------------------------------------------------------------------------

    async def markets(self, venue: str) -> Mapping[str, Market]:
        """The venue's markets as records, converted once per load."""
        raw = await self.pool.markets(venue)
        cached = self._markets.get(venue)
        if cached is None or cached[0] != id(raw):
            cached = (id(raw), {symbol: records.market(m) for symbol, m in raw.items()})
            self._markets[venue] = cached
        return cached[1]

    async def reload_markets(self, venue: str) -> Mapping[str, Market]:
        """Load the venue's markets again (filters change, symbols are listed and delisted); readers keep
        the markets they had until the new ones are in."""
        await self.pool.markets(venue, reload=True)
        return await self.markets(venue)

    async def require(self, venue: str, symbols: Sequence[str]) -> Mapping[str, Market]:
        """The venue's markets, after checking every symbol is one of them (no request for unknown ones)."""
        markets = await self.markets(venue)
        unknown = [s for s in symbols if s not in markets]
        if unknown:
            name = "symbol" if len(symbols) == 1 else "symbols"
            raise domain.UnknownSymbol.param(name, f"not a market on {venue}: {', '.join(unknown)}")
        return markets

    async def ticker(self, venue: str, symbol: str) -> Ticker:
        async def fetch() -> Ticker:
            return records.ticker(venue, await self.pool.read(venue, lambda c: c.fetch_ticker(symbol)))

        return await self._model(f"{venue}:ticker:{symbol}", "ticker", self._ttls.ticker_ttl_s, fetch, Ticker)

    async def tickers(self, venue: str, symbols: Sequence[str]) -> dict[str, Ticker]:
        """Tickers for several symbols, in one request where the venue can; absent ones are left out."""
        wanted = list(dict.fromkeys(symbols))
        if not wanted:
            return {}
        if len(wanted) == 1:
            return {wanted[0]: await self.ticker(venue, wanted[0])}
        if not self.capabilities(venue).has.get("fetchTickers"):
            found = await asyncio.gather(*(self.ticker(venue, s) for s in wanted))
            return {t.symbol: t for t in found}

        async def fetch() -> dict[str, Ticker]:
            raw = await self.pool.read(venue, lambda c: c.fetch_tickers(wanted))
            return {s: records.ticker(venue, raw[s]) for s in wanted if s in raw}

        key = f"{venue}:tickers:{','.join(sorted(wanted))}"
        return await self._cached(
            key,
            "tickers",
            self._ttls.ticker_ttl_s,
            fetch,
            encode=lambda found: json.dumps({s: t.model_dump(mode="json") for s, t in found.items()}).encode(),
            decode=lambda raw: {s: Ticker.model_validate(t) for s, t in json.loads(raw).items()},
        )

    async def order_book(self, venue: str, symbol: str, limit: int) -> OrderBook:
        async def fetch() -> OrderBook:
            raw = await self.pool.read(venue, lambda c: c.fetch_order_book(symbol, limit))
            return records.order_book(venue, symbol, raw, limit)

        key = f"{venue}:orderbook:{symbol}:{limit}"
        return await self._model(key, "orderbook", self._ttls.orderbook_ttl_s, fetch, OrderBook)

    async def trades(self, venue: str, symbol: str, limit: int) -> Trades:
        async def fetch() -> Trades:
            raw = await self.pool.read(venue, lambda c: c.fetch_trades(symbol, None, limit))
            return records.trades(venue, symbol, raw, limit)

        return await self._model(f"{venue}:trades:{symbol}:{limit}", "trades", self._ttls.trades_ttl_s, fetch, Trades)

    async def candles(self, venue: str, symbol: str, timeframe: str, *, start_ms: int, limit: int) -> CandleSeries:
        """``limit`` candles from ``start_ms``, oldest first; pages past the venue's cap are fetched together."""
        capabilities = self.capabilities(venue)
        step = capabilities.timeframe_ms(timeframe)
        page = capabilities.ohlcv_page_limit
        windows = [(start_ms + i * page * step, min(page, limit - i * page)) for i in range(-(-limit // page))]
        pages = await asyncio.gather(*(self._candle_page(venue, symbol, timeframe, s, n, step) for s, n in windows))
        series = CandleSeries.from_pages(pages)
        return CandleSeries(series.timestamps[:limit], series.values[:limit])

    async def _candle_page(
        self, venue: str, symbol: str, timeframe: str, start_ms: int, count: int, step: int
    ) -> CandlePage:
        end_ms = start_ms + count * step  # the open time of the candle after the page's last
        closed = end_ms <= now_ms() // step * step  # every candle of the page has closed: it never changes

        async def page_of(client: Any) -> CandlePage:
            if supports_bulk_klines(client, symbol):  # binance-class spot: the raw rows, parsed in bulk
                klines = await fetch_klines(
                    client, symbol, timeframe, since=start_ms, limit=count, until=end_ms - 1, text=True
                )
                assert klines.text is not None
                return klines.timestamps, klines.text
            return _page_of_rows(await client.fetch_ohlcv(symbol, timeframe, start_ms, count, {"until": end_ms - 1}))

        async def fetch() -> CandlePage:
            return await self.pool.read(venue, page_of, heavy=count > HEAVY_PAGE_ROWS)

        ttl = self._ttls.closed_ohlcv_ttl_s if closed else self._ttls.ohlcv_ttl_s
        key = f"{venue}:ohlcv:{symbol}:{timeframe}:{start_ms}:{count}"
        return await self._cached(key, "ohlcv", ttl, fetch, encode=_encode_page, decode=_decode_page)

    async def status(self, venue: str) -> ExchangeStatus:
        async def fetch() -> dict[str, Any]:
            return await self.pool.read(venue, lambda c: c.fetch_status())

        raw = await self._cached(
            f"{venue}:status", "status", self._ttls.status_ttl_s, fetch, encode=_json_bytes, decode=json.loads
        )
        value = raw.get("status") or "unknown"
        known = {"ok", "maintenance", "shutdown", "error"}
        return ExchangeStatus(
            exchange=venue,
            status=value if value in known else "unknown",
            updated=ms_to_datetime(raw.get("updated")),
            eta=ms_to_datetime(raw.get("eta")),
            checked_at=datetime.now(UTC),
        )

    # ----- the cache ------------------------------------------------------------------------------------

    async def _model(self, key: str, kind: str, ttl_s: float, fetch: Callable[[], Awaitable[M]], model: type[M]) -> M:
        return await self._cached(
            key,
            kind,
            ttl_s,
            fetch,
            encode=lambda value: value.model_dump_json().encode(),
            decode=model.model_validate_json,
        )

    async def _cached(
        self,
        key: str,
        kind: str,
        ttl_s: float,
        fetch: Callable[[], Awaitable[V]],
        *,
        encode: Callable[[V], bytes],
        decode: Callable[[bytes], V],
    ) -> V:
        if self.cache is None:
            return await fetch()
        found = await self.cache.get_or_fetch(key, ttl_s, fetch, encode=encode, decode=decode, kind=kind)
        return found.value

    # ----- private data ----------------------------------------------------------------------------

    async def balances(self, account: str) -> Balances:
        raw = await self.pool.read_private(account, lambda c: c.fetch_balance())
        return records.balances(account, self.venue_of(account), raw)

    async def valued_holdings(
        self, account: str, quote: str, *, also_value: Sequence[str] = (), also_price: Sequence[str] = ()
    ) -> ValuedHoldings:
        """The account's balances and their valuation in ``quote`` by the one rule (`domain/valuation.py`).

        Prices come from one ticker request for the symbols the holdings (and the assets ``also_value``)
        need, plus the symbols ``also_price``; if that request fails, the valuation says so and prices
        nothing — never zero.
        """
        venue = self.venue_of(account)
        balances, markets = await asyncio.gather(self.balances(account), self.markets(venue))
        held = [*balances.holdings(), *also_value]
        symbols = sorted(set(pricing_symbols(held, quote, markets)) | set(also_price))
        failed = False
        try:
            tickers = await self.tickers(venue, symbols)
        except domain.DomainError:
            tickers, failed = {}, True
        valuation = value_assets(held, quote, markets, tickers, tickers_failed=failed)
        return ValuedHoldings(balances=balances, valuation=valuation, tickers=tickers)

    async def open_orders(self, account: str, symbol: str | None = None) -> list[VenueOrder]:
        """Every open order of the account on the venue (of one symbol, if given) — ours or not."""
        raw = await self.pool.read_private(
            account, lambda c: c.fetch_open_orders(symbol, None, None, {"warnOnFetchOpenOrdersWithoutSymbol": False})
        )
        return [records.venue_order(o) for o in raw]

    async def find_order(self, account: str, symbol: str, client_order_id: str) -> VenueOrder | None:
        """The venue's view of an order by client id, or None if it does not know it (a retried read).

        It settles ambiguous orders, so an open circuit never refuses it (`CircuitBreaker.passthrough`)."""
        try:
            raw = await self.pool.read_private(
                account, lambda c: c.fetch_order(None, symbol, {"clientOrderId": client_order_id}), settling=True
            )
        except domain.OrderNotFound:
            return None
        return records.venue_order(raw)

    async def place_order(self, account: str, order: PreparedOrder, client_order_id: str) -> VenueOrder:
        """Send a new order once (never retried). A failure says whether the order may exist."""
        params: dict[str, Any] = {"clientOrderId": client_order_id}
        if order.time_in_force is not None:
            params["timeInForce"] = order.time_in_force.value
        if order.quote_amount is not None:
            params["cost"] = str(order.quote_amount)
        # ccxt's unified spellings of Binance's protective types: a limit order with a trigger, or post-only.
        kind = order.type
        if order.stop_price is not None:
            trigger = "stopLossPrice" if order.type == "stop_loss_limit" else "takeProfitPrice"
            params[trigger] = str(order.stop_price)
            kind = "limit"
        elif order.type == "limit_maker":
            params["postOnly"] = True
            kind = "limit"
        # Strings, not floats: ccxt formats them with its exact decimal routines.
        amount = str(order.amount) if order.amount is not None else None
        price = str(order.price) if order.price is not None else None
        raw = await self.pool.send_once(
            account, lambda c: c.create_order(order.symbol, kind, order.side, amount, price, params)
        )
        if not raw.get("id") or raw.get("clientOrderId") not in (None, client_order_id):
            # ccxt turns a garbled 200 into an empty order: the order may well exist.
            raise domain.UpstreamBadResponse("unreadable answer to the order request", order_may_exist=True)
        return records.venue_order(raw)

    async def cancel_order(self, account: str, symbol: str, client_order_id: str) -> None:
        """Ask the venue to cancel an order by client id, once; `OrderNotFound` if it is not open there."""
        await self.pool.send_once(account, lambda c: c.cancel_order(None, symbol, {"clientOrderId": client_order_id}))

    async def cancel_by_venue_id(self, account: str, symbol: str, exchange_order_id: str) -> VenueOrder | None:
        """Cancel an order we may not have placed (by the venue's id), once; None if the answer says nothing."""
        raw = await self.pool.send_once(account, lambda c: c.cancel_order(exchange_order_id, symbol))
        return records.venue_order(raw) if raw.get("id") else None

    async def order_fills(self, account: str, symbol: str, exchange_order_id: str, side: str) -> list[VenueFill]:
        """The fills of one order (settling it: never refused by an open circuit)."""
        raw = await self.pool.read_private(
            account, lambda c: c.fetch_my_trades(symbol, None, None, {"orderId": exchange_order_id}), settling=True
        )
        return [records.venue_fill(t, side=side) for t in raw if t.get("id") is not None]

    async def key_restrictions(self, account: str) -> KeyRestrictions:
        """What the account's API key may do, as a binance-class venue reports it (a read, retried)."""
        raw = await self.pool.read_private(account, lambda c: c.sapiGetAccountApiRestrictions())
        return KeyRestrictions(
            withdrawals=raw.get("enableWithdrawals") is not False,  # unreadable: assume it may
            trading=raw.get("enableSpotAndMarginTrading") is True,
            ip_restricted=raw.get("ipRestrict") is True,
        )

    async def place_oco(
        self, account: str, limit: PreparedOrder, stop: PreparedOrder, list_id: str, leg_ids: tuple[str, str]
    ) -> list[VenueOrder]:
        """Send an OCO once (binance-class: POST /api/v3/orderList/oco, never retried): the post-only
        ``limit`` and the stop-loss-limit ``stop``, one amount; the legs as the venue reports them."""
        above, below = ("above", "below") if limit.side == "sell" else ("below", "above")

        async def send(c: Any) -> list[VenueOrder]:
            market = c.market(limit.symbol)
            raw = await c.privatePostOrderListOco(
                {
                    "symbol": market["id"], "side": limit.side.upper(), "quantity": str(limit.amount),
                    "listClientOrderId": list_id, "newOrderRespType": "FULL",
                    f"{above}Type": "LIMIT_MAKER", f"{above}Price": str(limit.price),
                    f"{above}ClientOrderId": leg_ids[0],
                    f"{below}Type": "STOP_LOSS_LIMIT", f"{below}Price": str(stop.price),
                    f"{below}StopPrice": str(stop.stop_price), f"{below}TimeInForce": "GTC",
                    f"{below}ClientOrderId": leg_ids[1],
                }
            )  # fmt: skip
            return [records.venue_order(c.parse_order(report, market)) for report in raw.get("orderReports") or []]

        legs = await self.pool.send_once(account, send)
        if sorted(leg.client_order_id or "" for leg in legs) != sorted(leg_ids):
            raise domain.UpstreamBadResponse("unreadable answer to the order list request", order_may_exist=True)
        return legs


def now_ms() -> int:
    return int(time.time() * 1000)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# A page of candles: open times (int64) and the venue's exact text per value (object array, n × 5).
CandlePage = tuple[np.ndarray, np.ndarray]


def _page_of_rows(rows: list[list[Any]]) -> CandlePage:
    """ccxt's OHLCV rows (venues without bulk klines) as a page."""
    stamps = np.array([int(row[0]) for row in rows], dtype=np.int64)
    values = np.empty((len(rows), 5), dtype=object)
    for i, row in enumerate(rows):
        values[i] = [None if v is None else str(v) for v in row[1:6]]
    return stamps, values


def _encode_page(page: CandlePage) -> bytes:
    stamps, values = page
    return json.dumps({"t": stamps.tolist(), "v": values.tolist()}, separators=(",", ":")).encode()


def _decode_page(data: bytes) -> CandlePage:
    decoded = json.loads(data)
    values = np.empty((len(decoded["t"]), 5), dtype=object)
    if decoded["t"]:
        values[:] = decoded["v"]
    return np.asarray(decoded["t"], dtype=np.int64), values
