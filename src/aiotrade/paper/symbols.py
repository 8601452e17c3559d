"""The paper exchange's listing: assets with their price dynamics, and spot symbols with Binance's filters.

Every price, quantity and notional is an integer number of 1e-8 units (Binance prints 8 decimals), so the
market is computed in whole ticks and lots and never rounds through binary floats on the way out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from aiotrade.paper.matching_types import SymbolFilters

E8 = 100_000_000


@dataclass(frozen=True, slots=True)
class Asset:
    """A currency whose USDT price follows the synthetic path (USDT itself is the numéraire)."""

    code: str
    start_usdt: float  # price on the origin day (close of 2023, roughly)
    annual_vol: float  # annualised volatility of log returns
    market_loading: float  # correlation of its shocks with the common market factor


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """A spot pair; its price is base/quote in USDT terms, so cross pairs stay consistent with USDT pairs."""

    base: str
    quote: str
    tick_e8: int
    step_e8: int
    min_qty_e8: int
    max_qty_e8: int
    market_max_qty_e8: int
    min_notional_e8: int
    max_notional_e8: int
    max_price_e8: int
    quote_volume_per_day: float  # in quote currency; sets the size of minute volumes
    pairs_per_minute: float  # mean number of mid-range trade pairs per minute; sets the trade count

    @property
    def id(self) -> str:
        return self.base + self.quote

    @property
    def unified(self) -> str:
        return f"{self.base}/{self.quote}"

    @property
    def tick(self) -> float:
        return self.tick_e8 / E8

    @property
    def step(self) -> float:
        return self.step_e8 / E8


def e8(text: str) -> int:
    """'0.00001' -> 1000: exact, from the decimal string."""
    whole, _, frac = text.partition(".")
    if len(frac) > 8:
        raise ValueError(f"{text} has more than 8 decimals")
    return int(whole) * E8 + int(frac.ljust(8, "0") or 0)


def fmt_e8(units: int) -> str:
    """1000 -> '0.00001000': Binance's fixed 8-decimal notation."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), E8)
    return f"{sign}{whole}.{frac:08d}"


def decimals(units_e8: int) -> int:
    """Number of decimals a tick or step of that size needs (0.01 -> 2)."""
    return 8 - (len(str(units_e8)) - len(str(units_e8).rstrip("0")))


ASSETS: tuple[Asset, ...] = (
    Asset("USDT", 1.0, 0.0, 0.0),
    Asset("BTC", 42283.58, 0.50, 0.85),
    Asset("ETH", 2281.87, 0.60, 0.75),
    Asset("SOL", 101.72, 0.85, 0.65),
    Asset("BNB", 312.30, 0.55, 0.70),
    Asset("XRP", 0.6155, 0.70, 0.60),
    Asset("ADA", 0.5929, 0.75, 0.65),
    Asset("DOGE", 0.08949, 0.85, 0.60),
    Asset("LTC", 72.89, 0.65, 0.70),
    Asset("DOT", 8.278, 0.75, 0.70),
    Asset("LINK", 15.08, 0.80, 0.65),
)


# What differs between the two quote currencies: (minimum notional, maximum price), as Binance lists them.
_QUOTE_LIMITS = {"USDT": ("5", "1000000"), "BTC": ("0.0001", "1000")}


def _spec(
    quote: str, base: str, tick: str, step: str, max_qty: str, market_max: str, volume: float, pairs: float
) -> SymbolSpec:
    min_notional, max_price = _QUOTE_LIMITS[quote]
    return SymbolSpec(
        base=base,
        quote=quote,
        tick_e8=e8(tick),
        step_e8=e8(step),
        min_qty_e8=e8(step),
        max_qty_e8=e8(max_qty),
        market_max_qty_e8=e8(market_max),
        min_notional_e8=e8(min_notional),
        max_notional_e8=e8("9000000"),
        max_price_e8=e8(max_price),
        quote_volume_per_day=volume,
        pairs_per_minute=pairs,
    )


