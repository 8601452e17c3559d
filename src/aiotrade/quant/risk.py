"""Risk metrics of return series, per asset and for a weighted portfolio.

Inputs are **simple** per-period returns (see `aiotrade.quant.returns`), time on axis 0: a 1-D series gives
a float, a (time × assets) panel gives one value per column. At least `MIN_OBSERVATIONS` (30) rows, all
finite. Conventions:

- Volatility is the sample standard deviation (**ddof = 1**) × √periods_per_year. Means are plain
  arithmetic means. Covariances use ddof = 1 too, so √(wᵀΣw) equals the volatility of the portfolio series.
- **VaR and CVaR are positive loss fractions** at `confidence` c (0.5 ≤ c < 1; α = 1 − c is the tail):
  a 95 % VaR of 0.04 means a 4 % loss is exceeded on 5 % of periods. (A negative figure would mean even the
  tail quantile is a gain.) They are one-period figures scaled to `horizon` periods by the
  **square-root-of-time rule**, × √horizon — exact for i.i.d. zero-mean Gaussian returns, an approximation
  otherwise (the mean term is scaled by √horizon too, not by horizon).
  - historical VaR = −Q_α(r), the empirical quantile with linear interpolation (numpy's default);
  - historical CVaR = −mean of the k = ⌊(n − 1)α⌋ + 1 lowest returns (the returns at or below Q_α);
  - parametric (Gaussian) VaR = z_c σ − μ and CVaR = σ φ(z_c) / α − μ, with z_c = Φ⁻¹(c), σ with ddof 1;
  - Cornish-Fisher VaR = −(μ + σ z̃) with z̃ = q + (q² − 1)S/6 + (q³ − 3q)K/24 − (2q³ − 5q)S²/36,
    q = Φ⁻¹(α), S and K the sample skewness and *excess* kurtosis from biased moments (m₃/m₂^1.5,
    m₄/m₂² − 3; scipy's `skew`/`kurtosis` defaults). The expansion is only trustworthy for moderate
    skew and kurtosis (far out it stops being monotonic in the quantile); no adjustment is applied.
- Max drawdown is a **positive fraction**: the largest fall of compounded wealth Π(1 + r) from its running
  peak, wealth starting at 1 before the first return (so a first-period loss counts).
- Ratios take an **annual** risk-free rate, converted to one period geometrically,
  rf_p = (1 + rf)^(1/periods_per_year) − 1:
  Sharpe = mean(r − rf_p) / std(r) × √periods_per_year;
  Sortino = mean(r − rf_p) / DD × √periods_per_year with downside deviation DD = √(mean(min(r − rf_p, 0)²))
  over all n periods (target = rf_p);
  Calmar = CAGR / max drawdown (no risk-free rate, as is usual for Calmar).
- Beta = cov(r, b) / var(b) against a benchmark series b of the same length.
- Portfolio returns are r_p = R w with constant weights (rebalanced every period); weights must sum to 1
  (±1e-6), shorts allowed. Concentration: HHI = Σ ŵᵢ² over gross weights ŵ = |w| / Σ|w|; effective
  number of assets = 1 / HHI.
- Contributions (Euler allocations, each sums to its portfolio figure):
  volatility: wᵢ(Σw)ᵢ / σ_p, annualised; parametric VaR: √horizon (z_c wᵢ(Σw)ᵢ / σ_p − wᵢμᵢ);
  historical CVaR: −√horizon × mean over the portfolio's k worst periods of wᵢ r_{t,i}.
- Zero variance (std ≤ 1e-12 per period) raises wherever a statistic divides by it: Sharpe, Cornish-Fisher,
  beta (benchmark), correlation, contributions, and every asset column of `portfolio_risk`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aiotrade.quant.errors import (
    MIN_OBSERVATIONS,
    ZERO_STD,
    QuantInputError,
    check_nonzero_std,
    check_panel,
    check_scalar,
    check_vector,
    ensure_finite,
)
from aiotrade.quant.returns import check_total_loss_floor, per_period_rate

FloatOrArray = float | NDArray[np.float64]

WEIGHT_SUM_TOLERANCE = 1e-6
_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True, eq=False)  # eq on numpy fields would be ambiguous
class PortfolioRisk:
    """Every risk figure of a portfolio and of each of its assets, with the settings that produced them.

    Portfolio-level fields are floats; `asset_*` and contribution fields are read-only arrays with one
    entry per asset column; `correlation` is (assets × assets). Conventions: see the module docstring.
    """

    n_observations: int
    confidence: float
    horizon: float
    periods_per_year: float
    risk_free_rate: float
    volatility: float
    var_historical: float
    cvar_historical: float
    var_parametric: float
    cvar_parametric: float
    var_cornish_fisher: float
    max_drawdown: float
    sharpe: float
    sortino: float
    calmar: float
    beta: float | None
    hhi: float
    effective_n: float
    asset_volatility: NDArray[np.float64]
    asset_var_historical: NDArray[np.float64]
    asset_cvar_historical: NDArray[np.float64]
    asset_var_parametric: NDArray[np.float64]
    asset_cvar_parametric: NDArray[np.float64]
    asset_var_cornish_fisher: NDArray[np.float64]
    asset_max_drawdown: NDArray[np.float64]
    asset_sharpe: NDArray[np.float64]
    asset_sortino: NDArray[np.float64]
    asset_calmar: NDArray[np.float64]
    asset_beta: NDArray[np.float64] | None
    correlation: NDArray[np.float64]
    volatility_contribution: NDArray[np.float64]
    var_contribution: NDArray[np.float64]
    cvar_contribution: NDArray[np.float64]


def portfolio_risk(
    returns: ArrayLike,
    weights: ArrayLike,
    *,
    confidence: float = 0.95,
    horizon: float = 1.0,
    periods_per_year: float,
    risk_free_rate: float,
    benchmark: ArrayLike | None = None,
) -> PortfolioRisk:
    """All risk metrics of the constant-weight portfolio R w and of each asset column of R.

    `returns` is (time × assets) simple returns, `weights` one per asset summing to 1, `benchmark` an
    optional series of the same length (its betas are then filled in). Raises `QuantInputError` for any bad
    input, including an asset column (named by index) with zero variance or without drawdown or downside.
    """
    r = _returns_panel(returns, two_d=True)
    n_assets = r.shape[1]
    w = _weights(weights, n_assets)
    c, sqrt_h = _confidence(confidence), _sqrt_horizon(horizon)
    periods = check_scalar(periods_per_year, "periods_per_year", positive=True)
    rf = per_period_rate(risk_free_rate, periods)
    b = None if benchmark is None else check_vector(benchmark, "benchmark", length=r.shape[0])

    rp = r @ w
    panel = np.column_stack([r, rp])  # the portfolio is column n_assets: one vectorised pass for all
    check_total_loss_floor(panel)

    def name(j: int) -> str:
        return "the portfolio" if j == n_assets else f"asset column {j}"

    mean = panel.mean(axis=0)
    std = panel.std(axis=0, ddof=1)
    _require_positive(std - ZERO_STD, "returns has zero variance; the statistics are undefined for", name)
    vol = std * math.sqrt(periods)
    var_h, cvar_h = _historical_var(panel, c) * sqrt_h, _historical_cvar(panel, c) * sqrt_h
    var_p, cvar_p = _parametric_var(mean, std, c) * sqrt_h, _parametric_cvar(mean, std, c) * sqrt_h
    var_cf = _cornish_fisher_var(panel, mean, std, c) * sqrt_h
    mdd = _max_drawdown(panel)
    sharpe = (mean - rf) / std * math.sqrt(periods)
    sortino = _sortino(panel, rf, periods, name)
    calmar = _calmar(panel, mdd, periods, name)
    betas = None if b is None else _beta(panel, b)

    cov = np.cov(r, rowvar=False, ddof=1).reshape(n_assets, n_assets)
    sigma_w = cov @ w
    sigma_p = math.sqrt(float(w @ sigma_w))
    vol_contrib = w * sigma_w / sigma_p * math.sqrt(periods)
    z = _NORMAL.inv_cdf(c)
    var_contrib = (z * w * sigma_w / sigma_p - w * mean[:n_assets]) * sqrt_h
    cvar_contrib = _historical_cvar_contributions(r, w, rp, c) * sqrt_h
    hhi = _hhi(w)

    def split(values: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        return float(values[n_assets]), _frozen(values[:n_assets])

    result = PortfolioRisk(
        n_observations=int(r.shape[0]),
        confidence=c,
        horizon=float(horizon),
        periods_per_year=periods,
        risk_free_rate=float(risk_free_rate),
        volatility=split(vol)[0],
        var_historical=split(var_h)[0],
        cvar_historical=split(cvar_h)[0],
        var_parametric=split(var_p)[0],
        cvar_parametric=split(cvar_p)[0],
        var_cornish_fisher=split(var_cf)[0],
        max_drawdown=split(mdd)[0],
        sharpe=split(sharpe)[0],
        sortino=split(sortino)[0],
        calmar=split(calmar)[0],
        beta=None if betas is None else split(betas)[0],
        hhi=hhi,
        effective_n=1.0 / hhi,
        asset_volatility=split(vol)[1],
        asset_var_historical=split(var_h)[1],
        asset_cvar_historical=split(cvar_h)[1],
        asset_var_parametric=split(var_p)[1],
        asset_cvar_parametric=split(cvar_p)[1],
        asset_var_cornish_fisher=split(var_cf)[1],
        asset_max_drawdown=split(mdd)[1],
        asset_sharpe=split(sharpe)[1],
        asset_sortino=split(sortino)[1],
        asset_calmar=split(calmar)[1],
        asset_beta=None if betas is None else split(betas)[1],
        correlation=_frozen(_correlation(r)),
        volatility_contribution=_frozen(vol_contrib),
        var_contribution=_frozen(var_contrib),
        cvar_contribution=_frozen(cvar_contrib),
    )
    for field in fields(result):
        value = getattr(result, field.name)
        if value is not None:
            ensure_finite(value, f"portfolio risk {field.name}")
    return result


def volatility(returns: ArrayLike, *, periods_per_year: float) -> FloatOrArray:
    """Annualised volatility: sample standard deviation (ddof = 1) × √periods_per_year."""
    r = _returns_panel(returns)
    periods = check_scalar(periods_per_year, "periods_per_year", positive=True)
    return _out(r.std(axis=0, ddof=1) * math.sqrt(periods), "volatility")


def historical_var(returns: ArrayLike, *, confidence: float = 0.95, horizon: float = 1.0) -> FloatOrArray:
    """Historical VaR as a positive loss fraction: −Q_α(r) (linear interpolation) × √horizon."""
    r = _returns_panel(returns)
    return _out(_historical_var(r, _confidence(confidence)) * _sqrt_horizon(horizon), "historical VaR")


def historical_cvar(returns: ArrayLike, *, confidence: float = 0.95, horizon: float = 1.0) -> FloatOrArray:
    """Historical CVaR (expected shortfall), positive: −mean of the ⌊(n−1)α⌋+1 worst returns × √horizon."""
    r = _returns_panel(returns)
    return _out(_historical_cvar(r, _confidence(confidence)) * _sqrt_horizon(horizon), "historical CVaR")


def parametric_var(returns: ArrayLike, *, confidence: float = 0.95, horizon: float = 1.0) -> FloatOrArray:
    """Gaussian VaR as a positive loss fraction: (z_c σ − μ) × √horizon, σ with ddof = 1."""
    r = _returns_panel(returns)
    c = _confidence(confidence)
    value = _parametric_var(r.mean(axis=0), r.std(axis=0, ddof=1), c) * _sqrt_horizon(horizon)
    return _out(value, "parametric VaR")


def parametric_cvar(returns: ArrayLike, *, confidence: float = 0.95, horizon: float = 1.0) -> FloatOrArray:
    """Gaussian CVaR as a positive loss fraction: (σ φ(z_c) / (1 − c) − μ) × √horizon, σ with ddof = 1."""
    r = _returns_panel(returns)
    c = _confidence(confidence)
    value = _parametric_cvar(r.mean(axis=0), r.std(axis=0, ddof=1), c) * _sqrt_horizon(horizon)
    return _out(value, "parametric CVaR")


def cornish_fisher_var(returns: ArrayLike, *, confidence: float = 0.95, horizon: float = 1.0) -> FloatOrArray:
    """Cornish-Fisher (skew- and kurtosis-adjusted Gaussian) VaR, positive loss fraction, × √horizon."""
    r = _returns_panel(returns)
    c = _confidence(confidence)
    std = r.std(axis=0, ddof=1)
    check_nonzero_std(std, "returns")
    value = _cornish_fisher_var(r, r.mean(axis=0), std, c) * _sqrt_horizon(horizon)
    return _out(value, "Cornish-Fisher VaR")


def max_drawdown(returns: ArrayLike) -> FloatOrArray:
    """Largest peak-to-trough fall of compounded wealth, a positive fraction in [0, 1].

    Exact, not an estimate, so one return suffices; returns must be ≥ −1.
    """
    r = check_panel(returns, "returns", min_rows=1)
    check_total_loss_floor(r)
    return _out(_max_drawdown(r), "max drawdown")


def sharpe_ratio(returns: ArrayLike, *, periods_per_year: float, risk_free_rate: float) -> FloatOrArray:
    """Annualised Sharpe ratio: mean(r − rf_p) / std(r, ddof = 1) × √periods_per_year (rf annual)."""
    r = _returns_panel(returns)
    periods = check_scalar(periods_per_year, "periods_per_year", positive=True)
    rf = per_period_rate(risk_free_rate, periods)
    std = r.std(axis=0, ddof=1)
    check_nonzero_std(std, "returns")
    return _out((r.mean(axis=0) - rf) / std * math.sqrt(periods), "Sharpe ratio")


def sortino_ratio(returns: ArrayLike, *, periods_per_year: float, risk_free_rate: float) -> FloatOrArray:
    """Annualised Sortino ratio, target rf_p: mean(r − rf_p) / √mean(min(r − rf_p, 0)²) × √periods_per_year.

    Raises if no return falls below the target (the downside deviation is zero).
    """
    r = _returns_panel(returns)
    periods = check_scalar(periods_per_year, "periods_per_year", positive=True)
    rf = per_period_rate(risk_free_rate, periods)
    return _out(_sortino(r, rf, periods, _column_name(r)), "Sortino ratio")


def calmar_ratio(returns: ArrayLike, *, periods_per_year: float) -> FloatOrArray:
    """Calmar ratio: CAGR / max drawdown (no risk-free rate). Raises if there is no drawdown."""
    r = _returns_panel(returns)
    check_total_loss_floor(r)
    periods = check_scalar(periods_per_year, "periods_per_year", positive=True)
    return _out(_calmar(r, _max_drawdown(r), periods, _column_name(r)), "Calmar ratio")


def beta(returns: ArrayLike, benchmark: ArrayLike) -> FloatOrArray:
    """Beta of each column to `benchmark` (same length): cov(r, b) / var(b)."""
    r = _returns_panel(returns)
    b = check_vector(benchmark, "benchmark", length=r.shape[0])
    return _out(_beta(r, b), "beta")


def correlation_matrix(returns: ArrayLike) -> NDArray[np.float64]:
    """Pearson correlation matrix (assets × assets) of a (time × assets) panel; no column may be constant."""
    r = _returns_panel(returns, two_d=True)
    check_nonzero_std(r.std(axis=0, ddof=1), "returns")
    return _correlation(r)


def portfolio_returns(returns: ArrayLike, weights: ArrayLike) -> NDArray[np.float64]:
    """Per-period returns R w of a portfolio rebalanced to constant `weights` (summing to 1)."""
    r = _returns_panel(returns, two_d=True, min_rows=1)
    return r @ _weights(weights, r.shape[1])


def herfindahl_index(weights: ArrayLike) -> float:
    """HHI Σ ŵᵢ² of gross weights ŵ = |w| / Σ|w|: 1/n for equal weights, 1 for a single asset."""
    w = check_vector(weights, "weights")
    if not np.any(w):
        raise QuantInputError("weights are all zero")
    return _hhi(w)


def effective_number_of_assets(weights: ArrayLike) -> float:
    """1 / HHI: the number of equal positions with the same concentration."""
    return 1.0 / herfindahl_index(weights)


def volatility_contributions(returns: ArrayLike, weights: ArrayLike, *, periods_per_year: float) -> NDArray[np.float64]:
    """Euler contribution of each asset to annualised portfolio volatility, wᵢ(Σw)ᵢ/σ_p; sums to σ_p."""
    r = _returns_panel(returns, two_d=True)
    w = _weights(weights, r.shape[1])
    periods = check_scalar(periods_per_year, "periods_per_year", positive=True)
    sigma_w, sigma_p = _portfolio_sigma(r, w)
    return _out(w * sigma_w / sigma_p * math.sqrt(periods), "volatility contributions")


def parametric_var_contributions(
    returns: ArrayLike, weights: ArrayLike, *, confidence: float = 0.95, horizon: float = 1.0
) -> NDArray[np.float64]:
    """Component parametric VaR √horizon (z_c wᵢ(Σw)ᵢ/σ_p − wᵢμᵢ); sums to the portfolio's parametric VaR."""
    r = _returns_panel(returns, two_d=True)
    w = _weights(weights, r.shape[1])
    z = _NORMAL.inv_cdf(_confidence(confidence))
    sigma_w, sigma_p = _portfolio_sigma(r, w)
    value = (z * w * sigma_w / sigma_p - w * r.mean(axis=0)) * _sqrt_horizon(horizon)
    return _out(value, "VaR contributions")


