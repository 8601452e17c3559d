"""Position sizing: fixed-fractional, ATR stop, volatility target, Kelly — capped by the market and funds.

The amount is truncated toward zero to the lot step and capped by the market's maximum and the free
balance (the market rules of `domain/market_rules.py`, the same ones order placement applies); an
amount under the market's minimum is reported as not tradable. The account's equity, when not given,
is its holdings valued by the one valuation rule (`domain/valuation.py`).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np

from aiotrade import errors as domain
from aiotrade.domain import market_rules
from aiotrade.domain.candles import HIGH, LOW, CandleSeries
from aiotrade.domain.money import money
from aiotrade.domain.valuation import pricing_symbols, value_assets
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.orders import OrderSide
from aiotrade.models.risk import PositionSize, PositionSizeRequest, SizingMethod
from aiotrade.quant import risk as qrisk
from aiotrade.quant import sizing as qsizing
from aiotrade.quant.errors import QuantInputError
from aiotrade.quant.returns import periods_per_year
from aiotrade.services import market as market_data


async def calculate_position_size(gateway: ExchangeGateway, account: str, request: PositionSizeRequest) -> PositionSize:
    """Size a position by the chosen method, rounded down to the lot step, capped by limits and funds."""
    venue = gateway.venue_of(account)
    markets = await gateway.require(venue, [request.symbol])
    market = markets[request.symbol]
    base, quote = market.base, market.quote
    needs_bars = request.method in (SizingMethod.ATR, SizingMethod.VOLATILITY) or (
        request.method is SizingMethod.KELLY and request.win_rate is None
    )
    bars_read = (
        market_data.candles(gateway, venue, request.symbol, request.timeframe, limit=request.lookback + 1)
        if needs_bars
        else asyncio.sleep(0, result=None)
    )
    balances, ticker, bars = await asyncio.gather(
        gateway.balances(account), gateway.ticker(venue, request.symbol), bars_read
    )
    entry = request.entry_price or ticker.last
    if entry is None:
        raise domain.UpstreamUnavailable(f"no last price for {request.symbol}")
    if request.equity is not None:
        equity = request.equity
    else:
        held = balances.holdings()
        tickers = await gateway.tickers(venue, pricing_symbols(held, quote, markets))
        equity_or_none = value_assets(held, quote, markets, tickers).total(held)
        if equity_or_none is None or equity_or_none <= 0:
            raise domain.InvalidInput.param("equity", "the account's equity cannot be valued; give equity explicitly")
        equity = equity_or_none
    if request.method is SizingMethod.FIXED_FRACTIONAL:
        _check_stop(request, entry)
    source = "given" if request.entry_price else "last price"
    conventions = [f"amount truncated toward zero to the lot step; entry {entry} ({source})"]
    risk_amount: Decimal | None = None
    try:
        raw, risk_amount, convention = _raw_size(request, equity, entry, bars)
    except QuantInputError as exc:
        raise domain.InvalidInput(str(exc)) from exc
    conventions.append(convention)

    uncapped = market_rules.truncate_to_lot(Decimal(repr(raw)), market)
    amount, caps = uncapped, []
    maximum = market_rules.max_amount(market)
    if maximum is not None and amount > maximum:
        amount, caps = market_rules.truncate_to_lot(maximum, market), [*caps, "market maximum amount"]
    affordable = (
        balances.free(quote) / (entry * (1 + request.fee_rate))
        if request.side is OrderSide.BUY
        else balances.free(base)
    )
    if amount > affordable:
        amount, caps = market_rules.truncate_to_lot(affordable, market), [*caps, "free balance"]
    for breach in market_rules.size_breaches(market, amount, amount * entry):
        caps.append(f"not tradable: {breach.field}: {breach.reason} ({breach.code})")
    return PositionSize(
        symbol=request.symbol,
        method=request.method,
        amount=amount,
        notional=money(amount * entry),
        entry_price=entry,
        equity=money(equity),
        risk_amount=money(risk_amount) if risk_amount is not None else None,
        uncapped_amount=uncapped,
        caps_applied=caps,
        conventions=conventions,
    )


def _raw_size(
    request: PositionSizeRequest, equity: Decimal, entry: Decimal, bars: CandleSeries | None
) -> tuple[float, Decimal | None, str]:
    """(amount before lots and caps, the amount at risk if the method fixes one, the convention)."""
    direction = "long" if request.side is OrderSide.BUY else "short"
    if request.method is SizingMethod.FIXED_FRACTIONAL:
        assert request.stop_price is not None
        raw = qsizing.fixed_fractional_size(
            float(equity), float(request.risk_fraction), float(entry), float(request.stop_price),
            fee_rate=float(request.fee_rate),
        )  # fmt: skip
        convention = "equity × risk% ÷ (|entry − stop| + round-trip fees on entry and exit notional)"
        return raw, equity * request.risk_fraction, convention
    if request.method is SizingMethod.ATR:
        closes = _closes(bars)
        assert bars is not None
        atr = qsizing.average_true_range(bars.column(HIGH), bars.column(LOW), closes, period=14)
        raw = qsizing.atr_stop_size(
            float(equity), float(request.risk_fraction), float(entry), float(np.asarray(atr)[-1]),
            side=direction, atr_multiple=float(request.atr_multiple), fee_rate=float(request.fee_rate),
        )  # fmt: skip
        convention = "stop at atr_multiple × ATR(14, Wilder) from entry, then fixed-fractional"
        return raw, equity * request.risk_fraction, convention
    if request.method is SizingMethod.VOLATILITY:
        assert request.target_volatility is not None
        closes = _closes(bars)
        asset_vol = float(
            qrisk.volatility(np.diff(np.log(closes)), periods_per_year=periods_per_year(request.timeframe))
        )
        raw = qsizing.volatility_target_size(
            float(equity), float(entry), target_volatility=float(request.target_volatility), asset_volatility=asset_vol
        )
        return raw, None, "notional = equity × target vol ÷ annualised asset vol (ddof 1), leverage ≤ 1"
    if request.win_rate is not None and request.payoff_ratio is not None:
        fraction = qsizing.kelly_fraction(
            float(request.win_rate), float(request.payoff_ratio), multiplier=float(request.kelly_multiplier)
        )
    else:
        closes = _closes(bars)
        fraction = qsizing.kelly_fraction_from_returns(
            np.diff(closes) / closes[:-1], multiplier=float(request.kelly_multiplier)
        )
    convention = "Kelly fraction × multiplier (capped at 1) of equity, at the entry price"
    return float(equity) * fraction / float(entry), None, convention


def _check_stop(request: PositionSizeRequest, entry: Decimal) -> None:
    """A stop is on the losing side of the entry: below it for a buy, above it for a sell."""
    assert request.stop_price is not None
    if request.side is OrderSide.BUY and request.stop_price >= entry:
        raise domain.InvalidInput.param("stop_price", f"must be below the entry {entry} for a buy")
    if request.side is OrderSide.SELL and request.stop_price <= entry:
        raise domain.InvalidInput.param("stop_price", f"must be above the entry {entry} for a sell")


def _closes(bars: CandleSeries | None) -> np.ndarray:
    if bars is None or len(bars) < 2:
        raise domain.InvalidInput.param("lookback", "not enough candles")
    return bars.closes()
