"""Risk: the pre-trade gate, position sizing, outcome probabilities, portfolio risk.

The gate fails closed: no price, a stale ticker or an unknown balance refuses the trade. It returns
every rule a trade breaks, each with an upper-case reason code, never just the first.
Data is gathered concurrently through the pool; the maths is `quant/` on float arrays; results come
back as Decimal quantised to 8 places (half-even) — see `models/risk.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np

from aiotrade import errors as domain
from aiotrade.exchange.pool import ExchangePool
from aiotrade.models.orders import CreateOrderRequest, OrderSide, OrderType
from aiotrade.models.risk import (
    RATIO_PLACES,
    AssetRisk,
    Interval,
    PortfolioRiskReport,
    PortfolioRiskRequest,
    PositionSize,
    PositionSizeRequest,
    Probability,
    ProbabilityRequest,
    RiskLimits,
    SizingMethod,
    TradeValidation,
    TradingState,
    Violation,
)
from aiotrade.quant import probability as qprob
from aiotrade.quant import risk as qrisk
from aiotrade.quant import sizing as qsizing
from aiotrade.quant.errors import QuantInputError
from aiotrade.quant.returns import periods_per_year
from aiotrade.services.convert import balance_section, to_decimal, truncate_to_lot
from aiotrade.services.market import ohlcv_rows, require_symbols
from aiotrade.services.orders import check_against_market, order_notional
from aiotrade.store.risk import RiskStore

_QUANTUM = Decimal(1).scaleb(-RATIO_PLACES)
_MONEY = Decimal("0.00000001")  # quote amounts derived here: 8 decimals, as exchanges print them


# ----- the pre-trade gate ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountView:
    """What the gate knows of an account: free/total balances, open orders, last prices."""

    free: dict[str, Decimal] | None
    total: dict[str, Decimal] | None
    open_orders: int | None
    tickers: dict[str, Mapping[str, Any]]


async def validate_trade(
    pool: ExchangePool,
    risk_store: RiskStore,
    account: str,
    orders: Sequence[CreateOrderRequest],
) -> TradeValidation:
    """Check a batch of orders against the market's filters and the account's limits and state.

    Balances are consumed cumulatively across the batch. Breaching the daily-loss or drawdown limit
    moves the account to REDUCING or HALTED (as configured) before the orders are judged.
    """
    venue = pool.venue_of(account)
    limits = await risk_store.limits(account)
    markets = await require_symbols(pool, venue, [o.symbol for o in orders])
    view = await _account_view(pool, account, venue, markets, limits, [o.symbol for o in orders])
    violations: list[Violation] = []
    state = (await risk_store.trading_state(account)).state
    state, equity_violations = await _loss_limits(risk_store, account, limits, view, markets, state)
    violations += equity_violations

    submitted = await risk_store.orders_submitted_since(account, datetime.now(UTC) - timedelta(minutes=1))
    if limits.max_orders_per_minute is not None and submitted + len(orders) > limits.max_orders_per_minute:
        violations.append(
            Violation(
                code="SUBMIT_RATE_EXCEEDED",
                message=f"{submitted} orders in the last minute; the limit is {limits.max_orders_per_minute}",
            )
        )
    if limits.max_open_orders is not None:
        resting = sum(1 for o in orders if o.type is OrderType.LIMIT)
        if view.open_orders is None:
            violations.append(Violation(code="OPEN_ORDERS_UNAVAILABLE", message="open orders could not be read"))
        elif view.open_orders + resting > limits.max_open_orders:
            violations.append(
                Violation(
                    code="OPEN_ORDERS_EXCEED_MAX",
                    message=f"{view.open_orders} open + {resting} new exceeds {limits.max_open_orders}",
                )
            )

    free = dict(view.free or {})
    holdings = dict(view.total or {})
    for index, order in enumerate(orders):
        tag = index if len(orders) > 1 else None
        violations += [
            v.model_copy(update={"order_index": tag})
            for v in _judge(order, markets[order.symbol], limits, view, state, free, holdings, markets)
        ]
    return TradeValidation(
        account=account,
        approved=not violations,
        violations=violations,
        trading_state=state,
        checked_at=datetime.now(UTC),
    )


async def gate(pool: ExchangePool, risk_store: RiskStore, account: str, order: CreateOrderRequest) -> None:
    """The mandatory check before an order is placed: raises `RiskRejected` with every reason."""
    verdict = await validate_trade(pool, risk_store, account, [order])
    if not verdict.approved:
        raise domain.RiskRejected(
            "refused by the pre-trade risk gate: " + ", ".join(v.code for v in verdict.violations),
            invalid_params=[domain.InvalidParam(v.code, v.message) for v in verdict.violations],
        )


def _judge(
    order: CreateOrderRequest,
    market: Mapping[str, Any],
    limits: RiskLimits,
    view: AccountView,
    state: TradingState,
    free: dict[str, Decimal],
    holdings: dict[str, Decimal],
    markets: Mapping[str, Mapping[str, Any]],
) -> list[Violation]:
    out: list[Violation] = []
    base, quote = market["base"], market["quote"]
    ticker = view.tickers.get(order.symbol)
    last = to_decimal(ticker.get("last")) if ticker else None
    if last is None:
        out.append(Violation(code="PRICE_UNAVAILABLE", message=f"no last price for {order.symbol}"))
    elif _age_s(ticker) > limits.max_ticker_age_s:
        out.append(Violation(code="PRICE_STALE", message=f"ticker for {order.symbol} is {_age_s(ticker):.0f}s old"))

    prepared, breaches = check_against_market(market, order, last)
    out += [Violation(code=b.code, message=f"{b.field}: {b.reason}") for b in breaches]
    notional = order_notional(order, prepared.amount, prepared.price, last)
    amount = prepared.amount
    if amount is None and order.quote_amount is not None and last:
        amount = order.quote_amount / last  # a quote-sized market buy, valued at the last price

    reduces = order.side is OrderSide.SELL and amount is not None and amount <= holdings.get(base, Decimal(0))
    if state is TradingState.HALTED:
        out.append(Violation(code="TRADING_HALTED", message="the account is HALTED: only cancels are allowed"))
    elif state is TradingState.REDUCING and not reduces:
        out.append(Violation(code="REDUCE_ONLY", message="the account is REDUCING: only orders that reduce exposure"))

    if order.price is not None and last is not None and limits.price_band is not None:
        deviation = abs(order.price - last) / last
        if deviation > limits.price_band:
            out.append(
                Violation(
                    code="PRICE_BAND_EXCEEDED",
                    message=f"price {order.price} is {deviation:.2%} from the last price {last} "
                    f"(band {limits.price_band:.2%})",
                )
            )
    if notional is not None and limits.max_order_notional is not None and notional > limits.max_order_notional:
        out.append(
            Violation(
                code="NOTIONAL_EXCEEDS_MAX_PER_ORDER",
                message=f"notional {notional} exceeds {limits.max_order_notional}",
            )
        )
    if order.side is OrderSide.BUY and amount is not None and last is not None:
        position = (holdings.get(base, Decimal(0)) + amount) * last
        if limits.max_position_notional is not None and position > limits.max_position_notional:
            out.append(
                Violation(
                    code="POSITION_EXCEEDS_MAX",
                    message=f"{base} position would be worth {position:.2f} {quote}; "
                    f"the limit is {limits.max_position_notional}",
                )
            )
        if limits.max_gross_exposure is not None:
            gross = _gross_exposure(holdings, markets, view.tickers, limits.quote_currency)
            if gross is None:
                out.append(Violation(code="EXPOSURE_UNAVAILABLE", message="a holding cannot be priced"))
            elif gross + amount * last > limits.max_gross_exposure:
                out.append(
                    Violation(
                        code="GROSS_EXPOSURE_EXCEEDS_MAX",
                        message=f"gross exposure would be {gross + amount * last:.2f}; "
                        f"the limit is {limits.max_gross_exposure}",
                    )
                )

    if view.free is None:
        out.append(Violation(code="BALANCE_UNAVAILABLE", message="the account's balances could not be read"))
    elif notional is not None and amount is not None:
        asset, need = (quote, notional * (1 + limits.fee_rate)) if order.side is OrderSide.BUY else (base, amount)
        available = free.get(asset, Decimal(0))
        if need > available:
            out.append(
                Violation(
                    code="INSUFFICIENT_BALANCE",
                    message=f"needs {need} {asset} (fees included), {available} free after earlier orders",
                )
            )
        free[asset] = available - need
        if order.side is OrderSide.BUY:
            holdings[base] = holdings.get(base, Decimal(0)) + amount
        else:
            holdings[base] = holdings.get(base, Decimal(0)) - amount
    return out


async def _account_view(
    pool: ExchangePool,
    account: str,
    venue: str,
    markets: Mapping[str, Mapping[str, Any]],
    limits: RiskLimits,
    symbols: Sequence[str],
) -> AccountView:
    """Balances, open orders and tickers, read concurrently; a failed read becomes None (fail closed)."""

    async def balances() -> Mapping[str, Any] | None:
        try:
            return await pool.read_private(account, lambda c: c.fetch_balance())
        except domain.DomainError:
            return None

    async def open_orders() -> int | None:
        try:
            rows = await pool.read_private(
                account,
                lambda c: c.fetch_open_orders(None, None, None, {"warnOnFetchOpenOrdersWithoutSymbol": False}),
            )
            return len(rows)
        except domain.DomainError:
            return None

    # Each read costs request weight: ask only for what the configured limits need (an account-wide
    # open-orders list weighs 80 on Binance; a ticker for one symbol 2, for many 80).
    needs_count = limits.max_open_orders is not None
    needs_holdings = (
        limits.max_gross_exposure is not None or limits.daily_loss_limit is not None or limits.max_drawdown is not None
    )
    if needs_holdings:  # the holdings decide which prices are needed: balances first
        balance, count = await asyncio.gather(balances(), open_orders() if needs_count else _nothing())
        wanted = set(symbols)
        for asset, amount in (_amounts(balance, "total") or {}).items():
            pair = f"{asset}/{limits.quote_currency}"
            if amount > 0 and pair in markets:
                wanted.add(pair)
        tickers = await _tickers(pool, venue, sorted(wanted))
    else:  # one round trip: balances, prices (and open orders) at once
        balance, count, tickers = await asyncio.gather(
            balances(), open_orders() if needs_count else _nothing(), _tickers(pool, venue, sorted(set(symbols)))
        )
    free = _amounts(balance, "free")
    total = _amounts(balance, "total")
    return AccountView(free=free, total=total, open_orders=count, tickers=tickers)


async def _tickers(pool: ExchangePool, venue: str, symbols: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    if not symbols:
        return {}
    try:
        if len(symbols) == 1:
            return {symbols[0]: await pool.read(venue, lambda c: c.fetch_ticker(symbols[0]))}
        return dict(await pool.read(venue, lambda c: c.fetch_tickers(list(symbols))))
    except domain.DomainError:
        return {}  # every order then fails closed with PRICE_UNAVAILABLE


async def _nothing() -> None:
    return None


async def _loss_limits(
    risk_store: RiskStore,
    account: str,
    limits: RiskLimits,
    view: AccountView,
    markets: Mapping[str, Mapping[str, Any]],
    state: TradingState,
) -> tuple[TradingState, list[Violation]]:
    if limits.daily_loss_limit is None and limits.max_drawdown is None:
        return state, []
    equity = equity_of(view.total, markets, view.tickers, limits.quote_currency)
    if equity is None:
        return state, [Violation(code="EQUITY_UNAVAILABLE", message="equity cannot be valued: fail closed")]
    day_start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    baseline = await risk_store.first_equity_since(account, day_start)
    if baseline is None:  # the first look of the day is the day's baseline
        await risk_store.record_equity(account, limits.quote_currency, equity)
        baseline = equity
    violations: list[Violation] = []
    if limits.daily_loss_limit is not None and baseline - equity >= limits.daily_loss_limit:
        reason = f"daily loss {baseline - equity} reached the limit {limits.daily_loss_limit}"
        state = (await risk_store.escalate(account, limits.daily_loss_state, reason)).state
        violations.append(Violation(code="DAILY_LOSS_LIMIT_REACHED", message=reason))
    peak = await risk_store.peak_equity(account)
    if limits.max_drawdown is not None and peak and peak > 0 and (peak - equity) / peak >= limits.max_drawdown:
        reason = f"drawdown {(peak - equity) / peak:.2%} from peak {peak} reached the limit {limits.max_drawdown:.2%}"
        state = (await risk_store.escalate(account, limits.drawdown_state, reason)).state
        violations.append(Violation(code="DRAWDOWN_LIMIT_REACHED", message=reason))
    return state, violations


def equity_of(
    total: Mapping[str, Decimal] | None,
    markets: Mapping[str, Mapping[str, Any]],
    tickers: Mapping[str, Mapping[str, Any]],
    quote: str,
) -> Decimal | None:
    """Holdings valued in ``quote`` at last prices; None if any holding cannot be priced."""
    if total is None:
        return None
    value = Decimal(0)
    for asset, amount in total.items():
        if amount == 0:
            continue
        if asset == quote:
            value += amount
            continue
        last = to_decimal((tickers.get(f"{asset}/{quote}") or {}).get("last"))
        if last is None:
            return None
        value += amount * last
    return value


def _gross_exposure(
    holdings: Mapping[str, Decimal],
    markets: Mapping[str, Mapping[str, Any]],
    tickers: Mapping[str, Mapping[str, Any]],
    quote: str,
) -> Decimal | None:
    non_quote = {a: v for a, v in holdings.items() if a != quote and v > 0}
    return equity_of(non_quote, markets, tickers, quote)


# ----- position sizing ---------------------------------------------------------------------------


async def calculate_position_size(pool: ExchangePool, account: str, request: PositionSizeRequest) -> PositionSize:
    """Size a position by the chosen method, rounded down to the lot step, capped by limits and funds."""
    venue = pool.venue_of(account)
    markets = await require_symbols(pool, venue, [request.symbol])
    market = markets[request.symbol]
    base, quote = market["base"], market["quote"]
    needs_bars = request.method in (SizingMethod.ATR, SizingMethod.VOLATILITY) or (
        request.method is SizingMethod.KELLY and request.win_rate is None
    )
    balance_task = pool.read_private(account, lambda c: c.fetch_balance())
    ticker_task = pool.read(venue, lambda c: c.fetch_ticker(request.symbol))
    bars_task = (
        ohlcv_rows(pool, venue, request.symbol, request.timeframe, limit=request.lookback + 1)
        if needs_bars
        else asyncio.sleep(0, result=[])
    )
    balance, ticker, bars = await asyncio.gather(balance_task, ticker_task, bars_task)
    last = to_decimal(ticker.get("last"))
    entry = request.entry_price or last
    if entry is None:
        raise domain.UpstreamUnavailable(f"no last price for {request.symbol}")
    free = _amounts(balance, "free") or {}
    if request.equity is not None:
        equity = request.equity
    else:
        total = _amounts(balance, "total") or {}
        tickers = await _tickers(
            pool, venue, [f"{a}/{quote}" for a in total if a != quote and f"{a}/{quote}" in markets]
        )
        equity = equity_of(total, markets, tickers, quote)
        if equity is None or equity <= 0:
            raise domain.InvalidInput.param("equity", "the account's equity cannot be valued; give equity explicitly")
    source = "given" if request.entry_price else "last price"
    conventions = [f"amount truncated toward zero to the lot step; entry {entry} ({source})"]
    risk_amount: Decimal | None = None
    try:
        if request.method is SizingMethod.FIXED_FRACTIONAL:
            assert request.stop_price is not None
            raw = qsizing.fixed_fractional_size(
                float(equity), float(request.risk_fraction), float(entry), float(request.stop_price),
                fee_rate=float(request.fee_rate),
            )  # fmt: skip
            risk_amount = equity * request.risk_fraction
            conventions.append("equity × risk% ÷ (|entry − stop| + round-trip fees on entry and exit notional)")
        elif request.method is SizingMethod.ATR:
            high, low, close = _hlc(bars)
            atr = qsizing.average_true_range(high, low, close, period=14)
            raw = qsizing.atr_stop_size(
                float(equity),
                float(request.risk_fraction),
                float(entry),
                float(np.asarray(atr)[-1]),
                side=_direction(request.side),
                atr_multiple=float(request.atr_multiple),
                fee_rate=float(request.fee_rate),
            )
            risk_amount = equity * request.risk_fraction
            conventions.append("stop at atr_multiple × ATR(14, Wilder) from entry, then fixed-fractional")
        elif request.method is SizingMethod.VOLATILITY:
            assert request.target_volatility is not None
            closes = _hlc(bars)[2]
            asset_vol = float(
                qrisk.volatility(np.diff(np.log(closes)), periods_per_year=periods_per_year(request.timeframe))
            )
            raw = qsizing.volatility_target_size(
                float(equity),
                float(entry),
                target_volatility=float(request.target_volatility),
                asset_volatility=asset_vol,
            )
            conventions.append("notional = equity × target vol ÷ annualised asset vol (ddof 1), leverage ≤ 1")
        else:
            if request.win_rate is not None and request.payoff_ratio is not None:
                fraction = qsizing.kelly_fraction(
                    float(request.win_rate),
                    float(request.payoff_ratio),
                    multiplier=float(request.kelly_multiplier),
                )
            else:
                closes = _hlc(bars)[2]
                fraction = qsizing.kelly_fraction_from_returns(
                    np.diff(closes) / closes[:-1], multiplier=float(request.kelly_multiplier)
                )
            raw = float(equity) * fraction / float(entry)
            conventions.append("Kelly fraction × multiplier (capped at 1) of equity, at the entry price")
    except QuantInputError as exc:
        raise domain.InvalidInput(str(exc)) from exc

    uncapped = truncate_to_lot(Decimal(repr(raw)), market)
    amount, caps = uncapped, []
    max_amount = to_decimal(((market.get("limits") or {}).get("amount") or {}).get("max"))
    if max_amount is not None and max_amount > 0 and amount > max_amount:
        amount, caps = truncate_to_lot(max_amount, market), [*caps, "market maximum amount"]
    affordable = (
        free.get(quote, Decimal(0)) / (entry * (1 + request.fee_rate))
        if request.side is OrderSide.BUY
        else free.get(base, Decimal(0))
    )
    if amount > affordable:
        amount, caps = truncate_to_lot(affordable, market), [*caps, "free balance"]
    min_amount = to_decimal(((market.get("limits") or {}).get("amount") or {}).get("min"))
    if min_amount is not None and amount < min_amount:
        caps.append(f"below the market minimum {min_amount}: not tradable")
    return PositionSize(
        symbol=request.symbol,
        method=request.method,
        amount=amount,
        notional=(amount * entry).quantize(_MONEY),
        entry_price=entry,
        equity=equity.quantize(_MONEY),
        risk_amount=risk_amount.quantize(_MONEY) if risk_amount is not None else None,
        uncapped_amount=uncapped,
        caps_applied=caps,
        conventions=conventions,
    )


# ----- outcome probabilities ---------------------------------------------------------------------


async def calculate_probability(pool: ExchangePool, venue: str, request: ProbabilityRequest) -> Probability:
    """P(take-profit before stop-loss), P(above a level), expected value: closed form and Monte Carlo."""
    await require_symbols(pool, venue, [request.symbol])
    bars, ticker = await asyncio.gather(
        ohlcv_rows(pool, venue, request.symbol, request.timeframe, limit=request.lookback + 1),
        pool.read(venue, lambda c: c.fetch_ticker(request.symbol)),
    )
    entry = request.entry_price or to_decimal(ticker.get("last"))
    if entry is None:
        raise domain.UpstreamUnavailable(f"no last price for {request.symbol}")
    closes = _hlc(bars)[2]
    try:
        log_returns = np.diff(np.log(closes))
        dd = qprob.estimate_drift_diffusion(log_returns)
        outcome = qprob.trade_outcome(
            entry=float(entry), take_profit=float(request.take_profit), stop_loss=float(request.stop_loss),
            side=_direction(request.side), mu=dd.mu, sigma=dd.sigma, fee_rate=float(request.fee_rate),
        )  # fmt: skip
        above = (
            qprob.probability_above(
                float(entry), float(request.level), horizon=request.horizon_bars, mu=dd.mu, sigma=dd.sigma
            )
            if request.level is not None
            else None
        )
        mc = qprob.monte_carlo_outcome(
            log_returns, entry=float(entry), take_profit=float(request.take_profit),
            stop_loss=float(request.stop_loss), side=_direction(request.side), n_steps=request.horizon_bars,
            seed=request.seed, n_paths=request.paths,
            level=float(request.level) if request.level is not None else None, fee_rate=float(request.fee_rate),
        )  # fmt: skip
    except QuantInputError as exc:
        raise domain.InvalidInput(str(exc)) from exc
    intervals = {
        "take_profit_first": mc.take_profit_first,
        "stop_loss_first": mc.stop_loss_first,
        "neither": mc.neither,
        "expected_value": mc.expected_value,
    }
    if mc.above_level is not None:
        intervals["above_level"] = mc.above_level
    return Probability(
        symbol=request.symbol,
        entry_price=entry,
        drift_per_bar=q(dd.mu),
        volatility_per_bar=q(dd.sigma),
        probability_take_profit_first=q(outcome.probability_take_profit),
        probability_stop_loss_first=q(outcome.probability_stop_loss),
        expected_value=q(outcome.expected_value),
        probability_above_level=q(above) if above is not None else None,
        monte_carlo={k: Interval(estimate=q(v.estimate), low=q(v.low), high=q(v.high)) for k, v in intervals.items()},
        conventions=[
            "log price is a Brownian motion with drift μ and volatility σ per bar, estimated from the lookback",
            "closed form: continuous monitoring, no time limit; P(above) is lognormal at the horizon",
            f"Monte Carlo: {request.paths} bootstrap paths of {request.horizon_bars} bars (seed {request.seed}), "
            "barriers checked at bar closes, 95% Wilson intervals",
            "expected value per unit of base in quote, fees on entry and exit",
        ],
    )


# ----- portfolio risk ----------------------------------------------------------------------------


async def assess_portfolio_risk(pool: ExchangePool, venue: str, request: PortfolioRiskRequest) -> PortfolioRiskReport:
    """Risk of a weighted portfolio from aligned candles of every symbol, fetched concurrently."""
    symbols = list(request.symbols)
    benchmark = request.benchmark
    wanted = symbols + ([benchmark] if benchmark and benchmark not in symbols else [])
    await require_symbols(pool, venue, wanted)
    if request.timeframe not in pool.capabilities(venue).timeframes:
        raise domain.InvalidInput.param("timeframe", f"{request.timeframe!r} is not offered by {venue}")
    series = await asyncio.gather(
        *(close_series(pool, venue, s, request.timeframe, limit=request.lookback + 1) for s in wanted)
    )
    await asyncio.sleep(0)  # let ticker requests in between the fetch and the maths
    timestamps, closes = aligned_closes(series)
    if len(timestamps) < 31:
        raise domain.InvalidInput.param("lookback", f"only {len(timestamps)} common candles; at least 31 are needed")
    returns = closes[1:] / closes[:-1] - 1.0
    asset_returns = returns[:, : len(symbols)]
    bench = returns[:, wanted.index(benchmark)] if benchmark else None
    weights = (
        np.array([float(w) for w in request.weights])
        if request.weights is not None
        else np.full(len(symbols), 1.0 / len(symbols))
    )
    ppy = periods_per_year(request.timeframe)
    try:
        result = qrisk.portfolio_risk(
            asset_returns, weights, confidence=float(request.confidence), horizon=float(request.horizon_bars),
            periods_per_year=ppy, risk_free_rate=float(request.risk_free_rate), benchmark=bench,
        )  # fmt: skip
    except QuantInputError as exc:
        raise domain.InvalidInput(str(exc)) from exc
    await asyncio.sleep(0)
    assets = [
        AssetRisk(
            symbol=symbol,
            weight=q(weights[i]),
            volatility=q(result.asset_volatility[i]),
            var_historical=q(result.asset_var_historical[i]),
            cvar_historical=q(result.asset_cvar_historical[i]),
            max_drawdown=q(result.asset_max_drawdown[i]),
            sharpe=q(result.asset_sharpe[i]),
            beta=q(result.asset_beta[i]) if result.asset_beta is not None else None,
            volatility_contribution=q(result.volatility_contribution[i]),
            var_contribution=q(result.var_contribution[i]),
        )
        for i, symbol in enumerate(symbols)
    ]
    return PortfolioRiskReport(
        symbols=symbols,
        timeframe=request.timeframe,
        observations=int(result.n_observations),
        start=datetime.fromtimestamp(timestamps[0] / 1000, tz=UTC),
        end=datetime.fromtimestamp(timestamps[-1] / 1000, tz=UTC),
        volatility=q(result.volatility),
        var_historical=q(result.var_historical),
        cvar_historical=q(result.cvar_historical),
        var_parametric=q(result.var_parametric),
        cvar_parametric=q(result.cvar_parametric),
        var_cornish_fisher=q(result.var_cornish_fisher),
        max_drawdown=q(result.max_drawdown),
        sharpe=q(result.sharpe),
        sortino=q(result.sortino),
        calmar=q(result.calmar),
        beta=q(result.beta) if result.beta is not None else None,
        hhi=q(result.hhi),
        effective_assets=q(result.effective_n),
        correlation=[[q(v) for v in row] for row in result.correlation],
        assets=assets,
        conventions=[
            "simple returns of closes aligned on common timestamps; weights constant",
            f"volatility: sample std (ddof 1) × √{ppy:g} periods per year",
            f"VaR/CVaR: positive loss fractions at {request.confidence} confidence over {request.horizon_bars} "
            "bar(s), one-bar figures × √horizon",
            "Sharpe/Sortino: annual risk-free rate converted per period geometrically; Calmar = CAGR / max drawdown",
            f"beta against {benchmark}" if benchmark else "no benchmark",
            "contributions: Euler allocations summing to the portfolio figure",
            f"numbers quantised to {RATIO_PLACES} decimal places, half-even",
        ],
    )


# ----- helpers -----------------------------------------------------------------------------------


def q(value: float) -> Decimal:
    """A float from quant/ as Decimal, quantised to RATIO_PLACES places, half-even."""
    return Decimal(repr(float(value))).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


async def close_series(
    pool: ExchangePool, venue: str, symbol: str, timeframe: str, *, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """(open times, closes) of a symbol's candles as arrays, made as soon as its pages arrive.

    Converting at once lets the thousands of row lists die young: kept until every symbol is in,
    they would reach the collector's oldest generation and make its full passes stall the loop.
    """
    rows = await ohlcv_rows(pool, venue, symbol, timeframe, limit=limit)
    stamps = np.fromiter((int(r[0]) for r in rows), dtype=np.int64, count=len(rows))
    closes = np.fromiter((float(r[4]) for r in rows), dtype=np.float64, count=len(rows))
    return stamps, closes


def aligned_closes(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, closes[time, symbol]) on the timestamps every symbol has (vectorised)."""
    common = series[0][0] if series else np.empty(0, dtype=np.int64)
    for stamps, _ in series[1:]:
        common = np.intersect1d(common, stamps, assume_unique=True)
    matrix = np.empty((len(common), len(series)))
    for j, (stamps, closes) in enumerate(series):
        order = np.argsort(stamps, kind="stable")
        matrix[:, j] = closes[order[np.searchsorted(stamps, common, sorter=order)]]
    return common, matrix


def _hlc(rows: Sequence[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(rows) < 2:
        raise domain.InvalidInput.param("lookback", "not enough candles")
    data = np.asarray([[float(r[2]), float(r[3]), float(r[4])] for r in rows])
    return data[:, 0], data[:, 1], data[:, 2]


def _direction(side: OrderSide) -> str:
    """quant/ speaks of positions: a buy opens a long, a sell a short."""
    return "long" if side is OrderSide.BUY else "short"


def _amounts(balance: Mapping[str, Any] | None, kind: str) -> dict[str, Decimal] | None:
    return None if balance is None else balance_section(balance, kind)


def _age_s(ticker: Mapping[str, Any] | None) -> float:
    stamp = (ticker or {}).get("timestamp")
    return float("inf") if stamp is None else time.time() - int(stamp) / 1000
