"""Returns from close prices, and the annualisation conventions every other quant module uses.

Conventions (shared by `risk`, `probability` and `sizing`):

- Arrays are time on axis 0: shape (time,) for one series or (time, assets) for a panel.
- Simple return r_t = p_t / p_{t-1} − 1; log return ℓ_t = ln(p_t / p_{t-1}). Both have one row fewer than
  the prices. Prices must be finite and strictly positive, at least 2 rows.
- A year is 365 days of 24 h (crypto trades every day): daily bars → 365 periods, '1h' → 8760,
  '1w' → 365/7, '1M' → 12, '1y' → 1.
- Volatility annualises by √periods_per_year; a mean return by × periods_per_year; a compounded growth
  rate (CAGR) by (Π(1 + r))^(periods_per_year / n) − 1.
- An annual risk-free rate converts to one period geometrically: (1 + rf)^(1 / periods_per_year) − 1.
"""

from __future__ import annotations

import math
import re

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aiotrade.quant.errors import (
    MIN_OBSERVATIONS,
    QuantInputError,
    check_panel,
    check_scalar,
    ensure_finite,
)

DAYS_PER_YEAR = 365.0

_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_TIMEFRAME = re.compile(r"^([1-9][0-9]*)([smhdwMy])$")


def simple_returns(prices: ArrayLike) -> NDArray[np.float64]:
    """Simple returns p_t / p_{t-1} − 1 along axis 0; shape (time − 1,) or (time − 1, assets)."""
    p = check_panel(prices, "prices", min_rows=2, positive=True)
    return p[1:] / p[:-1] - 1.0


def log_returns(prices: ArrayLike) -> NDArray[np.float64]:
    """Log returns ln(p_t / p_{t-1}) along axis 0; shape (time − 1,) or (time − 1, assets)."""
    p = check_panel(prices, "prices", min_rows=2, positive=True)
    return np.log(p[1:] / p[:-1])


def periods_per_year(timeframe: str) -> float:
    """Bars per 365-day year for a ccxt-style timeframe ('1m', '5m', '15m', '1h', '4h', '1d', '1w', '1M')."""
    match = _TIMEFRAME.match(timeframe) if isinstance(timeframe, str) else None
    if match is None:
        raise QuantInputError(f"timeframe {timeframe!r} is not a ccxt timeframe like '1m', '4h', '1d', '1w'")
    count, unit = int(match.group(1)), match.group(2)
    if unit == "M":
        return 12.0 / count
    if unit == "y":
        return 1.0 / count
    return DAYS_PER_YEAR * 86400.0 / (count * _SECONDS[unit])


def per_period_rate(annual_rate: float, periods_per_year: float) -> float:
    """An annual rate as a per-period rate, geometrically: (1 + annual_rate)^(1 / periods_per_year) − 1."""
    rate = check_scalar(annual_rate, "risk_free_rate", lower=-0.99)
    periods = check_scalar(periods_per_year, "periods_per_year", positive=True)
    return math.expm1(math.log1p(rate) / periods)


def annualize_volatility(
    per_period_volatility: float | NDArray[np.float64], periods_per_year: float
) -> float | NDArray[np.float64]:
    """Per-period standard deviation × √periods_per_year."""
    periods = check_scalar(periods_per_year, "periods_per_year", positive=True)
    return per_period_volatility * math.sqrt(periods)


def cagr(returns: ArrayLike, *, periods_per_year: float) -> float | NDArray[np.float64]:
    """Compound annual growth rate of simple returns: (Π(1 + r))^(periods_per_year / n) − 1.

    Needs at least `MIN_OBSERVATIONS` returns, each ≥ −1 (a −100 % return is a total loss: CAGR −1).
    Returns a float for a 1-D series, an array per column for a panel.
    """
    r = check_panel(returns, "returns", min_rows=MIN_OBSERVATIONS)
    periods = check_scalar(periods_per_year, "periods_per_year", positive=True)
    check_total_loss_floor(r)
    # Sum of log1p instead of a product: no overflow on long series; a −100 % return gives −inf → −1.
    with np.errstate(divide="ignore"):
        log_growth = np.log1p(r).sum(axis=0)
    result = np.expm1(log_growth * (periods / r.shape[0]))
    ensure_finite(result, "CAGR")
    return _scalar_or_array(result)


def check_total_loss_floor(returns: NDArray[np.float64]) -> None:
    """Compounding needs every simple return ≥ −1 (a price cannot fall below zero)."""
    below = returns < -1.0
    if below.any():
        index = np.argwhere(below)[0]
        where = f"row {int(index[0])}" + (f", column {int(index[1])}" if returns.ndim == 2 else "")
        raise QuantInputError(f"returns has a simple return below −100 % at {where}")


def _scalar_or_array(values: NDArray[np.float64]) -> float | NDArray[np.float64]:
    return float(values) if np.ndim(values) == 0 else values
