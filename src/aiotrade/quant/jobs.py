"""Entry points for the compute workers: one per heavy service computation.

Each is a top-level function (picklable by reference) that takes plain numpy arrays, floats and strings and
returns picklable results (the quant result dataclasses), so a worker process can run it. Each gives exactly
the numbers of the in-loop quant calls it replaces, because it makes those same calls on the same arrays:

- `probability_job`: drift-diffusion estimate, closed-form bracket outcome, P(above level) and the seeded
  Monte Carlo (chunked by `probability.DEFAULT_CHUNK_CELLS`, so ≈ 32 MB per job whatever the path count);
- `portfolio_risk_job`: closes aligned on common timestamps, simple returns, `risk.portfolio_risk`;
- `allocation_job`: the same alignment and returns, `allocation.calculate_allocations` (every method);
- `performance_job`: the equity-curve ratios of the live performance view.

Alignment happens here, next to the maths, so the event loop never touches a (time × symbols) panel.
Bad input raises the quant errors (`QuantInputError`, `AllocationInputError`, `AllocationConvergenceError`);
they pickle and are re-raised in the caller unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aiotrade.quant import allocation as qalloc
from aiotrade.quant import probability as qprob
from aiotrade.quant import risk as qrisk
from aiotrade.quant.errors import QuantInputError

#: Fewest common candles portfolio risk accepts (30 returns, the estimators' minimum, plus one).
MIN_COMMON_CANDLES = 31


class InsufficientHistory(QuantInputError):
    """The series share too few timestamps for the statistic (the message says how many)."""


@dataclass(frozen=True, slots=True)
class ProbabilityResult:
    """Everything the probability endpoint reports, as floats."""

    drift: qprob.DriftDiffusion
    outcome: qprob.TradeOutcome
    above_level: float | None  # closed-form P(S_T > level) at the horizon; None without a level
    monte_carlo: qprob.MonteCarloOutcome


@dataclass(frozen=True, slots=True, eq=False)
class PortfolioRiskResult:
    """`risk.portfolio_risk` of the aligned series, and the open times of the first and last common candle."""

    start_ms: int
    end_ms: int
    risk: qrisk.PortfolioRisk


@dataclass(frozen=True, slots=True)
class PerformanceRatios:
    """Equity-curve ratios (risk-free rate 0), annualised with the records' median spacing."""

    periods_per_year: float
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    calmar: float