def historical_cvar_contributions(
    returns: ArrayLike, weights: ArrayLike, *, confidence: float = 0.95, horizon: float = 1.0
) -> NDArray[np.float64]:
    """Component historical CVaR: −√horizon × mean of wᵢ r_{t,i} over the portfolio's k worst periods.

    Sums exactly to the historical CVaR of the portfolio series R w.
    """
    r = _returns_panel(returns, two_d=True)
    w = _weights(weights, r.shape[1])
    c = _confidence(confidence)
    value = _historical_cvar_contributions(r, w, r @ w, c) * _sqrt_horizon(horizon)
    return _out(value, "CVaR contributions")


# --- kernels: validated 2-D (or 1-D) arrays in, one value per column out -----------------------------


def _historical_var(r: NDArray[np.float64], c: float) -> NDArray[np.float64]:
    return -np.quantile(r, 1.0 - c, axis=0)


def _historical_cvar(r: NDArray[np.float64], c: float) -> NDArray[np.float64]:
    k = _tail_size(r.shape[0], c)
    return -np.partition(r, k - 1, axis=0)[:k].mean(axis=0)


def _tail_size(n: int, c: float) -> int:
    # The epsilon keeps (n − 1)α = 49.999999… (binary rounding of α) on the intended integer.
    return math.floor((n - 1) * (1.0 - c) + 1e-9) + 1


