"""Live portfolio: a valued snapshot with unrealized PnL, performance, and trade checks on balances.

Valuation: every holding is priced in the account's quote currency with tickers fetched together —
directly (ETH/USDT), inverted (USDT/TRY), or through one intermediate (ETH/BTC × BTC/USDT). A holding
that cannot be priced is reported without a value and marks the data `partial`: it is never
silently valued at zero.
Cost basis: weighted average cost of the fills we recorded in the quote currency; sells release cost
at the average. Holdings that did not come from recorded fills have no cost basis (PnL null).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from aiotrade import errors as domain
from aiotrade.exchange.pool import ExchangePool
from aiotrade.models.orders import CreateOrderRequest, OrderSide
from aiotrade.models.portfolio import (
    LiveSnapshot,
    LiveTradeCheck,
    MarketDataQuality,
    Performance,
    Position,
)
from aiotrade.quant import risk as qrisk
from aiotrade.quant.errors import QuantInputError
from aiotrade.services.convert import balance_section
from aiotrade.services.risk import q
from aiotrade.store.orders import OrderStore
from aiotrade.store.risk import RiskStore
from aiotrade.store.tables import FillRow

STALE_AFTER_S = 30.0
_PLACES = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class Valuation:
    """Prices in the quote currency per asset, with the age of the oldest ticker used for each."""

    prices: dict[str, Decimal]
    ages: dict[str, float | None]
    missing: list[str]
    tickers_failed: bool


@dataclass
class CostLedger:
    """Weighted-average cost per asset from fills, and the realized PnL of sells (closed trades)."""

    quantity: dict[str, Decimal] = field(default_factory=dict)
    cost: dict[str, Decimal] = field(default_factory=dict)
    realized: list[Decimal] = field(default_factory=list)

    def average(self, asset: str) -> Decimal | None:
        qty = self.quantity.get(asset, Decimal(0))
        return self.cost[asset] / qty if qty > 0 else None


async def get_live_portfolio_snapshot(
    pool: ExchangePool, store: OrderStore, account: str, quote: str = "USDT"
) -> LiveSnapshot:
    balance = await pool.read_private(account, lambda c: c.fetch_balance())
    total, free, used = (balance_section(balance, k) for k in ("total", "free", "used"))
    held = [asset for asset, amount in total.items() if amount > 0]
    valuation = await value_assets(pool, pool.venue_of(account), held, quote)
    ledger = cost_ledger(await store.fills(account), quote)

    positions: list[Position] = []
    total_value: Decimal | None = Decimal(0)
    pnl_total, basis_total = Decimal(0), Decimal(0)
    for asset in sorted(held):
        price = valuation.prices.get(asset)
        quantity = total[asset]
        value = quantity * price if price is not None else None
        average = ledger.average(asset) if asset != quote else None
        basis_qty = min(quantity, ledger.quantity.get(asset, Decimal(0))) if average is not None else None
        pnl = pnl_pct = basis = None
        if average is not None and basis_qty and price is not None:
            basis = (average * basis_qty).quantize(_PLACES)
            pnl = ((price - average) * basis_qty).quantize(_PLACES)
            pnl_pct = q(float(pnl / basis)) if basis else None
            pnl_total += pnl
            basis_total += basis
        positions.append(
            Position(
                asset=asset,
                symbol=None if asset == quote else f"{asset}/{quote}",
                quantity=quantity,
                free=free.get(asset, Decimal(0)),
                locked=used.get(asset, Decimal(0)),
                price=price,
                market_value=value.quantize(_PLACES) if value is not None else None,
                average_cost=average.quantize(_PLACES) if average is not None else None,
                cost_basis=basis,
                unrealized_pnl=pnl,
                unrealized_pnl_pct=pnl_pct,
            )
        )
        total_value = total_value + value if total_value is not None and value is not None else None
    return LiveSnapshot(
        account=account,
        quote=quote,
        total_value=total_value.quantize(_PLACES) if total_value is not None else None,
        available_balance=free.get(quote, Decimal(0)),
        positions=positions,
        total_unrealized_pnl=pnl_total if basis_total else None,
        total_unrealized_pnl_pct=q(float(pnl_total / basis_total)) if basis_total else None,
        timestamp=datetime.now(UTC),
        market_data_quality=_quality(valuation, held),
    )


async def get_portfolio_performance(
    risk_store: RiskStore, store: OrderStore, account: str, quote: str = "USDT"
) -> Performance:
    """Returns, volatility, Sharpe, Sortino, drawdown, Calmar from recorded equity; PnL from fills."""
    history = await risk_store.equity_history(account)
    ledger = cost_ledger(await store.fills(account), quote)
    wins = [p for p in ledger.realized if p > 0]
    losses = [p for p in ledger.realized if p < 0]
    conventions = [
        "equity recorded in the background at a fixed interval; returns between consecutive records",
        "annualised with the records' median spacing; risk-free rate 0; ratios quantised to 8 places",
        "realized PnL: sells against the weighted average cost of recorded fills, fees included",
    ]
    returns: dict[str, Decimal | None] = {}
    volatility = sharpe = sortino = drawdown = calmar = None
    if history:
        now_equity = history[-1][1]
        for label, span in (("1d", timedelta(days=1)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30))):
            start = _equity_at(history, history[-1][0] - span)
            returns[label] = q(float(now_equity / start - 1)) if start else None
        returns["all"] = q(float(now_equity / history[0][1] - 1)) if history[0][1] else None
    series = np.array([float(e) for _, e in history])
    if len(series) >= 31 and np.all(series > 0):
        spacing = float(np.median(np.diff([t.timestamp() for t, _ in history])))
        ppy = 365 * 86400 / spacing if spacing > 0 else 365.0
        period_returns = series[1:] / series[:-1] - 1
        try:
            volatility = q(qrisk.volatility(period_returns, periods_per_year=ppy))
            sharpe = q(qrisk.sharpe_ratio(period_returns, periods_per_year=ppy, risk_free_rate=0.0))
            sortino = q(qrisk.sortino_ratio(period_returns, periods_per_year=ppy, risk_free_rate=0.0))
            drawdown = q(qrisk.max_drawdown(period_returns))
            calmar = q(qrisk.calmar_ratio(period_returns, periods_per_year=ppy))
        except QuantInputError as exc:  # flat equity: ratios are undefined, not zero
            conventions.append(f"ratios unavailable: {exc}")
    else:
        conventions.append(f"ratios need at least 31 equity records; {len(series)} so far")
    return Performance(
        account=account,
        quote=quote,
        observations=len(history),
        start=history[0][0] if history else None,
        end=history[-1][0] if history else None,
        returns=returns,
        volatility=volatility,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=drawdown,
        calmar=calmar,
        realized_pnl=sum(ledger.realized, Decimal(0)).quantize(_PLACES),
        closed_trades=len(ledger.realized),
        win_rate=q(len(wins) / len(ledger.realized)) if ledger.realized else None,
        profit_factor=q(float(sum(wins) / -sum(losses))) if losses else None,
        conventions=conventions,
    )


async def validate_trade_against_balances(
    pool: ExchangePool, account: str, order: CreateOrderRequest, fee_rate: Decimal = Decimal("0.001")
) -> LiveTradeCheck:
    """Can the account fund this order now? Free balance (net of funds locked in open orders) and fees."""
    venue = pool.venue_of(account)
    markets = await pool.markets(venue)
    market = markets.get(order.symbol)
    if market is None:
        raise domain.UnknownSymbol.param("symbol", f"not a market on {venue}: {order.symbol}")
    balance = await pool.read_private(account, lambda c: c.fetch_balance())
    free, used = balance_section(balance, "free"), balance_section(balance, "used")
    if order.side is OrderSide.BUY:
        asset = market["quote"]
        if order.quote_amount is not None:
            notional = order.quote_amount
        else:
            price = order.price
            if price is None:
                ticker = await pool.read(venue, lambda c: c.fetch_ticker(order.symbol))
                price = Decimal(str(ticker["last"])) if ticker.get("last") is not None else None
            if price is None:
                raise domain.UpstreamUnavailable(f"no price for {order.symbol}: cannot value the order")
            assert order.amount is not None
            notional = order.amount * price
        fee = (notional * fee_rate).quantize(_PLACES)
        required = notional + fee
    else:
        asset = market["base"]
        assert order.amount is not None
        fee, required = Decimal(0), order.amount  # a sell's fee is taken from the quote it receives
    available = free.get(asset, Decimal(0))
    return LiveTradeCheck(
        valid=required <= available,
        asset=asset,
        required=required,
        free=available,
        locked=used.get(asset, Decimal(0)),
        fee=fee,
        reason=None if required <= available else f"needs {required} {asset}, {available} free",
    )


# ----- valuation and cost --------------------------------------------------------------------------


async def value_assets(pool: ExchangePool, venue: str, assets: Iterable[str], quote: str) -> Valuation:
    """Price each asset in ``quote`` from one concurrent ticker fetch (direct, inverse or via one hop)."""
    markets = await pool.markets(venue)
    routes = {asset: _route(asset, quote, markets) for asset in assets if asset != quote}
    symbols = sorted({symbol for route in routes.values() if route for symbol, _ in route})
    tickers: Mapping[str, Any] = {}
    failed = False
    if symbols:
        try:
            tickers = await pool.read(venue, lambda c: c.fetch_tickers(symbols))
        except domain.DomainError:
            failed = True
    now = time.time()
    prices: dict[str, Decimal] = {quote: Decimal(1)}
    ages: dict[str, float | None] = {quote: 0.0}
    missing: list[str] = []
    for asset, route in routes.items():
        price: Decimal | None = Decimal(1) if route else None
        oldest: float | None = 0.0
        for symbol, inverted in route or []:
            ticker = tickers.get(symbol) or {}
            last = ticker.get("last")
            if last is None or Decimal(str(last)) <= 0:
                price = None
                break
            step = Decimal(str(last))
            price = price / step if inverted else price * step  # type: ignore[operator]
            stamp = ticker.get("timestamp")
            age = now - int(stamp) / 1000 if stamp is not None else None
            oldest = None if age is None or oldest is None else max(oldest, age)
        if price is None:
            missing.append(asset)
            ages[asset] = None
        else:
            prices[asset] = price
            ages[asset] = oldest
    return Valuation(prices=prices, ages=ages, missing=missing, tickers_failed=failed)


def _route(asset: str, quote: str, markets: Mapping[str, Any]) -> list[tuple[str, bool]] | None:
    """Symbols to multiply (or divide, when inverted) to turn one ``asset`` into ``quote``."""
    if f"{asset}/{quote}" in markets:
        return [(f"{asset}/{quote}", False)]
    if f"{quote}/{asset}" in markets:
        return [(f"{quote}/{asset}", True)]
    for symbol, market in markets.items():
        if market.get("base") == asset:
            via = market.get("quote")
            if f"{via}/{quote}" in markets:  # ETH/BTC × BTC/USDT
                return [(symbol, False), (f"{via}/{quote}", False)]
            if f"{quote}/{via}" in markets:  # BNB/USDT ÷ BTC/USDT, valuing in BTC
                return [(symbol, False), (f"{quote}/{via}", True)]
    return None


def cost_ledger(fills: Sequence[FillRow], quote: str) -> CostLedger:
    """Weighted average cost per base asset over fills in ``quote``, in time order."""
    ledger = CostLedger()
    for fill in fills:
        base, _, fill_quote = fill.symbol.partition("/")
        if fill_quote != quote:
            continue
        qty = ledger.quantity.get(base, Decimal(0))
        cost = ledger.cost.get(base, Decimal(0))
        fee_in_quote = fill.fee_cost if fill.fee_cost and fill.fee_currency == quote else Decimal(0)
        fee_in_base = fill.fee_cost if fill.fee_cost and fill.fee_currency == base else Decimal(0)
        if fill.side == "buy":
            qty += fill.amount - fee_in_base
            cost += fill.cost + fee_in_quote
        elif qty > 0:
            sold = min(fill.amount, qty)
            average = cost / qty
            ledger.realized.append(fill.price * sold - average * sold - fee_in_quote)
            cost -= average * sold
            qty -= sold
        ledger.quantity[base], ledger.cost[base] = qty, cost
    return ledger


def _quality(valuation: Valuation, held: Sequence[str]) -> MarketDataQuality:
    priced = [a for a in held if a in valuation.prices]
    ages = {a: (round(valuation.ages[a], 3) if valuation.ages.get(a) is not None else None) for a in held}
    if valuation.tickers_failed or (held and not priced):
        status = "unavailable"
    elif valuation.missing:
        status = "partial"
    elif any(age is None or age > STALE_AFTER_S for age in ages.values()):
        status = "stale"
    else:
        status = "fresh"
    return MarketDataQuality(status=status, price_age_s=ages, missing=sorted(valuation.missing))


def _equity_at(history: Sequence[tuple[datetime, Decimal]], when: datetime) -> Decimal | None:
    """The first recorded equity at or after ``when``; None if history does not reach back that far."""
    if not history or history[0][0] > when:
        return None
    for at, equity in history:
        if at >= when:
            return equity
    return None