def _usdt(base: str, tick: str, step: str, max_qty: str, market_max: str, volume: float, pairs: float) -> SymbolSpec:
    return _spec("USDT", base, tick, step, max_qty, market_max, volume, pairs)


def _btc(base: str, tick: str, step: str, max_qty: str, market_max: str, volume: float, pairs: float) -> SymbolSpec:
    return _spec("BTC", base, tick, step, max_qty, market_max, volume, pairs)


# Tick sizes and lot steps as Binance lists them; volumes are rough daily turnovers of early 2024.
SYMBOLS: tuple[SymbolSpec, ...] = (
    _usdt("BTC", "0.01", "0.00001", "9000", "120", 1.5e9, 40),
    _usdt("ETH", "0.01", "0.0001", "9000", "2500", 8.0e8, 30),
    _btc("ETH", "0.00001", "0.0001", "100000", "2500", 600.0, 4),
    _usdt("SOL", "0.01", "0.001", "9000000", "40000", 4.0e8, 25),
    _usdt("BNB", "0.01", "0.001", "9000", "3000", 1.0e8, 10),
    _usdt("XRP", "0.0001", "0.1", "9222449", "2500000", 2.0e8, 15),
    _usdt("ADA", "0.0001", "0.1", "900000", "1500000", 5.0e7, 8),
    _usdt("DOGE", "0.00001", "1", "9000000", "9000000", 1.5e8, 12),
    _usdt("LTC", "0.01", "0.001", "900000", "10000", 4.0e7, 6),
    _usdt("DOT", "0.001", "0.01", "900000", "200000", 3.0e7, 5),
    _usdt("LINK", "0.01", "0.01", "900000", "150000", 5.0e7, 8),
    _btc("SOL", "0.0000001", "0.001", "9000000", "20000", 100.0, 3),
)


def minute_sigma(asset: Asset) -> float:
    """Standard deviation of one minute's log return."""
    return asset.annual_vol / math.sqrt(365.0 * 1440.0)


def listing(extra_assets: int = 0) -> tuple[tuple[Asset, ...], tuple[SymbolSpec, ...]]:
    """The dozen real-looking symbols, plus `extra_assets` synthetic altcoins quoted in USDT (ALT01/USDT, ...)
    for benchmarks that need a wide market (portfolio risk over 50 symbols, an account holding 20 assets)."""
    assets, symbols = list(ASSETS), list(SYMBOLS)
    for i in range(1, extra_assets + 1):
        price = 0.5 + (i * 7.919) % 97.0  # deterministic spread of prices between 0.5 and ~97
        code = f"ALT{i:02d}"
        assets.append(Asset(code, price, 0.6 + (i % 5) * 0.1, 0.4 + (i % 4) * 0.1))
        symbols.append(_usdt(code, "0.001", "0.01", "9000000", "900000", 2.0e7, 4))
    return tuple(assets), tuple(symbols)


def symbol_filters(spec: SymbolSpec) -> SymbolFilters:
    """The symbol's Binance filters as the matching engine enforces them (and exchangeInfo lists them)."""
    return SymbolFilters(
        symbol=spec.id,
        base_asset=spec.base,
        quote_asset=spec.quote,
        tick_size=_decimal(spec.tick_e8),
        min_price=_decimal(spec.tick_e8),
        max_price=_decimal(spec.max_price_e8),
        step_size=_decimal(spec.step_e8),
        min_qty=_decimal(spec.min_qty_e8),
        max_qty=_decimal(spec.max_qty_e8),
        min_notional=_decimal(spec.min_notional_e8),
        max_notional=_decimal(spec.max_notional_e8),
        market_max_qty=_decimal(spec.market_max_qty_e8),
    )


def _decimal(units_e8: int) -> Decimal:
    return Decimal(units_e8) / E8
