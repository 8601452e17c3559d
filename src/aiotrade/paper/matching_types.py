"""Vocabulary of the paper matching engine: its price source, a symbol's trading rules, exact decimals.

Everything here speaks Binance Spot: filter names and field spellings are the real exchange's, so an
unmodified `ccxt.async_support.binance` reads the paper exchange like the real one. (Its errors live in
`paper.errors`.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import ParamSpec, Protocol, TypeVar

Level = tuple[Decimal, Decimal]
"""One book level: (price, quantity)."""

ZERO = Decimal(0)
BALANCE_PRECISION = 8  # Binance prints every spot balance with 8 decimals

P = ParamSpec("P")
R = TypeVar("R")


def exact(method: Callable[P, R]) -> Callable[P, R]:
    """Run with enough decimal digits that no product or sum of amounts is ever rounded implicitly."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with localcontext(prec=60):
            return method(*args, **kwargs)

    return wrapper


class PriceSource(Protocol):
    """The synthetic market the engine trades against."""

    def book(self, symbol: str, now_ms: int, depth: int) -> tuple[list[Level], list[Level]]:
        """(bids best-first, asks best-first) at time `now_ms`."""
        ...

    def price_range(self, symbol: str, start_ms: int, end_ms: int) -> tuple[Decimal, Decimal] | None:
        """(low, high) traded between the two times, None if nothing traded."""
        ...

    def last_price(self, symbol: str, now_ms: int) -> Decimal | None:
        """The price of the latest trade at or before `now_ms`, None before the first trade."""
        ...

    def filters(self, symbol: str) -> SymbolFilters | None:
        """The symbol's trading rules, None for a symbol the market does not list."""
        ...


@dataclass(frozen=True, slots=True)
class SymbolFilters:
    """One symbol's Binance filters. A zero bound or step disables that check, as on Binance.

    Validated at construction: ticks and steps must be expressible in the assets' precisions.
    """

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal  # PRICE_FILTER
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal  # LOT_SIZE
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal  # NOTIONAL
    max_notional: Decimal = Decimal("9000000")
    apply_min_to_market: bool = True
    apply_max_to_market: bool = False
    avg_price_mins: int = 5
    market_step_size: Decimal = ZERO  # MARKET_LOT_SIZE; Binance's BTCUSDT has step 0 here
    market_min_qty: Decimal = ZERO
    market_max_qty: Decimal = ZERO
    max_num_orders: int = 200  # MAX_NUM_ORDERS: open orders per account and symbol
    max_num_algo_orders: int = 5  # MAX_NUM_ALGO_ORDERS: open stop-loss and take-profit orders, likewise
    base_asset_precision: int = 8
    quote_asset_precision: int = 8

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.step_size <= 0:
            raise ValueError(f"{self.symbol}: tick_size and step_size must be positive")
        for name in ("min_price", "max_price", "min_qty", "max_qty", "min_notional", "max_notional"):
            if getattr(self, name) < 0:
                raise ValueError(f"{self.symbol}: {name} must not be negative")
        if decimals(self.step_size) > self.base_asset_precision:
            raise ValueError(f"{self.symbol}: step_size finer than the base asset precision")
        if decimals(self.tick_size) > self.quote_asset_precision:
            raise ValueError(f"{self.symbol}: tick_size finer than the quote asset precision")
        if self.market_step_size and self.market_step_size % self.step_size:
            raise ValueError(f"{self.symbol}: market_step_size must be a multiple of step_size")

    @property
    def market_step(self) -> Decimal:
        """The quantity step of MARKET orders (LOT_SIZE's when MARKET_LOT_SIZE has none)."""
        return self.market_step_size or self.step_size

    def binance_filters(self) -> list[dict[str, object]]:
        """The `filters` list of this symbol's entry in GET /api/v3/exchangeInfo."""
        q, b = self.quote_asset_precision, self.base_asset_precision
        return [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(self.min_price, q),
                "maxPrice": fmt(self.max_price, q),
                "tickSize": fmt(self.tick_size, q),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt(self.min_qty, b),
                "maxQty": fmt(self.max_qty, b),
                "stepSize": fmt(self.step_size, b),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt(self.market_min_qty, b),
                # Binance always lists a bound here; a disabled one is LOT_SIZE's
                "maxQty": fmt(self.market_max_qty or self.max_qty, b),
                "stepSize": fmt(self.market_step_size, b),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt(self.min_notional, q),
                "applyMinToMarket": self.apply_min_to_market,
                "maxNotional": fmt(self.max_notional, q),
                "applyMaxToMarket": self.apply_max_to_market,
                "avgPriceMins": self.avg_price_mins,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": self.max_num_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": self.max_num_algo_orders},
        ]


def fmt(value: Decimal, places: int) -> str:
    """`value` as Binance prints it: fixed-point, exactly `places` decimals, never "-0"."""
    quantized = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
    return f"{abs(quantized) if quantized.is_zero() else quantized:f}"


def decimals(value: Decimal) -> int:
    """How many decimals `value` really needs (trailing zeros do not count)."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int), "finite decimals only"
    return max(0, -exponent)


def round_places(value: Decimal, places: int, rounding: str) -> Decimal:
    """`value` rounded to `places` decimals in the given direction (ROUND_DOWN, ROUND_UP)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=rounding)


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of `step` not above `value` (non-negative values)."""
    return (value // step) * step
