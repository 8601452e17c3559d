"""The synthetic market as the matching engine's price source: its ticks and lots become exact Decimals."""

from __future__ import annotations

from decimal import Decimal

from aiotrade.paper.market import SyntheticMarket
from aiotrade.paper.matching_types import Level, SymbolFilters
from aiotrade.paper.symbols import E8, SymbolSpec, symbol_filters


class MarketPrices:
    """`PriceSource` over a `SyntheticMarket`: books, traded ranges, last prices and filters of its symbols."""

    def __init__(self, market: SyntheticMarket) -> None:
        self._market = market
        self._filters = {symbol: symbol_filters(spec) for symbol, spec in market.symbols.items()}

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

    def last_price(self, symbol: str, now_ms: int) -> Decimal | None:
        last = self._market.last_trade(symbol, now_ms)
        return None if last is None else _price(self._market.symbols[symbol], last.price)

    def filters(self, symbol: str) -> SymbolFilters | None:
        return self._filters.get(symbol)


def _price(spec: SymbolSpec, ticks: int) -> Decimal:
    return Decimal(ticks * spec.tick_e8) / E8


def _qty(spec: SymbolSpec, lots: int) -> Decimal:
    return Decimal(lots * spec.step_e8) / E8
