"""Live portfolio: a valued snapshot with unrealized PnL, performance, and trade checks on balances.

Valuation: every holding is priced in the account's quote currency with tickers fetched together —
directly (ETH/USDT), inverted (USDT/TRY), or through one intermediate (ETH/BTC × BTC/USDT). A holding
that cannot be priced is reported without a value and marks the data `partial`: it is never
silently valued at zero.
Cost basis: weighted average cost of the fills we recorded in the quote currency; sells release cost
at the average. Holdings that did not come from recorded fills have no cost basis (PnL null).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from aiotrade import errors as domain
from aiotrade.compute import ComputePool
from aiotrade.domain import market_rules
from aiotrade.domain.funding import funding_need
from aiotrade.domain.money import money
from aiotrade.domain.money import ratio as q
from aiotrade.domain.valuation import Valuation
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.orders import CreateOrderRequest
from aiotrade.models.portfolio import (
    LiveSnapshot,
    LiveTradeCheck,
    MarketDataQuality,
    Performance,
    Position,
)
from aiotrade.quant import jobs
from aiotrade.quant.errors import QuantInputError
from aiotrade.store.orders import OrderStore, StoredFill
from aiotrade.store.risk import RiskStore

STALE_AFTER_S = 30.0
_SLICE = 5_000  # equity records turned into floats per loop step (~8 ms)


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
    gateway: ExchangeGateway, store: OrderStore, account: str, quote: str = "USDT"
) -> LiveSnapshot:
    held = await gateway.valued_holdings(account, quote)
    balances, valuation = held.balances, held.valuation
    holdings = balances.holdings()
    ledger = cost_ledger(await store.fills(account), quote)

    positions: list[Position] = []
    pnl_total, basis_total = Decimal(0), Decimal(0)
    for asset in sorted(holdings):
        price = valuation.prices.get(asset)
        quantity = holdings[asset]
        value = quantity * price if price is not None else None
        average = ledger.average(asset) if asset != quote else None
        basis_qty = min(quantity, ledger.quantity.get(asset, Decimal(0))) if average is not None else None
        pnl = pnl_pct = basis = None
        if average is not None and basis_qty and price is not None:
            basis = money(average * basis_qty)
            pnl = money((price - average) * basis_qty)
            pnl_pct = q(float(pnl / basis)) if basis else None
            pnl_total += pnl
            basis_total += basis
        positions.append(
            Position(
                asset=asset,
                symbol=None if asset == quote else f"{asset}/{quote}",
                quantity=quantity,
                free=balances.free(asset),
                locked=balances.used(asset),
                price=price,
                market_value=money(value) if value is not None else None,
                average_cost=money(average) if average is not None else None,
                cost_basis=basis,
                unrealized_pnl=pnl,
                unrealized_pnl_pct=pnl_pct,
            )
        )
    total_value = valuation.total(holdings)
    return LiveSnapshot(
        account=account,
        quote=quote,
        total_value=money(total_value) if total_value is not None else None,
        available_balance=balances.free(quote),
        positions=positions,
        total_unrealized_pnl=pnl_total if basis_total else None,
        total_unrealized_pnl_pct=q(float(pnl_total / basis_total)) if basis_total else None,
        timestamp=datetime.now(UTC),
        market_data_quality=_quality(valuation, sorted(holdings)),
    )


async def get_portfolio_performance(
    compute: ComputePool, risk_store: RiskStore, store: OrderStore, account: str, quote: str = "USDT"
) -> Performance:
    """Returns, volatility, Sharpe, Sortino, drawdown, Calmar from recorded equity; PnL from fills.

    Bounded like every heavy request (a compute place, held from the first read): two years of minute
    records are a million points, streamed from the store a page at a time into float arrays (16 B a
    record) and handed to a compute worker (`quant.jobs.performance_job`) for the ratios. Returns over
    1d/7d/30d/all come from the records themselves, exact, read one each.
    """
    async with compute.reserve():
        bounds = await risk_store.equity_bounds(account, quote)
        returns: dict[str, Decimal | None] = {}
        equity, times_s = np.empty(0), np.empty(0)
        if bounds is not None:
            first, last = bounds
            for label, span in (("1d", timedelta(days=1)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30))):
                since = last.at - span
                start = await risk_store.first_equity_since(account, since, quote) if first.at <= since else None
                returns[label] = q(float(last.equity / start - 1)) if start else None
            returns["all"] = q(float(last.equity / first.equity - 1)) if first.equity else None
            equity, times_s = await _equity_arrays(risk_store.equity_pages(account, quote, until=last.at))
        ledger = cost_ledger(await store.fills(account), quote)
        wins = [p for p in ledger.realized if p > 0]
        losses = [p for p in ledger.realized if p < 0]
        conventions = [
            "equity recorded in the background at a fixed interval; returns between consecutive records",
            "annualised with the records' median spacing; risk-free rate 0; ratios quantised to 8 places",
            "realized PnL: sells against the weighted average cost of recorded fills, fees included",
        ]
        volatility = sharpe = sortino = drawdown = calmar = None
        if len(equity) >= 31 and np.all(equity > 0):
            try:
                ratios = await compute.run(jobs.performance_job, equity, times_s)
                volatility, sharpe, sortino = q(ratios.volatility), q(ratios.sharpe), q(ratios.sortino)
                drawdown, calmar = q(ratios.max_drawdown), q(ratios.calmar)
            except QuantInputError as exc:  # flat equity: ratios are undefined, not zero
                conventions.append(f"ratios unavailable: {exc}")
        else:
            conventions.append(f"ratios need at least 31 equity records; {len(equity)} so far")
        return Performance(
            account=account,
            quote=quote,
            observations=len(equity),
            start=bounds[0].at if bounds else None,
            end=bounds[1].at if bounds else None,
            returns=returns,
            volatility=volatility,
            sharpe=sharpe,
            sortino=sortino,
            max_drawdown=drawdown,
            calmar=calmar,
            realized_pnl=money(sum(ledger.realized, Decimal(0))),
            closed_trades=len(ledger.realized),
            win_rate=q(len(wins) / len(ledger.realized)) if ledger.realized else None,
            profit_factor=q(float(sum(wins) / -sum(losses))) if losses else None,
            conventions=conventions,
        )


async def validate_trade_against_balances(
    gateway: ExchangeGateway, risk_store: RiskStore, account: str, order: CreateOrderRequest
) -> LiveTradeCheck:
    """Can the account fund this order now? Free balance (net of funds locked in open orders) and fees at
    the account's ``fee_rate`` — the funding rule the risk gate applies (`domain/funding.py`)."""
    venue = gateway.venue_of(account)
    markets = await gateway.require(venue, [order.symbol])
    market = markets[order.symbol]
    limits = await risk_store.limits(account)
    last: Decimal | None = None
    if order.price is None and order.quote_amount is None:  # a market order by amount: value it at the last price
        balances, ticker = await asyncio.gather(gateway.balances(account), gateway.ticker(venue, order.symbol))
        last = ticker.last
    else:
        balances = await gateway.balances(account)
    prepared, _ = market_rules.prepare(market, order, last)
    notional = market_rules.notional(prepared, last)
    amount = market_rules.base_amount(prepared, last)
    if notional is None or amount is None:
        raise domain.UpstreamUnavailable(f"no price for {order.symbol}: cannot value the order")
    need = funding_need(market, prepared.side, amount, notional, limits.fee_rate)
    available = balances.free(need.asset)
    enough = need.required <= available
    return LiveTradeCheck(
        valid=enough,
        asset=need.asset,
        required=need.required,
        free=available,
        locked=balances.used(need.asset),
        fee=need.fee,
        reason=None if enough else f"needs {need.required} {need.asset}, {available} free",
    )


# ----- cost and quality ----------------------------------------------------------------------------


def cost_ledger(fills: Sequence[StoredFill], quote: str) -> CostLedger:
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


async def _equity_arrays(
    pages: AsyncGenerator[Sequence[tuple[datetime, Decimal]], None],
) -> tuple[np.ndarray, np.ndarray]:
    """(equity, epoch seconds) as float arrays, a page of records at a time, yielding to the loop between
    slices: the rows of one page are all that is held as Python objects."""
    equity_parts: list[np.ndarray] = []
    time_parts: list[np.ndarray] = []
    async with contextlib.aclosing(pages):  # an error or cancellation closes the stream and its session now
        async for page in pages:
            for start in range(0, len(page), _SLICE):
                chunk = page[start : start + _SLICE]
                equity_parts.append(np.fromiter((float(value) for _, value in chunk), float, len(chunk)))
                time_parts.append(np.fromiter((at.timestamp() for at, _ in chunk), float, len(chunk)))
                await asyncio.sleep(0)
    if not equity_parts:
        return np.empty(0), np.empty(0)
    return np.concatenate(equity_parts), np.concatenate(time_parts)