def _parametric_var(mean: FloatOrArray, std: FloatOrArray, c: float) -> FloatOrArray:
    return _NORMAL.inv_cdf(c) * std - mean


def _parametric_cvar(mean: FloatOrArray, std: FloatOrArray, c: float) -> FloatOrArray:
    return std * _NORMAL.pdf(_NORMAL.inv_cdf(c)) / (1.0 - c) - mean


def _cornish_fisher_var(
    r: NDArray[np.float64], mean: NDArray[np.float64], std: NDArray[np.float64], c: float
) -> NDArray[np.float64]:
    centred = r - mean
    squared = centred * centred  # products, not `**`: numpy's generic power is ~20× slower
    m2 = squared.mean(axis=0)
    skew = (squared * centred).mean(axis=0) / m2**1.5
    excess_kurtosis = (squared * squared).mean(axis=0) / m2**2 - 3.0
    q = _NORMAL.inv_cdf(1.0 - c)
    z = (
        q
        + (q**2 - 1.0) * skew / 6.0
        + (q**3 - 3.0 * q) * excess_kurtosis / 24.0
        - (2.0 * q**3 - 5.0 * q) * skew**2 / 36.0
    )
    return -(mean + std * z)


def _max_drawdown(r: NDArray[np.float64]) -> NDArray[np.float64]:
    # Log wealth avoids overflow of the product on long series; a −100 % return is log wealth −inf.
    with np.errstate(divide="ignore"):
        log_wealth = np.cumsum(np.log1p(r), axis=0)
    peak = np.maximum.accumulate(np.maximum(log_wealth, 0.0), axis=0)
    return np.max(-np.expm1(log_wealth - peak), axis=0)


