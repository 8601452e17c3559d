"""Risk metrics against empyrical-reloaded, quantstats, scipy and numpy on fixed fat-tailed data.

Reference conventions differ from ours in places; each test converts explicitly:
- empyrical's VaR/CVaR/max drawdown are *returns* (negative for a loss); ours are positive losses: negate.
- empyrical takes the risk-free rate per period; ours is annual, converted geometrically, so the test passes
  (1 + rf)^(1/365) − 1. quantstats de-annualises rf the same geometric way, so it gets the annual rate.
- empyrical/quantstats VaR take the tail α = 1 − confidence (empyrical: `cutoff`) and have no horizon;
  ours at horizon T is the one-period figure × √T.
"""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest
import quantstats.stats as qs
from scipy import stats

from aiotrade.quant import risk
from aiotrade.quant.errors import QuantInputError
from aiotrade.quant.returns import per_period_rate

PPY = 365.0
CONFIDENCES = [0.95, 0.99]


def columns(market) -> list[np.ndarray]:
    return [np.ascontiguousarray(column) for column in market.returns.T]


def test_volatility_matches_empyrical_and_quantstats_with_ddof_1(market) -> None:
    ours = risk.volatility(market.returns, periods_per_year=PPY)
    reference = empyrical.annual_volatility(market.returns, annualization=PPY)  # ddof=1, × √365
    np.testing.assert_allclose(ours, reference, rtol=1e-12)
    for j, column in enumerate(columns(market)):
        qs_vol = qs.volatility(pd.Series(column), periods=PPY, prepare_returns=False)  # pandas std: ddof=1
        assert ours[j] == pytest.approx(qs_vol, rel=1e-12)
        assert risk.volatility(column, periods_per_year=PPY) == pytest.approx(ours[j], rel=1e-15)


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_historical_var_is_the_negated_empyrical_quantile(market, confidence: float) -> None:
    ours = risk.historical_var(market.returns, confidence=confidence)
    for j, column in enumerate(columns(market)):
        # empyrical.value_at_risk returns the (negative) 1−c percentile, linear interpolation.
        assert ours[j] == pytest.approx(-empyrical.value_at_risk(column, cutoff=1 - confidence), rel=1e-12)
    assert np.all(ours > 0)


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_historical_cvar_matches_empyrical_and_quantstats(market, confidence: float) -> None:
    ours = risk.historical_cvar(market.returns, confidence=confidence)
    for j, column in enumerate(columns(market)):
        reference = -empyrical.conditional_value_at_risk(column, cutoff=1 - confidence)
        assert ours[j] == pytest.approx(reference, rel=1e-12)
        # quantstats averages the returns at or below the empirical quantile: the same tail without ties.
        qs_cvar = qs.cvar(pd.Series(column), confidence=confidence, prepare_returns=False, method="historical")
        assert ours[j] == pytest.approx(-qs_cvar, rel=1e-12)
    assert np.all(ours >= risk.historical_var(market.returns, confidence=confidence))


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_parametric_var_and_cvar_match_quantstats_and_scipy(market, confidence: float) -> None:
    var = risk.parametric_var(market.returns, confidence=confidence)
    cvar = risk.parametric_cvar(market.returns, confidence=confidence)
    alpha = 1 - confidence
    for j, column in enumerate(columns(market)):
        series = pd.Series(column)
        mu, sd = column.mean(), column.std(ddof=1)
        # quantstats: norm.ppf(1 − c, μ, σ) — a return, negative for a loss.
        assert var[j] == pytest.approx(-qs.value_at_risk(series, confidence=confidence, prepare_returns=False))
        assert var[j] == pytest.approx(-stats.norm.ppf(alpha, loc=mu, scale=sd), rel=1e-12)
        qs_cvar = qs.cvar(series, confidence=confidence, prepare_returns=False, method="parametric")
        assert cvar[j] == pytest.approx(-qs_cvar, rel=1e-12)
        # E[X | X ≤ q_α] for X ~ N(μ, σ²) by numerical integration, independent of the closed form.
        tail_mean = stats.norm.expect(lambda x: x, loc=mu, scale=sd, ub=stats.norm.ppf(alpha, mu, sd), conditional=True)
        assert cvar[j] == pytest.approx(-tail_mean, rel=1e-8)
    assert np.all(cvar > var)


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_cornish_fisher_var_matches_the_expansion_with_scipy_moments(market, confidence: float) -> None:
    ours = risk.cornish_fisher_var(market.returns, confidence=confidence)
    for j, column in enumerate(columns(market)):
        s = stats.skew(column)  # biased moment estimator (scipy default)
        k = stats.kurtosis(column)  # excess kurtosis, biased (scipy default)
        q = stats.norm.ppf(1 - confidence)
        z = q + (q**2 - 1) * s / 6 + (q**3 - 3 * q) * k / 24 - (2 * q**3 - 5 * q) * s**2 / 36
        assert ours[j] == pytest.approx(-(column.mean() + column.std(ddof=1) * z), rel=1e-12)


