"""Risk analytics: outcome probabilities of a trade and the risk of a weighted portfolio.

Data is gathered concurrently through the gateway; the maths is `quant/` on float arrays; results come
back as Decimal quantised to 8 places (half-even, `domain/money.ratio`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np

from aiotrade import errors as domain
from aiotrade.domain.candles import aligned_closes
from aiotrade.domain.money import RATIO_PLACES
from aiotrade.domain.money import ratio as q
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.orders import OrderSide
from aiotrade.models.risk import (
    AssetRisk,
    Interval,
    PortfolioRiskReport,
    PortfolioRiskRequest,
    Probability,
    ProbabilityRequest,
)
from aiotrade.quant import probability as qprob
from aiotrade.quant import risk as qrisk
from aiotrade.quant.errors import QuantInputError
from aiotrade.quant.returns import periods_per_year
from aiotrade.services import market as market_data

MAX_LOOKBACK = 5000


async def calculate_probability(gateway: ExchangeGateway, venue: str, request: ProbabilityRequest) -> Probability:
    """P(take-profit before stop-loss), P(above a level), expected value: closed form and Monte Carlo."""
    await gateway.require(venue, [request.symbol])
    bars, ticker = await asyncio.gather(
        market_data.candles(
            gateway, venue, request.symbol, request.timeframe, limit=request.lookback + 1, limit_name="lookback",
            maximum=MAX_LOOKBACK + 1,
        ),
        gateway.ticker(venue, request.symbol),
    )  # fmt: skip
    entry = request.entry_price or ticker.last
    if entry is None:
        raise domain.UpstreamUnavailable(f"no last price for {request.symbol}")
    if len(bars) < 2:
        raise domain.InvalidInput.param("lookback", "not enough candles")
    closes = bars.closes()
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


async def assess_portfolio_risk(
    gateway: ExchangeGateway, venue: str, request: PortfolioRiskRequest
) -> PortfolioRiskReport:
    """Risk of a weighted portfolio from aligned candles of every symbol, fetched concurrently."""
    symbols = list(request.symbols)
    benchmark = request.benchmark
    wanted = symbols + ([benchmark] if benchmark and benchmark not in symbols else [])
    await gateway.require(venue, wanted)
    if request.timeframe not in gateway.capabilities(venue).timeframes:
        raise domain.InvalidInput.param("timeframe", f"{request.timeframe!r} is not offered by {venue}")
    series = await asyncio.gather(
        *(
            market_data.candles(
                gateway, venue, s, request.timeframe, limit=request.lookback + 1, limit_name="lookback",
                maximum=MAX_LOOKBACK + 1,
            )
            for s in wanted
        )
    )  # fmt: skip
    await asyncio.sleep(0)  # let ticker requests in between the fetch and the maths
    timestamps, closes = aligned_closes(list(series))
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


def _direction(side: OrderSide) -> str:
    """quant/ speaks of positions: a buy opens a long, a sell a short."""
    return "long" if side is OrderSide.BUY else "short"