def _sortino(r: NDArray[np.float64], rf: float, periods: float, name: Callable[[int], str]) -> NDArray[np.float64]:
    excess = r - rf
    downside = np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2, axis=0))
    _require_positive(downside, "Sortino ratio undefined: no return below the risk-free rate for", name)
    return excess.mean(axis=0) / downside * math.sqrt(periods)


def _calmar(
    r: NDArray[np.float64], mdd: NDArray[np.float64], periods: float, name: Callable[[int], str]
) -> NDArray[np.float64]:
    _require_positive(mdd, "Calmar ratio undefined: no drawdown for", name)
    with np.errstate(divide="ignore"):
        growth = np.expm1(np.log1p(r).sum(axis=0) * (periods / r.shape[0]))
    return growth / mdd


def _beta(r: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    centred = b - b.mean()
    bb = centred @ centred
    check_nonzero_std(math.sqrt(bb / max(b.shape[0] - 1, 1)), "benchmark")
    return (centred @ r) / bb


def _correlation(r: NDArray[np.float64]) -> NDArray[np.float64]:
    corr = np.clip(np.corrcoef(r, rowvar=False).reshape(r.shape[1], r.shape[1]), -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr


def _portfolio_sigma(r: NDArray[np.float64], w: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    cov = np.cov(r, rowvar=False, ddof=1).reshape(r.shape[1], r.shape[1])
    sigma_w = cov @ w
    variance = float(w @ sigma_w)
    check_nonzero_std(math.sqrt(max(variance, 0.0)), "portfolio returns")
    return sigma_w, math.sqrt(variance)


def _historical_cvar_contributions(
    r: NDArray[np.float64], w: NDArray[np.float64], rp: NDArray[np.float64], c: float
) -> NDArray[np.float64]:
    k = _tail_size(r.shape[0], c)
    worst = np.argpartition(rp, k - 1)[:k]
    return -(r[worst] * w).mean(axis=0)


def _hhi(w: NDArray[np.float64]) -> float:
    gross = np.abs(w) / np.abs(w).sum()
    return float(gross @ gross)


# --- input handling -----------------------------------------------------------------------------------


def _returns_panel(returns: ArrayLike, *, two_d: bool = False, min_rows: int = MIN_OBSERVATIONS) -> NDArray[np.float64]:
    r = check_panel(returns, "returns", min_rows=min_rows)
    if two_d and r.ndim != 2:
        raise QuantInputError(f"returns must be 2-D (time × assets), got shape {r.shape}")
    return r


def _weights(weights: ArrayLike, n_assets: int) -> NDArray[np.float64]:
    w = check_vector(weights, "weights", length=n_assets)
    total = float(w.sum())
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise QuantInputError(f"weights sum to {total:.9g}, not 1 (tolerance {WEIGHT_SUM_TOLERANCE})")
    return w


def _confidence(confidence: float) -> float:
    c = check_scalar(confidence, "confidence", lower=0.5)
    if c >= 1.0:
        raise QuantInputError(f"confidence must be below 1, got {c}")
    return c


def _sqrt_horizon(horizon: float) -> float:
    return math.sqrt(check_scalar(horizon, "horizon", positive=True))


def _require_positive(values: NDArray[np.float64], message: str, name: Callable[[int], str]) -> None:
    bad = ~(np.atleast_1d(values) > 0)
    if bad.any():
        raise QuantInputError(f"{message} {name(int(np.flatnonzero(bad)[0]))}")


def _column_name(r: NDArray[np.float64]) -> Callable[[int], str]:
    if r.ndim == 1:
        return lambda _j: "the series"
    return lambda j: f"column {j}"


def _out(values: FloatOrArray, what: str) -> FloatOrArray:
    ensure_finite(values, what)
    return float(values) if np.ndim(values) == 0 else np.asarray(values)


def _frozen(values: NDArray[np.float64]) -> NDArray[np.float64]:
    array = np.array(values, dtype=np.float64)
    array.flags.writeable = False
    return array