def test_cornish_fisher_var_exceeds_gaussian_var_at_99_for_fat_tails(market) -> None:
    # Student-t data has positive excess kurtosis: the 99 % Cornish-Fisher quantile lies further out.
    assert np.all(stats.kurtosis(market.returns) > 1.0)
    cf = risk.cornish_fisher_var(market.returns, confidence=0.99)
    gaussian = risk.parametric_var(market.returns, confidence=0.99)
    assert np.all(cf > gaussian)


def test_cornish_fisher_var_reduces_to_gaussian_var_for_gaussian_data() -> None:
    sample = np.random.default_rng(5).normal(0.001, 0.02, size=200_000)
    cf = risk.cornish_fisher_var(sample, confidence=0.95)
    assert cf == pytest.approx(risk.parametric_var(sample, confidence=0.95), rel=2e-3)


def test_var_and_cvar_scale_by_square_root_of_horizon(market) -> None:
    for function in (
        risk.historical_var,
        risk.historical_cvar,
        risk.parametric_var,
        risk.parametric_cvar,
        risk.cornish_fisher_var,
    ):
        one = function(market.returns, confidence=0.99, horizon=1)
        ten = function(market.returns, confidence=0.99, horizon=10)
        np.testing.assert_allclose(ten, one * math.sqrt(10), rtol=1e-14)


def test_max_drawdown_matches_empyrical_as_a_positive_fraction(market) -> None:
    ours = risk.max_drawdown(market.returns)
    np.testing.assert_allclose(ours, -empyrical.max_drawdown(market.returns), rtol=1e-10)
    assert np.all((ours > 0) & (ours < 1))


def test_max_drawdown_counts_from_the_starting_wealth_and_handles_total_loss() -> None:
    assert risk.max_drawdown(np.array([0.1, -0.5, 0.2])) == pytest.approx(0.5, rel=1e-14)
    assert risk.max_drawdown(np.array([-0.2, 0.1])) == pytest.approx(0.2, rel=1e-14)
    assert risk.max_drawdown(np.array([0.1, 0.2])) == 0.0
    assert risk.max_drawdown(np.array([0.5, -1.0, 0.3])) == 1.0


def test_sharpe_matches_empyrical_with_per_period_rf_and_quantstats_with_annual_rf(market) -> None:
    rf_daily = (1 + market.risk_free_rate) ** (1 / PPY) - 1
    ours = risk.sharpe_ratio(market.returns, periods_per_year=PPY, risk_free_rate=market.risk_free_rate)
    reference = empyrical.sharpe_ratio(market.returns, risk_free=rf_daily, annualization=PPY)
    np.testing.assert_allclose(ours, reference, rtol=1e-10)
    for j, column in enumerate(columns(market)):
        assert ours[j] == pytest.approx(qs.sharpe(pd.Series(column), rf=market.risk_free_rate, periods=PPY))


def test_sortino_matches_empyrical_with_rf_as_target_and_quantstats(market) -> None:
    rf_daily = (1 + market.risk_free_rate) ** (1 / PPY) - 1
    ours = risk.sortino_ratio(market.returns, periods_per_year=PPY, risk_free_rate=market.risk_free_rate)
    reference = empyrical.sortino_ratio(market.returns, required_return=rf_daily, annualization=PPY)
    np.testing.assert_allclose(ours, reference, rtol=1e-10)
    for j, column in enumerate(columns(market)):
        qs_sortino = qs.sortino(pd.Series(column), rf=market.risk_free_rate, periods=PPY)
        assert ours[j] == pytest.approx(qs_sortino, rel=1e-10)


