"""Position sizing against hand-computed cases, pandas' Wilder smoothing and quantstats' Kelly.

Sizes are unrounded floats: lot steps are the service layer's business, so no case here depends on one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import quantstats.stats as qs

from aiotrade.quant import sizing
from aiotrade.quant.errors import QuantInputError


def test_fixed_fractional_long_loses_exactly_the_risk_budget_at_the_stop_fees_included() -> None:
    # 1 % of 10,000 = 100 at risk; per unit: 5 (price) + 0.001 × (100 + 95) (fees) = 5.195.
    quantity = sizing.fixed_fractional_size(10_000.0, 0.01, 100.0, 95.0, fee_rate=0.001)
    assert quantity == pytest.approx(100.0 / 5.195, rel=1e-15)
    loss = quantity * (100.0 - 95.0) + 0.001 * quantity * 100.0 + 0.001 * quantity * 95.0
    assert loss == pytest.approx(100.0, rel=1e-14)


def test_fixed_fractional_short_and_fee_free_cases() -> None:
    # Short: stop above entry; per unit 5 + 0.001 × (100 + 105) = 5.205.
    assert sizing.fixed_fractional_size(10_000.0, 0.01, 100.0, 105.0, fee_rate=0.001) == pytest.approx(
        100.0 / 5.205, rel=1e-15
    )
    assert sizing.fixed_fractional_size(2_500.0, 0.02, 40_000.0, 39_000.0) == pytest.approx(0.05, rel=1e-15)


def test_fees_shrink_the_position() -> None:
    without = sizing.fixed_fractional_size(10_000.0, 0.01, 100.0, 99.0)
    with_fees = sizing.fixed_fractional_size(10_000.0, 0.01, 100.0, 99.0, fee_rate=0.001)
    assert without == pytest.approx(100.0, rel=1e-15)
    assert with_fees == pytest.approx(100.0 / 1.199, rel=1e-15)


def test_true_range_uses_the_previous_close_for_gaps() -> None:
    high = np.array([10.0, 11.0, 13.0, 12.0])
    low = np.array([9.0, 10.0, 12.0, 9.0])
    close = np.array([9.5, 10.5, 12.5, 10.0])
    # bar 1: max(1, |11 − 9.5|, |10 − 9.5|) = 1.5; bar 2 gaps up: |13 − 10.5| = 2.5;
    # bar 3 falls from the previous close 12.5: |9 − 12.5| = 3.5 beats its own range 12 − 9 = 3.
    np.testing.assert_allclose(sizing.true_range(high, low, close), [1.5, 2.5, 3.5], rtol=0, atol=1e-15)


def test_wilder_atr_of_a_hand_computed_series() -> None:
    high = np.array([10.0, 11.0, 13.0, 12.0, 12.5, 12.0])
    low = np.array([9.0, 10.0, 12.0, 9.0, 11.0, 11.5])
    close = np.array([9.5, 10.5, 12.5, 10.0, 12.0, 11.8])
    # TR = [1.5, 2.5, 3.5, 2.5, 0.5]; first ATR(3) = mean(1.5, 2.5, 3.5) = 2.5 at bar 3,
    # then (2 × 2.5 + 2.5) / 3 = 2.5 at bar 4 and (2 × 2.5 + 0.5) / 3 = 11/6 at bar 5.
    atr = sizing.average_true_range(high, low, close, period=3)
    np.testing.assert_allclose(atr, [2.5, 2.5, 11 / 6], rtol=1e-15)
    # A simple moving average of TR would give (3.5 + 2.5 + 0.5) / 3 at bar 5 instead: not Wilder.
    assert atr[-1] != pytest.approx(6.5 / 3)


def test_wilder_atr_matches_pandas_ewm_with_alpha_one_over_period(market) -> None:
    close = 100.0 * np.cumprod(1.0 + market.returns[:, 0])
    rng = np.random.default_rng(3)
    high = close * (1.0 + rng.uniform(0.0, 0.02, close.size))
    low = close * (1.0 - rng.uniform(0.0, 0.02, close.size))
    period = 14
    atr = sizing.average_true_range(high, low, close, period=period)
    assert atr.shape == (close.size - period,)
    # Reference: pandas TR, seeded with the SMA of the first `period` TRs, then ewm(alpha=1/n, adjust=False),
    # which is exactly Wilder's ATR_t = ATR_{t−1} + (TR_t − ATR_{t−1}) / n.
    frame = pd.DataFrame({"h": high, "l": low, "c": close})
    previous = frame["c"].shift(1)
    tr = pd.concat([frame["h"] - frame["l"], (frame["h"] - previous).abs(), (frame["l"] - previous).abs()], axis=1).max(
        axis=1
    )[1:]
    seeded = tr.iloc[period - 1 :].copy()
    seeded.iloc[0] = tr.iloc[:period].mean()
    reference = seeded.ewm(alpha=1 / period, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(atr, reference, rtol=1e-12)


def test_atr_stop_size_places_the_stop_multiples_of_atr_away() -> None:
    # ATR 2.5 × 2 = 5 below a long entry of 100: same as a fixed-fractional stop at 95.
    long = sizing.atr_stop_size(10_000.0, 0.01, 100.0, 2.5, side="long", fee_rate=0.001)
    assert long == pytest.approx(sizing.fixed_fractional_size(10_000.0, 0.01, 100.0, 95.0, fee_rate=0.001))
    short = sizing.atr_stop_size(10_000.0, 0.01, 100.0, 2.5, side="short", atr_multiple=3.0, fee_rate=0.001)
    assert short == pytest.approx(100.0 / (7.5 + 0.001 * 207.5), rel=1e-15)


def test_volatility_target_scales_notional_and_caps_leverage() -> None:
    # 20 % target / 80 % asset vol → a quarter of 10,000 = 2,500 notional = 50 units at 50.
    assert sizing.volatility_target_size(10_000.0, 50.0, target_volatility=0.2, asset_volatility=0.8) == pytest.approx(
        50.0, rel=1e-15
    )
    # 20 % / 10 % asks for 2× leverage; the default cap is 1× equity.
    assert sizing.volatility_target_size(10_000.0, 50.0, target_volatility=0.2, asset_volatility=0.1) == pytest.approx(
        200.0, rel=1e-15
    )
    assert sizing.volatility_target_size(
        10_000.0, 50.0, target_volatility=0.2, asset_volatility=0.1, max_leverage=3.0
    ) == pytest.approx(400.0, rel=1e-15)


def test_kelly_from_win_rate_and_payoff_ratio_is_fractional_and_capped() -> None:
    # p = 0.6, b = 1: f* = 0.6 − 0.4 = 0.2; half-Kelly 0.1.
    assert sizing.kelly_fraction(0.6, 1.0) == pytest.approx(0.1, rel=1e-14)
    assert sizing.kelly_fraction(0.6, 1.0, multiplier=1.0) == pytest.approx(0.2, rel=1e-14)
    # p = 0.5, b = 2: f* = 0.5 − 0.25 = 0.25.
    assert sizing.kelly_fraction(0.5, 2.0, multiplier=1.0) == pytest.approx(0.25, rel=1e-14)
    # No edge: never a negative (short) fraction.
    assert sizing.kelly_fraction(0.4, 1.0) == 0.0
    # p = 0.9, b = 10: f* = 0.89, capped at 0.5.
    assert sizing.kelly_fraction(0.9, 10.0, multiplier=1.0, cap=0.5) == 0.5


def test_kelly_from_win_rate_matches_quantstats_kelly_criterion(market) -> None:
    for column in market.returns.T:
        series = pd.Series(column)
        wins, losses = column[column > 0], column[column < 0]
        win_rate = wins.size / (wins.size + losses.size)
        payoff = wins.mean() / abs(losses.mean())
        ours = sizing.kelly_fraction(win_rate, payoff, multiplier=1.0, cap=1.0)
        reference = qs.kelly_criterion(series, prepare_returns=False)
        assert ours == pytest.approx(max(reference, 0.0), rel=1e-12, abs=1e-15)


def test_kelly_from_returns_is_mean_over_variance() -> None:
    # Alternating +2 % / −1 %: μ = 0.005, σ² (ddof 1) = 40 × 0.015² / 39, f* = 0.005 / σ² = 21.666….
    returns = np.tile([0.02, -0.01], 20)
    full = 0.005 / (40 * 0.015**2 / 39)
    assert sizing.kelly_fraction_from_returns(returns, multiplier=1.0, cap=100.0) == pytest.approx(full, rel=1e-12)
    assert sizing.kelly_fraction_from_returns(returns, cap=100.0) == pytest.approx(full / 2, rel=1e-12)
    assert sizing.kelly_fraction_from_returns(returns) == 1.0  # default cap: no leverage
    # A risk-free rate per period is subtracted from the mean first.
    assert sizing.kelly_fraction_from_returns(
        returns, risk_free_rate_per_period=0.001, multiplier=1.0, cap=100.0
    ) == pytest.approx(0.004 / (40 * 0.015**2 / 39), rel=1e-12)
    assert sizing.kelly_fraction_from_returns(-returns) == 0.0


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((0.0, 0.01, 100.0, 95.0), {}, "equity must be > 0"),
        ((10_000.0, 0.0, 100.0, 95.0), {}, "risk_fraction must be > 0"),
        ((10_000.0, 1.5, 100.0, 95.0), {}, "risk_fraction must be ≤ 1.0"),
        ((10_000.0, 0.01, float("nan"), 95.0), {}, "entry_price must be finite"),
        ((10_000.0, 0.01, 100.0, 100.0), {}, "stop_price equals entry_price"),
        ((10_000.0, 0.01, 100.0, -1.0), {}, "stop_price must be > 0"),
        ((10_000.0, 0.01, 100.0, 95.0), {"fee_rate": -0.001}, "fee_rate must be ≥ 0.0"),
        ((10_000.0, 0.01, 100.0, 95.0), {"fee_rate": 0.5}, "fee_rate must be ≤ 0.1"),
    ],
)
def test_bad_fixed_fractional_inputs_are_refused(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(QuantInputError, match=message):
        sizing.fixed_fractional_size(*args, **kwargs)


def test_bad_bars_are_refused() -> None:
    high, low, close = np.array([10.0, 11.0, 12.0]), np.array([9.0, 10.0, 11.0]), np.array([9.5, 10.5, 11.5])
    with pytest.raises(QuantInputError, match="low has 2 entries but 3 are expected"):
        sizing.true_range(high, low[:2], close)
    with pytest.raises(QuantInputError, match="3 bars given; at least 4 are required"):
        sizing.average_true_range(high, low, close, period=3)
    with pytest.raises(QuantInputError, match=r"bar 1 violates low ≤ close ≤ high"):
        sizing.true_range(high, low, np.array([9.5, 11.5, 11.5]))
    with pytest.raises(QuantInputError, match="close contains NaN at index 2"):
        sizing.true_range(high, low, np.array([9.5, 10.5, np.nan]))
    with pytest.raises(QuantInputError, match="low must be > 0: index 0"):
        sizing.true_range(high, np.array([0.0, 10.0, 11.0]), close)
    with pytest.raises(QuantInputError, match="period must be between 1 and 10000"):
        sizing.average_true_range(high, low, close, period=0)


def test_bad_atr_volatility_and_kelly_inputs_are_refused() -> None:
    with pytest.raises(QuantInputError, match=r"ATR stop .* of a long is not above zero"):
        sizing.atr_stop_size(10_000.0, 0.01, 100.0, 60.0, side="long")
    with pytest.raises(QuantInputError, match="side must be 'long' or 'short'"):
        sizing.atr_stop_size(10_000.0, 0.01, 100.0, 2.0, side="sell")  # type: ignore[arg-type]
    with pytest.raises(QuantInputError, match="asset_volatility must be > 0"):
        sizing.volatility_target_size(10_000.0, 50.0, target_volatility=0.2, asset_volatility=0.0)
    with pytest.raises(QuantInputError, match="win_rate must be strictly between 0 and 1"):
        sizing.kelly_fraction(1.0, 2.0)
    with pytest.raises(QuantInputError, match="payoff_ratio must be > 0"):
        sizing.kelly_fraction(0.5, 0.0)
    with pytest.raises(QuantInputError, match=r"multiplier must be ≤ 1\.0"):
        sizing.kelly_fraction(0.6, 1.0, multiplier=2.0)
    with pytest.raises(QuantInputError, match="returns has zero variance"):
        sizing.kelly_fraction_from_returns(np.full(40, 0.001))
    with pytest.raises(QuantInputError, match="29 entries; at least 30"):
        sizing.kelly_fraction_from_returns(np.tile([0.02, -0.01], 15)[:29])
