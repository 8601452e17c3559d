"""One valuation of holdings, behind the risk gate, the equity recorder, the live snapshot and the
portfolio status — so a daily-loss baseline and "now" always come from the same rule.

Every asset is priced in the quote currency from last prices: directly (ETH/USDT), inverted
(USDT/TRY), or through one intermediate (ETH/BTC × BTC/USDT). Holdings are totals (free plus locked in
open orders); dust counts. An asset that cannot be priced makes the total unknown (None), never zero.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from aiotrade.models.market import Market, Ticker

Route = tuple[tuple[str, bool], ...]  # (symbol, inverted) steps from an asset to the quote
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Valuation:
    """Prices in ``quote`` per asset, the age of the oldest ticker behind each, and what is unpriced."""

    quote: str
    prices: dict[str, Decimal]
    ages: dict[str, float | None]
    missing: tuple[str, ...]
    tickers_failed: bool = False

    def value_of(self, asset: str, amount: Decimal) -> Decimal | None:
        price = self.prices.get(asset)
        return amount * price if price is not None else None

    def total(self, holdings: Mapping[str, Decimal]) -> Decimal | None:
        """The holdings' value in the quote currency; None if any non-zero holding is unpriced."""
        value = ZERO
        for asset, amount in holdings.items():
            if amount == 0:
                continue
            part = self.value_of(asset, amount)
            if part is None:
                return None
            value += part
        return value

    def gross_exposure(self, holdings: Mapping[str, Decimal]) -> Decimal | None:
        """Sum of the absolute values of every holding but the quote currency; None if one is unpriced."""
        exposure = ZERO
        for asset, amount in holdings.items():
            if asset == self.quote or amount == 0:
                continue
            part = self.value_of(asset, abs(amount))
            if part is None:
                return None
            exposure += part
        return exposure


def pricing_symbols(assets: Iterable[str], quote: str, markets: Mapping[str, Market]) -> list[str]:
    """The symbols whose tickers value ``assets`` in ``quote`` (sorted, each once)."""
    symbols = {symbol for asset in assets if asset != quote for symbol, _ in route(asset, quote, markets) or ()}
    return sorted(symbols)


def value_assets(
    assets: Iterable[str],
    quote: str,
    markets: Mapping[str, Market],
    tickers: Mapping[str, Ticker],
    *,
    tickers_failed: bool = False,
    now: float | None = None,
) -> Valuation:
    """Price each asset in ``quote`` from ``tickers`` (which should cover `pricing_symbols`)."""
    now = time.time() if now is None else now
    prices: dict[str, Decimal] = {quote: Decimal(1)}
    ages: dict[str, float | None] = {quote: 0.0}
    missing: list[str] = []
    for asset in sorted(set(assets) - {quote}):
        price, age = _price(route(asset, quote, markets), tickers, now)
        if price is None:
            missing.append(asset)
            ages[asset] = None
        else:
            prices[asset], ages[asset] = price, age
    return Valuation(quote=quote, prices=prices, ages=ages, missing=tuple(missing), tickers_failed=tickers_failed)


def route(asset: str, quote: str, markets: Mapping[str, Market]) -> Route | None:
    """Symbols to multiply (or divide, when inverted) to turn one ``asset`` into ``quote``."""
    if f"{asset}/{quote}" in markets:
        return ((f"{asset}/{quote}", False),)
    if f"{quote}/{asset}" in markets:
        return ((f"{quote}/{asset}", True),)
    for symbol, market in markets.items():
        if market.base == asset:
            via = market.quote
            if f"{via}/{quote}" in markets:  # ETH/BTC × BTC/USDT
                return ((symbol, False), (f"{via}/{quote}", False))
            if f"{quote}/{via}" in markets:  # BNB/USDT ÷ BTC/USDT, valuing in BTC
                return ((symbol, False), (f"{quote}/{via}", True))
    return None


def _price(steps: Route | None, tickers: Mapping[str, Ticker], now: float) -> tuple[Decimal | None, float | None]:
    if not steps:
        return None, None
    price, oldest = Decimal(1), 0.0
    known_age = True
    for symbol, inverted in steps:
        ticker = tickers.get(symbol)
        last = ticker.last if ticker is not None else None
        if last is None or last <= 0:
            return None, None
        price = price / last if inverted else price * last
        if ticker is not None and ticker.timestamp is not None:
            oldest = max(oldest, now - ticker.timestamp.timestamp())
        else:
            known_age = False
    return price, oldest if known_age else None