def test_calmar_matches_empyrical_and_quantstats(market) -> None:
    ours = risk.calmar_ratio(market.returns, periods_per_year=PPY)
    for j, column in enumerate(columns(market)):
        assert ours[j] == pytest.approx(empyrical.calmar_ratio(column, annualization=PPY), rel=1e-10)
        # quantstats' drawdown needs a date index; the dates do not enter the figure.
        series = pd.Series(column, index=pd.date_range("2024-01-01", periods=len(column), freq="D"))
        assert ours[j] == pytest.approx(qs.calmar(series, prepare_returns=False, periods=PPY), rel=1e-10)


def test_beta_matches_empyrical_and_least_squares_slope(market) -> None:
    ours = risk.beta(market.returns, market.benchmark)
    np.testing.assert_allclose(ours, empyrical.beta(market.returns, market.benchmark), rtol=1e-12)
    for j, column in enumerate(columns(market)):
        assert ours[j] == pytest.approx(np.polyfit(market.benchmark, column, 1)[0], rel=1e-9)
    # The generating betas were 1.2, 0.8, 1.5, 0.3: the estimates land near them.
    np.testing.assert_allclose(ours, [1.2, 0.8, 1.5, 0.3], atol=0.1)


def test_correlation_matrix_matches_numpy_corrcoef(market) -> None:
    ours = risk.correlation_matrix(market.returns)
    np.testing.assert_allclose(ours, np.corrcoef(market.returns, rowvar=False), rtol=0, atol=1e-14)
    np.testing.assert_array_equal(np.diag(ours), 1.0)
    np.testing.assert_array_equal(ours, ours.T)


def test_concentration_of_hand_weights() -> None:
    assert risk.herfindahl_index([0.25, 0.25, 0.25, 0.25]) == pytest.approx(0.25, rel=1e-15)
    assert risk.herfindahl_index([0.5, 0.3, 0.2]) == pytest.approx(0.38, rel=1e-14)
    assert risk.effective_number_of_assets([0.5, 0.3, 0.2]) == pytest.approx(1 / 0.38, rel=1e-14)
    assert risk.effective_number_of_assets([1.0, 0.0]) == 1.0
    # Long-short: concentration of gross exposure, |w| / Σ|w| = (0.75, 0.25).
    assert risk.herfindahl_index([1.5, -0.5]) == pytest.approx(0.625, rel=1e-15)


def test_volatility_contributions_are_euler_gradients_summing_to_portfolio_volatility(market) -> None:
    r, w = market.returns, market.weights
    contributions = risk.volatility_contributions(r, w, periods_per_year=PPY)
    portfolio_vol = risk.volatility(r @ w, periods_per_year=PPY)
    assert contributions.sum() == pytest.approx(portfolio_vol, rel=1e-12)
    # Euler: contribution_i = w_i ∂σ_p/∂w_i; check the gradient by central differences.
    h = 1e-6
    for i in range(len(w)):
        bump = np.zeros_like(w)
        bump[i] = h
        up = np.std(r @ (w + bump), ddof=1) * math.sqrt(PPY)
        down = np.std(r @ (w - bump), ddof=1) * math.sqrt(PPY)
        assert contributions[i] == pytest.approx(w[i] * (up - down) / (2 * h), rel=1e-7)


def test_parametric_var_contributions_sum_to_portfolio_parametric_var(market) -> None:
    r, w = market.returns, market.weights
    for horizon in (1.0, 7.0):
        contributions = risk.parametric_var_contributions(r, w, confidence=0.99, horizon=horizon)
        assert contributions.sum() == pytest.approx(
            risk.parametric_var(r @ w, confidence=0.99, horizon=horizon), rel=1e-12
        )


def test_historical_cvar_contributions_sum_to_portfolio_historical_cvar(market) -> None:
    r, w = market.returns, market.weights
    contributions = risk.historical_cvar_contributions(r, w, confidence=0.95, horizon=4.0)
    assert contributions.sum() == pytest.approx(risk.historical_cvar(r @ w, confidence=0.95, horizon=4.0))
    # The worst ⌊749 × 0.05⌋ + 1 = 38 portfolio days, each asset's weighted average loss on them.
    worst = np.argsort(r @ w)[:38]
    np.testing.assert_allclose(contributions, -2.0 * (r[worst] * w).mean(axis=0), rtol=1e-12)


