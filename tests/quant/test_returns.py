"""Returns from prices, timeframes and annualisation, against hand values and empyrical."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pytest

from aiotrade.quant.errors import QuantInputError
from aiotrade.quant.returns import (
    annualize_volatility,
    cagr,
    log_returns,
    per_period_rate,
    periods_per_year,
    simple_returns,
)


def test_simple_and_log_returns_of_a_price_series_match_hand_values() -> None:
    prices = np.array([100.0, 110.0, 99.0, 99.0])
    np.testing.assert_allclose(simple_returns(prices), [0.1, -0.1, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(log_returns(prices), [math.log(1.1), math.log(0.9), 0.0], rtol=0, atol=1e-15)


def test_returns_of_a_panel_are_per_column_and_match_empyrical(market) -> None:
    prices = 100.0 * np.cumprod(1.0 + market.returns, axis=0)
    simple = simple_returns(prices)
    assert simple.shape == (749, 4)
    np.testing.assert_allclose(simple, market.returns[1:], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(simple, empyrical.simple_returns(prices), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(log_returns(prices), np.log1p(market.returns[1:]), rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize(
    ("timeframe", "expected"),
    [
        ("1m", 525_600.0),
        ("5m", 105_120.0),
        ("15m", 35_040.0),
        ("1h", 8_760.0),
        ("4h", 2_190.0),
        ("1d", 365.0),
        ("3d", 365.0 / 3.0),
        ("1w", 365.0 / 7.0),
        ("1M", 12.0),
        ("30s", 1_051_200.0),
    ],
)
def test_periods_per_year_counts_bars_in_a_365_day_year(timeframe: str, expected: float) -> None:
    assert periods_per_year(timeframe) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("timeframe", ["", "1", "h", "0h", "1H", "1.5h", "-1d", "1 d", "1x", None])
def test_periods_per_year_rejects_non_ccxt_timeframes(timeframe) -> None:
    with pytest.raises(QuantInputError, match="timeframe"):
        periods_per_year(timeframe)


def test_annual_risk_free_rate_converts_geometrically_to_one_period() -> None:
    daily = per_period_rate(0.04, 365.0)
    assert daily == pytest.approx(1.04 ** (1 / 365) - 1, rel=1e-12)
    assert (1 + daily) ** 365 == pytest.approx(1.04, rel=1e-13)
    assert per_period_rate(0.0, 8760.0) == 0.0


def test_volatility_annualises_by_square_root_of_periods() -> None:
    assert annualize_volatility(0.02, 365.0) == pytest.approx(0.02 * math.sqrt(365.0), rel=1e-15)


def test_cagr_matches_empyrical_annual_return(market) -> None:
    ours = cagr(market.returns, periods_per_year=365.0)
    reference = np.array([empyrical.annual_return(column, annualization=365) for column in market.returns.T])
    np.testing.assert_allclose(ours, reference, rtol=1e-10)
    assert cagr(market.returns[:, 0], periods_per_year=365.0) == pytest.approx(reference[0], rel=1e-10)


def test_cagr_of_a_total_loss_is_minus_one() -> None:
    returns = np.full(40, 0.01)
    returns[10] = -1.0
    assert cagr(returns, periods_per_year=365.0) == -1.0


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ([100.0, float("nan"), 101.0], "prices contains NaN at index 1"),
        ([100.0, float("inf"), 101.0], "prices contains infinity at index 1"),
        ([100.0, 0.0, 101.0], "strictly positive: index 1 is 0.0"),
        ([100.0, -5.0], "strictly positive: index 1 is -5.0"),
        ([100.0], "1 rows; at least 2"),
        ([[[1.0, 2.0]]], "must be 1-D .* or 2-D"),
        (["a", "b"], "must be numeric"),
    ],
)
def test_bad_prices_raise_a_quant_input_error_naming_the_problem(prices, message: str) -> None:
    with pytest.raises(QuantInputError, match=message):
        simple_returns(prices)
    with pytest.raises(QuantInputError, match=message):
        log_returns(prices)


def test_bad_price_in_a_panel_names_row_and_column() -> None:
    prices = np.full((5, 3), 100.0)
    prices[3, 2] = np.nan
    with pytest.raises(QuantInputError, match="row 3, column 2"):
        simple_returns(prices)


def test_quant_input_error_is_a_value_error() -> None:
    assert issubclass(QuantInputError, ValueError)


def test_cagr_rejects_returns_below_minus_one_and_short_series() -> None:
    returns = np.full(40, 0.01)
    returns[7] = -1.5
    with pytest.raises(QuantInputError, match="below −100 % at row 7"):
        cagr(returns, periods_per_year=365.0)
    with pytest.raises(QuantInputError, match="29 rows; at least 30"):
        cagr(np.full(29, 0.01), periods_per_year=365.0)
    with pytest.raises(QuantInputError, match="periods_per_year must be > 0"):
        cagr(np.full(40, 0.01), periods_per_year=0.0)
