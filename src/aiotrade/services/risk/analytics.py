"""Risk analytics: outcome probabilities of a trade and the risk of a weighted portfolio.

Data is gathered concurrently through the gateway on the event loop; the maths is `quant/` on float arrays
in a compute worker process (`aiotrade.compute`, entry points in `quant.jobs`), never on the loop; results
come back as Decimal quantised to 8 places (half-even, `domain/money.ratio`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np

from aiotrade import errors as domain
from aiotrade.compute import ComputePool
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
from aiotrade.quant import jobs
from aiotrade.quant.errors import QuantInputError
from aiotrade.quant.returns import periods_per_year
from aiotrade.services import market as market_data


async def calculate_probability(
    gateway: ExchangeGateway, compute: ComputePool, venue: str, request: ProbabilityRequest
) -> Probability:
    """P(take-profit before stop-loss), P(above a level), expected value: closed form and Monte Carlo.

    The maths runs in a compute worker (`quant.jobs.probability_job`); paths × horizon_bars over the
    budget is a 422 before anything is fetched.
    """
    compute.settings.check_path_steps(request.paths, request.horizon_bars)
    async with compute.reserve():  # a place before any data is held: bounded memory
        await gateway.require(venue, [request.symbol])
        bars, ticker = await asyncio.gather(
            market_data.candles(
                gateway, venue, request.symbol, request.timeframe, limit=request.lookback + 1, limit_name="lookback",
                maximum=market_data.MAX_LOOKBACK + 1,
            ),
            gateway.ticker(venue, request.symbol),
        )  # fmt: skip
        entry = request.entry_price or ticker.last
        if entry is None:
            raise domain.UpstreamUnavailable(f"no last price for {request.symbol}")
        if len(bars) < 2:
            raise domain.InvalidInput.param("lookback", "not enough candles")
        try:
            result = await compute.run(
                jobs.probability_job, bars.closes(), entry=float(entry), take_profit=float(request.take_profit),
                stop_loss=float(request.stop_loss), side=_direction(request.side), horizon_bars=request.horizon_bars,
                paths=request.paths, seed=request.seed, fee_rate=float(request.fee_rate),
                level=float(request.level) if request.level is not None else None,
            )  # fmt: skip
        except QuantInputError as exc:
            raise domain.InvalidInput(str(exc)) from exc
    dd, outcome, above, mc = result.drift, result.outcome, result.above_level, result.monte_carlo
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
    gateway: ExchangeGateway, compute: ComputePool, venue: str, request: PortfolioRiskRequest
) -> PortfolioRiskReport:
    """Risk of a weighted portfolio from aligned candles of every symbol, fetched concurrently.

    Alignment and maths run in a compute worker (`quant.jobs.portfolio_risk_job`); symbols × lookback over
    the budget is a 422 before anything is fetched.
    """
    symbols = list(request.symbols)
    compute.settings.check_candles(len(symbols), request.lookback)
    async with compute.reserve():  # a place before any data is held: bounded memory
        benchmark = request.benchmark
        wanted = symbols + ([benchmark] if benchmark and benchmark not in symbols else [])
        series, closes = await market_data.lookback_series(gateway, venue, wanted, request.timeframe, request.lookback)
        weights = (
            np.array([float(w) for w in request.weights])
            if request.weights is not None
            else np.full(len(symbols), 1.0 / len(symbols))
        )
        ppy = periods_per_year(request.timeframe)
        try:
            job = await compute.run(
                jobs.portfolio_risk_job, [s.timestamps for s in series], closes, n_assets=len(symbols), weights=weights,
                benchmark_column=wanted.index(benchmark) if benchmark else None, confidence=float(request.confidence),
                horizon=float(request.horizon_bars), periods_per_year=ppy, risk_free_rate=float(request.risk_free_rate),
            )  # fmt: skip
        except jobs.InsufficientHistory as exc:
            raise domain.InvalidInput.param("lookback", str(exc)) from exc
        except QuantInputError as exc:
            raise domain.InvalidInput(str(exc)) from exc
    result = job.risk
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
        start=datetime.fromtimestamp(job.start_ms / 1000, tz=UTC),
        end=datetime.fromtimestamp(job.end_ms / 1000, tz=UTC),
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