def test_portfolio_risk_agrees_with_the_individual_functions(market) -> None:
    r, w, b = market.returns, market.weights, market.benchmark
    rf = market.risk_free_rate
    result = risk.portfolio_risk(
        r, w, confidence=0.99, horizon=5.0, periods_per_year=PPY, risk_free_rate=rf, benchmark=b
    )
    rp = r @ w
    kwargs = {"confidence": 0.99, "horizon": 5.0}
    pairs = [
        ("volatility", risk.volatility, {"periods_per_year": PPY}),
        ("var_historical", risk.historical_var, kwargs),
        ("cvar_historical", risk.historical_cvar, kwargs),
        ("var_parametric", risk.parametric_var, kwargs),
        ("cvar_parametric", risk.parametric_cvar, kwargs),
        ("var_cornish_fisher", risk.cornish_fisher_var, kwargs),
        ("sharpe", risk.sharpe_ratio, {"periods_per_year": PPY, "risk_free_rate": rf}),
        ("sortino", risk.sortino_ratio, {"periods_per_year": PPY, "risk_free_rate": rf}),
        ("calmar", risk.calmar_ratio, {"periods_per_year": PPY}),
    ]
    for field, function, extra in pairs:
        assert getattr(result, field) == pytest.approx(function(rp, **extra), rel=1e-12), field
        np.testing.assert_allclose(getattr(result, f"asset_{field}"), function(r, **extra), rtol=1e-12)
    assert result.max_drawdown == pytest.approx(risk.max_drawdown(rp), rel=1e-12)
    np.testing.assert_allclose(result.asset_max_drawdown, risk.max_drawdown(r), rtol=1e-12)
    assert result.beta == pytest.approx(risk.beta(rp, b), rel=1e-12)
    assert result.beta == pytest.approx(float(w @ result.asset_beta), rel=1e-12)  # beta is linear in w
    np.testing.assert_allclose(result.correlation, np.corrcoef(r, rowvar=False), atol=1e-14)
    assert result.volatility_contribution.sum() == pytest.approx(result.volatility, rel=1e-12)
    assert result.var_contribution.sum() == pytest.approx(result.var_parametric, rel=1e-12)
    assert result.cvar_contribution.sum() == pytest.approx(result.cvar_historical, rel=1e-12)
    assert result.hhi == pytest.approx(0.3, rel=1e-14)  # 0.16 + 0.09 + 0.04 + 0.01
    assert result.effective_n == pytest.approx(1 / 0.3, rel=1e-14)
    assert (result.n_observations, result.confidence, result.horizon) == (750, 0.99, 5.0)
    # Diversification: the portfolio's volatility is below the weighted sum of its assets'.
    assert result.volatility < float(w @ result.asset_volatility)


def test_portfolio_risk_is_frozen_and_without_benchmark_has_no_beta(market) -> None:
    result = risk.portfolio_risk(market.returns, market.weights, periods_per_year=PPY, risk_free_rate=0.0)
    assert result.beta is None and result.asset_beta is None
    with pytest.raises(AttributeError):
        result.volatility = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        result.asset_volatility[0] = 0.0


# --- bad input -------------------------------------------------------------------------------------------


def test_nan_and_infinity_are_reported_with_row_and_column(market) -> None:
    r = np.array(market.returns)
    r[17, 2] = np.nan
    with pytest.raises(QuantInputError, match="returns contains NaN at row 17, column 2"):
        risk.volatility(r, periods_per_year=PPY)
    r[17, 2] = -np.inf
    with pytest.raises(QuantInputError, match="returns contains infinity at row 17, column 2"):
        risk.portfolio_risk(r, market.weights, periods_per_year=PPY, risk_free_rate=0.0)
    with pytest.raises(QuantInputError, match="benchmark contains NaN at index 3"):
        b = np.array(market.benchmark)
        b[3] = np.nan
        risk.beta(market.returns, b)


def test_fewer_than_30_returns_are_refused(market) -> None:
    short = market.returns[:29]
    for function in (risk.historical_var, risk.parametric_var, risk.cornish_fisher_var):
        with pytest.raises(QuantInputError, match="29 rows; at least 30 are required"):
            function(short)
    with pytest.raises(QuantInputError, match="at least 30"):
        risk.portfolio_risk(short, market.weights, periods_per_year=PPY, risk_free_rate=0.0)
    assert risk.historical_var(market.returns[:30, 0]) > 0  # exactly 30 is accepted


