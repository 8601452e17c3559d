"""Portfolio management: allocations, strategy signals to target weights, status, rebalancing.

Rebalancing makes a plan first (a dry run by default): for every asset whose weight is outside the
band around its target, the trade that closes the gap, as a market order, amount truncated to the lot
step; trades under the market's minimum notional are dropped and reported; fees are reserved so buys
fit the cash that sells free; sells come before buys; an optional turnover cap scales every trade down
proportionally. Execution goes through the order service — risk-gated, and idempotent per trade with
a key derived from the plan, so re-running the same rebalance never doubles its orders.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

import numpy as np

from aiotrade import errors as domain
from aiotrade.compute import ComputePool
from aiotrade.config import OrdersConfig
from aiotrade.domain import market_rules
from aiotrade.domain.money import RATIO_QUANTUM, money
from aiotrade.domain.money import ratio as q
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.market import Market
from aiotrade.models.orders import CreateOrderRequest, OrderSide, OrderType
from aiotrade.models.portfolio import (
    Allocation,
    AllocationRequest,
    AssetStatus,
    BandKind,
    Constraints,
    Direction,
    DroppedTrade,
    PlannedTrade,
    PortfolioStatus,
    RebalancePlan,
    RebalanceRequest,
    SignalsOutcome,
    SignalsRequest,
    Targets,
    TradeOutcome,
)
from aiotrade.quant import allocation as qalloc
from aiotrade.quant import jobs
from aiotrade.quant.allocation_errors import AllocationConvergenceError, AllocationInputError
from aiotrade.quant.allocation_solvers import scale_into_budget_box
from aiotrade.quant.errors import QuantInputError
from aiotrade.quant.returns import periods_per_year
from aiotrade.services import market as market_data
from aiotrade.services.orders.placement import place_order
from aiotrade.services.risk.gate import RiskGate
from aiotrade.store.orders import OrderStore
from aiotrade.store.portfolio import PortfolioStore

_DIRECTION = {Direction.LONG: Decimal(1), Direction.SHORT: Decimal(-1), Direction.FLAT: Decimal(0)}


async def calculate_allocations(
    gateway: ExchangeGateway,
    compute: ComputePool,
    venue: str,
    request: AllocationRequest,
    portfolio_store: PortfolioStore | None = None,
) -> Allocation:
    """Weights for the symbols by the chosen method over the lookback; optionally saved as targets.

    Alignment and the optimiser (or HRP) run in a compute worker (`quant.jobs.allocation_job`); symbols ×
    lookback over the budget is a 422 before anything is fetched.
    """
    compute.settings.check_candles(len(request.symbols), request.lookback)
    async with compute.reserve():  # a place before any data is held: bounded memory
        series, closes = await market_data.lookback_series(
            gateway, venue, request.symbols, request.timeframe, request.lookback
        )
        c = request.constraints
        constraints = qalloc.AllocationConstraints(
            min_weight=float(c.min_weight),
            max_weight=float(c.max_weight),
            cash_buffer=float(c.cash_buffer),
            risk_free_rate=float(request.risk_free_rate),
            periods_per_year=periods_per_year(request.timeframe),
        )
        try:
            result = await compute.run(
                jobs.allocation_job,
                [s.timestamps for s in series],
                closes,
                method=request.method.value,
                constraints=constraints,
                signals=[float(s) for s in request.signals] if request.signals is not None else None,
                covariance="ledoit_wolf" if request.shrinkage else "sample",
            )
        except (AllocationInputError, AllocationConvergenceError, QuantInputError) as exc:
            raise domain.InvalidInput(str(exc)) from exc
    weights = {s: q(w) for s, w in zip(request.symbols, result.weights, strict=True)}
    saved = False
    if request.save_as_targets:
        if portfolio_store is None or request.account is None:
            raise domain.InvalidInput.param("account", "required with save_as_targets")
        gateway.venue_of(request.account)
        await portfolio_store.set_targets(request.account, weights, source=f"allocation:{request.method.value}")
        saved = True
    return Allocation(
        method=request.method,
        weights=weights,
        cash_weight=q(result.cash_weight),
        expected_return=q(result.expected_return),
        volatility=q(result.volatility),
        sharpe=q(result.sharpe_ratio),
        risk_contributions={s: q(v) for s, v in zip(request.symbols, result.risk_contributions, strict=True)},
        observations=int(result.n_observations),
        conventions=[*result.conventions, "weights quantised to 8 decimal places, half-even"],
        saved_as_targets=saved,
    )


async def process_signals(
    gateway: ExchangeGateway, portfolio_store: PortfolioStore, account: str, request: SignalsRequest
) -> SignalsOutcome:
    """Fold strategy signals into target weights and store them as the account's targets.

    Score per symbol = Σ_s w_s · direction · strength · confidence ÷ Σ_s w_s over the strategies with an
    unexpired signal for it (w_s: the strategy's weight, default 1). Long-only: scores ≤ 0 get no
    weight. Weights ∝ scores, fitted to the budget (1 − cash buffer) and the per-asset bounds; if the
    bounds cannot absorb the budget, the remainder stays in cash.
    """
    await gateway.require(gateway.venue_of(account), [s.symbol for s in request.signals])
    now = datetime.now(UTC)
    fresh = [s for s in request.signals if s.timestamp.timestamp() + s.ttl_s > now.timestamp()]
    dropped_on_arrival = len(request.signals) - len(fresh)
    collapsed = await portfolio_store.upsert_signals(account, fresh) if fresh else 0
    active, expired = await portfolio_store.active_signals(account, now)

    numerator: dict[str, Decimal] = {}
    denominator: dict[str, Decimal] = {}
    for signal in active:
        weight = request.strategy_weights.get(signal.strategy_id, Decimal(1))
        score = _DIRECTION[Direction(signal.direction)] * signal.strength * signal.confidence
        numerator[signal.symbol] = numerator.get(signal.symbol, Decimal(0)) + weight * score
        denominator[signal.symbol] = denominator.get(signal.symbol, Decimal(0)) + weight
    scores = {s: numerator[s] / denominator[s] for s in numerator if denominator[s] > 0}
    weights = _weights_from_scores(scores, request.constraints)
    updated = await portfolio_store.set_targets(account, weights, source="signals")
    return SignalsOutcome(
        targets=Targets(
            account=account,
            weights=weights,
            cash_weight=Decimal(1) - sum(weights.values(), Decimal(0)),
            updated_at=updated,
            source="signals",
        ),
        accepted=len(fresh),
        expired_dropped=dropped_on_arrival + expired,
        duplicates_collapsed=collapsed,
        active_signals=len(active),
        scores={s: q(float(v)) for s, v in scores.items()},
        conventions=[
            "score = Σ strategy weight × direction × strength × confidence ÷ Σ strategy weight",
            "long-only: non-positive scores get no weight; weights ∝ scores within the bounds and budget",
            "the newest signal per (strategy, symbol) replaces older ones; expired signals are dropped",
        ],
    )


async def get_targets(portfolio_store: PortfolioStore, account: str) -> Targets:
    weights, updated, source = await portfolio_store.targets(account)
    return Targets(
        account=account,
        weights=weights,
        cash_weight=Decimal(1) - sum(weights.values(), Decimal(0)),
        updated_at=updated,
        source=source,
    )


async def get_portfolio_status(
    gateway: ExchangeGateway, portfolio_store: PortfolioStore, account: str, quote: str = "USDT"
) -> PortfolioStatus:
    """Current weights against targets, drift per asset, cash, and when we last rebalanced."""
    targets, updated, _ = await portfolio_store.targets(account)
    holdings, valuation, total = await _holdings(gateway, account, quote, targets)
    assets: list[AssetStatus] = []
    for asset in sorted(set(holdings) | {s.split("/")[0] for s in targets}):
        if asset == quote:
            continue
        symbol = f"{asset}/{quote}"
        value = money(holdings.get(asset, Decimal(0)) * valuation[asset]) if asset in valuation else None
        weight = q(float(value / total)) if value is not None and total else None
        target = targets.get(symbol, Decimal(0))
        assets.append(
            AssetStatus(
                asset=asset,
                symbol=symbol,
                quantity=holdings.get(asset, Decimal(0)),
                value=value,
                weight=weight,
                target_weight=target,
                drift=weight - target if weight is not None else None,
            )
        )
    return PortfolioStatus(
        account=account,
        quote=quote,
        total_value=money(total) if total is not None else None,
        cash=holdings.get(quote, Decimal(0)),
        assets=assets,
        targets_updated_at=updated,
        last_rebalance_at=await portfolio_store.last_rebalance(account),
        priced_completely=total is not None,
    )


async def rebalance_portfolio(
    gateway: ExchangeGateway,
    order_store: OrderStore,
    portfolio_store: PortfolioStore,
    gate: RiskGate,
    config: OrdersConfig,
    account: str,
    request: RebalanceRequest,
    *,
    rebalance_key: str | None = None,
    quote: str = "USDT",
) -> RebalancePlan:
    """Plan the trades to reach the targets; with ``execute``, place them (sells first) through the same
    placement path as any order — the gate, exactly once — and report each."""
    targets, targets_updated, _ = await portfolio_store.targets(account)
    if not targets:
        raise domain.InvalidInput("no targets for this account: POST /portfolio/allocations or /portfolio/signals")
    venue = gateway.venue_of(account)
    markets = await gateway.require(venue, list(targets))
    holdings, prices, total = await _holdings(gateway, account, quote, targets)
    if total is None or total <= 0:
        raise domain.UpstreamUnavailable("the portfolio cannot be valued now (missing prices): no plan is made")

    trades, dropped = _plan(targets, holdings, prices, total, markets, request, quote)
    plan_id = rebalance_key or _plan_id(account, request, targets, targets_updated)
    turnover = sum((t.notional for t in trades), Decimal(0)) / total
    plan = RebalancePlan(
        account=account,
        plan_id=plan_id,
        quote=quote,
        total_value=money(total),
        trades=trades,
        dropped=dropped,
        turnover=q(float(turnover)),
        fees=sum((t.fee for t in trades), Decimal(0)),
        executed=False,
        conventions=[
            f"band: {request.band_kind.value} {request.band}; market orders; amounts truncated to the lot step",
            "fees reserved at fee_rate on each trade's notional; sells placed before buys",
            "each trade's Idempotency-Key is derived from the plan id: re-running it replays, never doubles",
        ],
    )
    if not request.execute:
        await portfolio_store.record_rebalance(account, plan_id, False, plan.model_dump(mode="json"))
        return plan

    outcomes: list[TradeOutcome] = []
    for side in (OrderSide.SELL, OrderSide.BUY):
        batch = [t for t in trades if t.side is side]
        outcomes += await asyncio.gather(
            *(_execute(gateway, order_store, gate, config, account, t, plan_id) for t in batch)
        )
    executed = plan.model_copy(update={"executed": True, "outcomes": outcomes})
    await portfolio_store.record_rebalance(account, plan_id, True, executed.model_dump(mode="json"))
    return executed


async def _execute(
    gateway: ExchangeGateway,
    order_store: OrderStore,
    gate: RiskGate,
    config: OrdersConfig,
    account: str,
    trade: PlannedTrade,
    plan_id: str,
) -> TradeOutcome:
    request = CreateOrderRequest(symbol=trade.symbol, side=trade.side, type=OrderType.MARKET, amount=trade.amount)
    key = f"rebalance:{plan_id}:{trade.symbol}:{trade.side.value}"
    try:
        placement = await place_order(gateway, order_store, gate, config, account, request, idempotency_key=key)
    except domain.DomainError as error:
        return TradeOutcome(
            symbol=trade.symbol,
            side=trade.side,
            status="failed",
            error=error.detail,
            order_may_exist=error.order_may_exist,
        )
    return TradeOutcome(symbol=trade.symbol, side=trade.side, status="placed", order=placement.order)


def _plan(
    targets: Mapping[str, Decimal],
    holdings: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    total: Decimal,
    markets: Mapping[str, Market],
    request: RebalanceRequest,
    quote: str,
) -> tuple[list[PlannedTrade], list[DroppedTrade]]:
    trades: list[PlannedTrade] = []
    dropped: list[DroppedTrade] = []
    for symbol in sorted(targets):
        base = markets[symbol].base
        price = prices.get(base)
        if price is None:
            dropped.append(DroppedTrade(symbol=symbol, reason="no price", notional=None))
            continue
        target = targets[symbol]
        value = holdings.get(base, Decimal(0)) * price
        weight = value / total
        drift = weight - target
        band = request.band if request.band_kind is BandKind.ABSOLUTE else request.band * target
        if abs(drift) <= band:
            continue
        side = OrderSide.SELL if drift > 0 else OrderSide.BUY
        amount = market_rules.truncate_to_lot(abs(drift) * total / price, markets[symbol])
        if side is OrderSide.SELL:
            amount = min(amount, market_rules.truncate_to_lot(holdings.get(base, Decimal(0)), markets[symbol]))
        trades.append(_trade(symbol, side, amount, price, request.fee_rate, weight, target, total))

    scale = Decimal(1)
    if request.max_turnover is not None:
        turnover = sum((t.notional for t in trades), Decimal(0)) / total
        if turnover > request.max_turnover:
            scale = request.max_turnover / turnover
    # Buys must fit the cash on hand plus what the sells bring in, after fees.
    cash = holdings.get(quote, Decimal(0)) + sum(
        (t.notional * scale - t.fee * scale for t in trades if t.side is OrderSide.SELL), Decimal(0)
    )
    buys_need = sum(
        (t.notional * scale * (1 + request.fee_rate) for t in trades if t.side is OrderSide.BUY), Decimal(0)
    )
    buy_scale = min(Decimal(1), cash / buys_need) if buys_need > 0 else Decimal(1)

    fitted: list[PlannedTrade] = []
    for t in trades:
        factor = scale * (buy_scale if t.side is OrderSide.BUY else Decimal(1))
        amount = market_rules.truncate_to_lot(t.amount * factor, markets[t.symbol]) if factor < 1 else t.amount
        notional = amount * t.price
        reason = _untradable(markets[t.symbol], amount, notional)
        if reason:
            dropped.append(DroppedTrade(symbol=t.symbol, reason=reason, notional=notional))
            continue
        fitted.append(
            _trade(t.symbol, t.side, amount, t.price, request.fee_rate, t.weight_before, t.target_weight, total)
        )
    fitted.sort(key=lambda t: (t.side is OrderSide.BUY, t.symbol))  # sells first
    return fitted, dropped


def _trade(
    symbol: str,
    side: OrderSide,
    amount: Decimal,
    price: Decimal,
    fee_rate: Decimal,
    weight: Decimal,
    target: Decimal,
    total: Decimal,
) -> PlannedTrade:
    notional = money(amount * price)
    signed = notional if side is OrderSide.BUY else -notional
    return PlannedTrade(
        symbol=symbol,
        side=side,
        amount=amount,
        price=price,
        notional=notional,
        fee=money(notional * fee_rate),
        weight_before=q(float(weight)),
        weight_after=q(float(weight + signed / total)),
        target_weight=target,
    )


def _untradable(market: Market, amount: Decimal, notional: Decimal) -> str | None:
    """Why the market would refuse a trade of this size (the same rules order placement applies)."""
    breaches = market_rules.size_breaches(market, amount, notional)
    return "; ".join(f"{b.field}: {b.reason} ({b.code})" for b in breaches) or None


async def _holdings(
    gateway: ExchangeGateway, account: str, quote: str, targets: Mapping[str, Decimal]
) -> tuple[dict[str, Decimal], dict[str, Decimal], Decimal | None]:
    """Total balances, prices in quote, and the portfolio's value (None if anything held is unpriced)."""
    markets = await gateway.markets(gateway.venue_of(account))
    wanted = [markets[s].base for s in targets if s in markets]
    held = await gateway.valued_holdings(account, quote, also_value=wanted)
    return held.balances.holdings(), held.valuation.prices, held.total


def _weights_from_scores(scores: Mapping[str, Decimal], constraints: Constraints) -> dict[str, Decimal]:
    positive = {s: v for s, v in scores.items() if v > 0}
    if not positive:
        return {}
    symbols = sorted(positive)
    budget = float(1 - constraints.cash_buffer)
    raw = np.array([float(positive[s]) for s in symbols])
    lo = np.full(len(symbols), float(constraints.min_weight))
    hi = np.full(len(symbols), float(constraints.max_weight))
    fitted = scale_into_budget_box(raw / raw.sum(), lo, hi, budget)
    if fitted is None:  # the bounds cannot absorb the budget: the rest stays in cash
        fitted = hi if hi.sum() < budget else np.minimum(hi, np.maximum(lo, budget * raw / raw.sum()))
    weights = {s: q(w).quantize(RATIO_QUANTUM, rounding=ROUND_DOWN) for s, w in zip(symbols, fitted, strict=True)}
    return {s: w for s, w in weights.items() if w > 0}


def _plan_id(account: str, request: RebalanceRequest, targets: Mapping[str, Decimal], updated: datetime | None) -> str:
    """Same account, request and targets → same plan id (and so the same per-trade keys)."""
    canonical = json.dumps(
        {
            "account": account,
            "request": request.model_dump(mode="json", exclude={"execute"}),
            "targets": {s: str(w) for s, w in sorted(targets.items())},
            "targets_updated": updated.isoformat() if updated else None,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]
