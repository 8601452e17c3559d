"""Binance Spot's JSON shapes: market structures in, the dicts Binance would send out.

Numbers travel as strings with 8 decimals, as Binance prints them; ids and times as integers.
"""

from __future__ import annotations

from typing import Any

from aiotrade.paper.market import Candle, OrderBook, Ticker, Trade
from aiotrade.paper.symbols import E8, SymbolSpec, fmt_e8, symbol_filters

ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"]

JSON = dict[str, Any]


class Wire:
    """Formats one symbol's market structures; prices are ticks and quantities lots on the way in."""

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
        self.filters = symbol_filters(spec)
        self._tick, self._step = spec.tick_e8, spec.step_e8

    def price(self, ticks: int) -> str:
        return fmt_e8(ticks * self._tick)

    def qty(self, lots: int) -> str:
        return fmt_e8(lots * self._step)

    def quote(self, tick_lots: int) -> str:
        """Quote amounts (ticks x lots), truncated to 8 decimals as Binance does."""
        return fmt_e8(tick_lots * self._tick * self._step // E8)

    def kline(self, c: Candle) -> list[Any]:
        return [
            c.open_time,
            self.price(c.open),
            self.price(c.high),
            self.price(c.low),
            self.price(c.close),
            self.qty(c.volume),
            c.close_time,
            self.quote(c.quote_volume),
            c.count,
            self.qty(c.taker_buy_volume),
            self.quote(c.taker_buy_quote_volume),
            "0",
        ]

    def trade(self, t: Trade) -> JSON:
        return {
            "id": t.id,
            "price": self.price(t.price),
            "qty": self.qty(t.qty),
            "quoteQty": self.quote(t.price * t.qty),
            "time": t.time,
            "isBuyerMaker": t.buyer_maker,
            "isBestMatch": True,
        }

    def agg_trade(self, t: Trade) -> JSON:
        # Every synthetic trade is its own aggregate: one taker order against one price level.
        return {
            "a": t.id,
            "p": self.price(t.price),
            "q": self.qty(t.qty),
            "f": t.id,
            "l": t.id,
            "T": t.time,
            "m": t.buyer_maker,
            "M": True,
        }

    def depth(self, book: OrderBook) -> JSON:
        return {
            "lastUpdateId": book.last_update_id,
            "bids": [[self.price(p), self.qty(q)] for p, q in book.bids],
            "asks": [[self.price(p), self.qty(q)] for p, q in book.asks],
        }

    def ticker_24hr(self, t: Ticker, mini: bool = False) -> JSON:
        if mini:
            return {
                "symbol": self.spec.id,
                "openPrice": self.price(t.open),
                "highPrice": self.price(t.high),
                "lowPrice": self.price(t.low),
                "lastPrice": self.price(t.last),
                "volume": self.qty(t.volume),
                "quoteVolume": self.quote(t.quote_volume),
                "openTime": t.open_time,
                "closeTime": t.close_time,
                "firstId": t.first_id,
                "lastId": t.last_id,
                "count": t.count,
            }
        change = t.last - t.open
        percent = f"{change * 100 / t.open:.3f}" if t.open else "0.000"
        weighted = t.quote_volume * self._tick // t.volume if t.volume else 0
        return {
            "symbol": self.spec.id,
            "priceChange": self.price(change),
            "priceChangePercent": percent,
            "weightedAvgPrice": fmt_e8(weighted),
            "prevClosePrice": self.price(t.prev_close),
            "lastPrice": self.price(t.last),
            "lastQty": self.qty(t.last_qty),
            "bidPrice": self.price(t.bid),
            "bidQty": self.qty(t.bid_qty),
            "askPrice": self.price(t.ask),
            "askQty": self.qty(t.ask_qty),
            "openPrice": self.price(t.open),
            "highPrice": self.price(t.high),
            "lowPrice": self.price(t.low),
            "volume": self.qty(t.volume),
            "quoteVolume": self.quote(t.quote_volume),
            "openTime": t.open_time,
            "closeTime": t.close_time,
            "firstId": t.first_id,
            "lastId": t.last_id,
            "count": t.count,
        }

    def price_ticker(self, last: int) -> JSON:
        return {"symbol": self.spec.id, "price": self.price(last)}

    def book_ticker(self, book: OrderBook) -> JSON:
        (bid, bid_qty), (ask, ask_qty) = book.bids[0], book.asks[0]
        return {
            "symbol": self.spec.id,
            "bidPrice": self.price(bid),
            "bidQty": self.qty(bid_qty),
            "askPrice": self.price(ask),
            "askQty": self.qty(ask_qty),
        }

    def symbol_info(self) -> JSON:
        spec = self.spec
        return {
            "symbol": spec.id,
            "status": "TRADING",
            "baseAsset": spec.base,
            "baseAssetPrecision": 8,
            "quoteAsset": spec.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ORDER_TYPES,
            "icebergAllowed": False,
            "ocoAllowed": True,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "amendAllowed": False,
            "pegInstructionsAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            # one rendering of the filters: the rules the matching engine enforces
            "filters": self.filters.binance_filters(),
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }


def exchange_info(wires: list[Wire], rate_limits: list[JSON], now: int) -> JSON:
    """GET /api/v3/exchangeInfo for the given symbols, with the exchange's own rate limits."""
    return {
        "timezone": "UTC",
        "serverTime": now,
        "rateLimits": rate_limits,
        "exchangeFilters": [],
        "symbols": [wire.symbol_info() for wire in wires],
    }


def avg_price(wire: Wire, totals: tuple[int, int] | None, last: Trade | None, mins: int) -> JSON:
    """GET /api/v3/avgPrice: the volume-weighted price of the last `mins` minutes (the last price when
    nothing traded in them), truncated to 8 decimals, and the time of the last trade."""
    if totals is not None and totals[1] > 0:
        quote, volume = totals  # ticks x lots over lots: ticks
        price = fmt_e8(quote * wire.spec.tick_e8 // volume)
    else:
        price = wire.price(last.price if last else 0)
    return {"mins": mins, "price": price, "closeTime": last.time if last else 0}