def test_zero_variance_column_is_named(market) -> None:
    r = np.array(market.returns)
    r[:, 1] = 0.001
    with pytest.raises(QuantInputError, match=r"zero variance.*asset column 1"):
        risk.portfolio_risk(r, market.weights, periods_per_year=PPY, risk_free_rate=0.0)
    with pytest.raises(QuantInputError, match=r"zero variance \(column 1\)"):
        risk.sharpe_ratio(r, periods_per_year=PPY, risk_free_rate=0.0)
    with pytest.raises(QuantInputError, match=r"zero variance \(column 1\)"):
        risk.correlation_matrix(r)
    with pytest.raises(QuantInputError, match="zero variance"):
        risk.cornish_fisher_var(r[:, 1])
    with pytest.raises(QuantInputError, match="benchmark has zero variance"):
        risk.beta(market.returns, np.full(750, 0.01))


def test_perfectly_hedged_portfolio_is_refused(market) -> None:
    r = np.column_stack([market.returns[:, 0], -market.returns[:, 0]])
    with pytest.raises(QuantInputError, match=r"zero variance.*the portfolio"):
        risk.portfolio_risk(r, [0.5, 0.5], periods_per_year=PPY, risk_free_rate=0.0)
    with pytest.raises(QuantInputError, match="portfolio returns has zero variance"):
        risk.volatility_contributions(r, [0.5, 0.5], periods_per_year=PPY)


def test_ratios_without_downside_or_drawdown_are_refused() -> None:
    rising = np.linspace(0.001, 0.01, 40)
    with pytest.raises(QuantInputError, match="no return below the risk-free rate for the series"):
        risk.sortino_ratio(rising, periods_per_year=PPY, risk_free_rate=0.0)
    with pytest.raises(QuantInputError, match="no drawdown for the series"):
        risk.calmar_ratio(rising, periods_per_year=PPY)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([0.4, 0.3, 0.2, 0.2], "weights sum to 1.1, not 1"),
        ([0.5, 0.5], "weights has 2 entries but 4 are expected"),
        ([[0.25, 0.25], [0.25, 0.25]], "weights must be 1-D"),
        ([0.4, np.nan, 0.2, 0.1], "weights contains NaN at index 1"),
    ],
)
def test_bad_weights_are_refused(market, weights, message: str) -> None:
    with pytest.raises(QuantInputError, match=message):
        risk.portfolio_risk(market.returns, weights, periods_per_year=PPY, risk_free_rate=0.0)


def test_mismatched_shapes_and_bad_settings_are_refused(market) -> None:
    r, w = market.returns, market.weights
    with pytest.raises(QuantInputError, match="benchmark has 749 entries but 750 are expected"):
        risk.portfolio_risk(r, w, periods_per_year=PPY, risk_free_rate=0.0, benchmark=market.benchmark[1:])
    with pytest.raises(QuantInputError, match=r"returns must be 2-D \(time × assets\)"):
        risk.portfolio_risk(r[:, 0], [1.0], periods_per_year=PPY, risk_free_rate=0.0)
    with pytest.raises(QuantInputError, match="confidence must be below 1"):
        risk.historical_var(r, confidence=1.0)
    with pytest.raises(QuantInputError, match=r"confidence must be ≥ 0\.5"):
        risk.parametric_var(r, confidence=0.05)
    with pytest.raises(QuantInputError, match="horizon must be > 0"):
        risk.historical_cvar(r, horizon=0)
    with pytest.raises(QuantInputError, match="periods_per_year must be finite"):
        risk.volatility(r, periods_per_year=float("nan"))
    with pytest.raises(QuantInputError, match="risk_free_rate must be finite"):
        risk.sharpe_ratio(r, periods_per_year=PPY, risk_free_rate=float("inf"))


def test_sharpe_uses_the_geometric_per_period_risk_free_rate() -> None:
    sample = np.random.default_rng(9).normal(0.001, 0.02, size=400)
    excess = sample - per_period_rate(0.05, PPY)
    expected = excess.mean() / sample.std(ddof=1) * math.sqrt(PPY)
    assert risk.sharpe_ratio(sample, periods_per_year=PPY, risk_free_rate=0.05) == pytest.approx(expected, rel=1e-14)