def probability_job(
    closes: NDArray[np.float64],
    *,
    entry: float,
    take_profit: float,
    stop_loss: float,
    side: qprob.Side,
    horizon_bars: int,
    paths: int,
    seed: int,
    level: float | None = None,
    fee_rate: float = 0.0,
) -> ProbabilityResult:
    """Closed form and bootstrap Monte Carlo of a bracket trade from close prices (oldest first)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # a non-positive close is refused just below
        log_returns = np.diff(np.log(np.asarray(closes, dtype=np.float64)))
    drift = qprob.estimate_drift_diffusion(log_returns)
    outcome = qprob.trade_outcome(
        entry=entry, take_profit=take_profit, stop_loss=stop_loss, side=side, mu=drift.mu, sigma=drift.sigma,
        fee_rate=fee_rate,
    )  # fmt: skip
    above = (
        qprob.probability_above(entry, level, horizon=horizon_bars, mu=drift.mu, sigma=drift.sigma)
        if level is not None
        else None
    )
    monte_carlo = qprob.monte_carlo_outcome(
        log_returns, entry=entry, take_profit=take_profit, stop_loss=stop_loss, side=side, n_steps=horizon_bars,
        seed=seed, n_paths=paths, level=level, fee_rate=fee_rate,
    )  # fmt: skip
    return ProbabilityResult(drift=drift, outcome=outcome, above_level=above, monte_carlo=monte_carlo)


def portfolio_risk_job(
    timestamps: Sequence[NDArray[np.int64]],
    closes: Sequence[NDArray[np.float64]],
    *,
    n_assets: int,
    weights: NDArray[np.float64] | None,
    benchmark_column: int | None,
    confidence: float,
    horizon: float,
    periods_per_year: float,
    risk_free_rate: float,
) -> PortfolioRiskResult:
    """Risk of a constant-weight portfolio of the first `n_assets` series (equal weights when `weights` is None).

    `benchmark_column` picks the benchmark among all the series (it may be one of the assets). Raises
    `InsufficientHistory` below `MIN_COMMON_CANDLES` common timestamps.
    """
    common, panel = aligned_closes(timestamps, closes)
    if len(common) < MIN_COMMON_CANDLES:
        raise InsufficientHistory(f"only {len(common)} common candles; at least {MIN_COMMON_CANDLES} are needed")
    returns = panel[1:] / panel[:-1] - 1.0
    w = np.full(n_assets, 1.0 / n_assets) if weights is None else np.asarray(weights, dtype=np.float64)
    risk = qrisk.portfolio_risk(
        returns[:, :n_assets], w, confidence=confidence, horizon=horizon, periods_per_year=periods_per_year,
        risk_free_rate=risk_free_rate, benchmark=None if benchmark_column is None else returns[:, benchmark_column],
    )  # fmt: skip
    return PortfolioRiskResult(start_ms=int(common[0]), end_ms=int(common[-1]), risk=risk)


def allocation_job(
    timestamps: Sequence[NDArray[np.int64]],
    closes: Sequence[NDArray[np.float64]],
    *,
    method: str,
    constraints: qalloc.AllocationConstraints,
    signals: Sequence[float] | None = None,
    covariance: str = "sample",
) -> qalloc.AllocationResult:
    """`calculate_allocations` over the simple returns of the closes aligned on their common timestamps."""
    _, panel = aligned_closes(timestamps, closes)
    returns = panel[1:] / panel[:-1] - 1.0
    return qalloc.calculate_allocations(
        returns, method, constraints=constraints, signals=None if signals is None else list(signals),
        covariance=covariance,
    )  # fmt: skip


def performance_job(equity: NDArray[np.float64], times_s: NDArray[np.float64]) -> PerformanceRatios:
    """Volatility, Sharpe, Sortino, max drawdown and Calmar of an equity curve sampled at `times_s` (epoch s).

    Periods per year come from the median spacing of the records (365 when it is not positive). Raises
    `QuantInputError` when a ratio is undefined (e.g. flat equity).
    """
    series = np.asarray(equity, dtype=np.float64)
    spacing = float(np.median(np.diff(np.asarray(times_s, dtype=np.float64))))
    ppy = 365 * 86400 / spacing if spacing > 0 else 365.0
    period_returns = series[1:] / series[:-1] - 1
    return PerformanceRatios(
        periods_per_year=ppy,
        volatility=float(qrisk.volatility(period_returns, periods_per_year=ppy)),
        sharpe=float(qrisk.sharpe_ratio(period_returns, periods_per_year=ppy, risk_free_rate=0.0)),
        sortino=float(qrisk.sortino_ratio(period_returns, periods_per_year=ppy, risk_free_rate=0.0)),
        max_drawdown=float(qrisk.max_drawdown(period_returns)),
        calmar=float(qrisk.calmar_ratio(period_returns, periods_per_year=ppy)),
    )


def aligned_closes(
    timestamps: Sequence[NDArray[np.int64]], closes: Sequence[NDArray[np.float64]]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """(common timestamps, closes[time, series]) on the timestamps every series has.

    Each series' timestamps must be ascending and unique (as candle series are), with one close per timestamp.
    """
    if len(timestamps) != len(closes):
        raise QuantInputError(f"{len(timestamps)} timestamp series for {len(closes)} close series")
    stamps = [np.asarray(t, dtype=np.int64) for t in timestamps]
    values = [np.asarray(c, dtype=np.float64) for c in closes]
    for j, (t, c) in enumerate(zip(stamps, values, strict=True)):
        if t.ndim != 1 or t.shape != c.shape:
            raise QuantInputError(f"series {j}: {t.shape} timestamps for {c.shape} closes")
        if t.size > 1 and not np.all(t[1:] > t[:-1]):
            raise QuantInputError(f"series {j}: timestamps must be ascending and unique")
    common = stamps[0] if stamps else np.empty(0, dtype=np.int64)
    for t in stamps[1:]:
        common = np.intersect1d(common, t, assume_unique=True)
    matrix = np.empty((len(common), len(values)))
    for j, (t, c) in enumerate(zip(stamps, values, strict=True)):
        matrix[:, j] = c[np.searchsorted(t, common)]
    return common, matrix


def warm_up() -> None:
    """Run each job once on a tiny input, so that a worker's first real request pays no first-call costs."""
    rng = np.random.default_rng(0)
    n = 64
    stamps = np.arange(n, dtype=np.int64)
    closes = [100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n))) for _ in range(2)]
    probability_job(
        closes[0], entry=100.0, take_profit=110.0, stop_loss=90.0, side="long", horizon_bars=5, paths=100, seed=0
    )
    portfolio_risk_job(
        [stamps, stamps], closes, n_assets=2, weights=None, benchmark_column=None, confidence=0.95, horizon=1.0,
        periods_per_year=365.0, risk_free_rate=0.0,
    )  # fmt: skip
    allocation_job([stamps, stamps], closes, method="min_variance", constraints=qalloc.AllocationConstraints())
