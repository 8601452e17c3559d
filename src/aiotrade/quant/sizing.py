"""Position sizing: how much to buy or sell, as a float quantity or a fraction of equity.

Results are unrounded floats; the service layer rounds *down* to the market's lot step with Decimal and caps
by limits and balance. Conventions:

- Fees: a fee rate f is charged on the entry notional (q × entry) and again on the exit notional
  (q × exit), so stopping out costs q (|entry − stop| + f (entry + stop)).
- Fixed-fractional: q = equity × risk_fraction / (|entry − stop| + f (entry + stop)); the loss at the stop,
  fees included, is exactly risk_fraction of equity.
- ATR (Wilder): true range TR_t = max(h_t − l_t, |h_t − c_{t−1}|, |l_t − c_{t−1}|) for t ≥ 1; the first ATR
  is the mean of TR_1..TR_n (n = period), then ATR_t = ((n − 1) ATR_{t−1} + TR_t) / n (smoothing 1/n, as
  TA-Lib). An ATR stop sits `atr_multiple` × ATR from the entry and is sized fixed-fractionally.
- Volatility target: notional = equity × min(target_volatility / asset_volatility, max_leverage), both
  volatilities annualised the same way; q = notional / price.
- Kelly: from a win rate p and payoff ratio b (average win / average loss), f* = p − (1 − p) / b; from
  per-period simple returns, f* = (μ − rf_p) / σ² (σ with ddof = 1, the continuous-time growth-optimal
  fraction). The result is clip(multiplier × f*, 0, cap): half-Kelly by default, never short, never above
  `cap`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aiotrade.quant.errors import (
    MIN_OBSERVATIONS,
    QuantInputError,
    check_count,
    check_finite,
    check_nonzero_std,
    check_open_unit,
    check_scalar,
    check_vector,
    ensure_finite,
)
from aiotrade.quant.probability import Side

MAX_FEE_RATE = 0.1


def fixed_fractional_size(
    equity: float, risk_fraction: float, entry_price: float, stop_price: float, *, fee_rate: float = 0.0
) -> float:
    """Quantity whose loss at the stop, entry and exit fees included, is `risk_fraction` × `equity`.

    The side follows from the stop: below the entry for a long, above for a short.
    """
    capital = check_scalar(equity, "equity", positive=True)
    risk = _risk_fraction(risk_fraction)
    entry = check_scalar(entry_price, "entry_price", positive=True)
    stop = check_scalar(stop_price, "stop_price", positive=True)
    fee = _fee(fee_rate)
    if stop == entry:
        raise QuantInputError("stop_price equals entry_price: the risk per unit is only fees, size undefined")
    loss_per_unit = abs(entry - stop) + fee * (entry + stop)
    return _out(capital * risk / loss_per_unit, "position size")


def atr_stop_size(
    equity: float,
    risk_fraction: float,
    entry_price: float,
    atr: float,
    *,
    side: Side,
    atr_multiple: float = 2.0,
    fee_rate: float = 0.0,
) -> float:
    """Fixed-fractional quantity with the stop `atr_multiple` × `atr` from the entry, on the losing side."""
    entry = check_scalar(entry_price, "entry_price", positive=True)
    multiple = check_scalar(atr_multiple, "atr_multiple", positive=True)
    distance = multiple * check_scalar(atr, "atr", positive=True)
    if side == "long":
        stop = entry - distance
        if stop <= 0:
            raise QuantInputError(f"the ATR stop {stop} of a long is not above zero; lower atr_multiple")
    elif side == "short":
        stop = entry + distance
    else:
        raise QuantInputError(f"side must be 'long' or 'short', got {side!r}")
    return fixed_fractional_size(equity, risk_fraction, entry, stop, fee_rate=fee_rate)


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> NDArray[np.float64]:
    """True range of bars 1..n−1 (bar 0 has no previous close): length n − 1."""
    h, lo, c = _bars(high, low, close, min_bars=2)
    previous = c[:-1]
    return np.maximum.reduce([h[1:] - lo[1:], np.abs(h[1:] - previous), np.abs(lo[1:] - previous)])


def average_true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike, *, period: int = 14) -> NDArray[np.float64]:
    """Wilder's ATR for bars `period`..n−1 (length n − period); the last entry is the current ATR.

    Needs at least period + 1 bars; high ≥ close ≥ low > 0 on every bar.
    """
    n = check_count(period, "period", minimum=1, maximum=10_000)
    h, lo, c = _bars(high, low, close, min_bars=n + 1)
    tr = true_range(h, lo, c)
    atr = np.empty(tr.shape[0] - n + 1)
    atr[0] = tr[:n].mean()
    # Wilder's smoothing is a first-order recursion; a plain loop over floats is clear and O(n).
    value, keep = float(atr[0]), (n - 1) / n
    for i, tr_value in enumerate(tr[n:].tolist(), start=1):
        value = keep * value + tr_value / n
        atr[i] = value
    return atr


def volatility_target_size(
    equity: float,
    price: float,
    *,
    target_volatility: float,
    asset_volatility: float,
    max_leverage: float = 1.0,
) -> float:
    """Quantity whose notional is equity × min(target / asset volatility, max_leverage), divided by price."""
    capital = check_scalar(equity, "equity", positive=True)
    unit_price = check_scalar(price, "price", positive=True)
    target = check_scalar(target_volatility, "target_volatility", positive=True)
    vol = check_scalar(asset_volatility, "asset_volatility", positive=True)
    leverage = min(target / vol, check_scalar(max_leverage, "max_leverage", positive=True))
    return _out(capital * leverage / unit_price, "position size")


def kelly_fraction(win_rate: float, payoff_ratio: float, *, multiplier: float = 0.5, cap: float = 1.0) -> float:
    """clip(multiplier × (p − (1 − p) / b), 0, cap) for win rate p and payoff ratio b = avg win / avg loss."""
    p = check_open_unit(win_rate, "win_rate")
    b = check_scalar(payoff_ratio, "payoff_ratio", positive=True)
    return _capped(p - (1.0 - p) / b, multiplier, cap)


def kelly_fraction_from_returns(
    returns: ArrayLike,
    *,
    risk_free_rate_per_period: float = 0.0,
    multiplier: float = 0.5,
    cap: float = 1.0,
) -> float:
    """clip(multiplier × (μ − rf_p) / σ², 0, cap) from ≥ 30 per-period simple returns (σ with ddof = 1)."""
    r = check_vector(returns, "returns")
    if r.shape[0] < MIN_OBSERVATIONS:
        raise QuantInputError(f"returns has {r.shape[0]} entries; at least {MIN_OBSERVATIONS} are required")
    rf = check_scalar(risk_free_rate_per_period, "risk_free_rate_per_period", lower=-0.99)
    sigma = float(r.std(ddof=1))
    check_nonzero_std(sigma, "returns")
    return _capped((float(r.mean()) - rf) / (sigma * sigma), multiplier, cap)


def _capped(full_kelly: float, multiplier: float, cap: float) -> float:
    m = check_scalar(multiplier, "multiplier", positive=True, upper=1.0)
    limit = check_scalar(cap, "cap", non_negative=True)
    return _out(min(max(m * full_kelly, 0.0), limit), "Kelly fraction")


def _bars(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, *, min_bars: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    h = check_vector(high, "high")
    lo = check_vector(low, "low", length=h.shape[0])
    c = check_vector(close, "close", length=h.shape[0])
    if h.shape[0] < min_bars:
        raise QuantInputError(f"{h.shape[0]} bars given; at least {min_bars} are required")
    for values, name in ((h, "high"), (lo, "low"), (c, "close")):
        check_finite(values, name)
        if (values <= 0).any():
            raise QuantInputError(f"{name} must be > 0: index {int(np.flatnonzero(values <= 0)[0])}")
    inconsistent = (lo > h) | (c > h) | (c < lo)
    if inconsistent.any():
        raise QuantInputError(f"bar {int(np.flatnonzero(inconsistent)[0])} violates low ≤ close ≤ high")
    return h, lo, c


def _risk_fraction(risk_fraction: float) -> float:
    return check_scalar(risk_fraction, "risk_fraction", positive=True, upper=1.0)


def _fee(fee_rate: float) -> float:
    return check_scalar(fee_rate, "fee_rate", lower=0.0, upper=MAX_FEE_RATE)


def _out(value: float, what: str) -> float:
    ensure_finite(value, what)
    return float(value)
