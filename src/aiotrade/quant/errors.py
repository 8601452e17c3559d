"""The one error of `aiotrade.quant` and the input checks that raise it.

Every public quant function validates its inputs with these checks and guarantees a finite result:
bad input raises `QuantInputError` naming the argument (and the row/column where it applies), never a
NaN or an infinity downstream.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Fewest return observations accepted by any *estimator* (volatility, VaR, ratios, drift, Kelly).
#: Thirty keeps the skew/kurtosis of Cornish-Fisher and the empirical tail from being pure noise.
MIN_OBSERVATIONS = 30

#: A per-period standard deviation at or below this is treated as zero variance (returns are fractions).
ZERO_STD = 1e-12


class QuantInputError(ValueError):
    """Input a quant function cannot give a finite, meaningful answer for; the message says why."""


def check_panel(
    values: ArrayLike, name: str, *, min_rows: int = MIN_OBSERVATIONS, positive: bool = False
) -> NDArray[np.float64]:
    """`values` as a finite float64 array of shape (time,) or (time, assets) with at least `min_rows` rows."""
    array = _as_float_array(values, name)
    if array.ndim not in (1, 2):
        raise QuantInputError(f"{name} must be 1-D (time) or 2-D (time × assets), got {array.ndim}-D")
    if array.ndim == 2 and array.shape[1] == 0:
        raise QuantInputError(f"{name} has no columns")
    if array.shape[0] < min_rows:
        raise QuantInputError(f"{name} has {array.shape[0]} rows; at least {min_rows} are required")
    check_finite(array, name)
    if positive and (array <= 0).any():
        bad = array <= 0
        value = array[tuple(np.argwhere(bad)[0])]
        raise QuantInputError(f"{name} must be strictly positive: {_where(bad)} is {value}")
    return array


def check_vector(values: ArrayLike, name: str, *, length: int | None = None) -> NDArray[np.float64]:
    """`values` as a finite 1-D float64 array, of exactly `length` entries when given."""
    array = _as_float_array(values, name)
    if array.ndim != 1:
        raise QuantInputError(f"{name} must be 1-D, got shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise QuantInputError(f"{name} has {array.shape[0]} entries but {length} are expected")
    if array.shape[0] == 0:
        raise QuantInputError(f"{name} is empty")
    check_finite(array, name)
    return array


def check_finite(array: NDArray[np.float64], name: str) -> None:
    """Raise if `array` holds a NaN or an infinity, naming the first offending row (and column)."""
    bad = ~np.isfinite(array)
    if bad.any():
        raise QuantInputError(f"{name} contains {_first(bad, array)} at {_where(bad)}")


def check_scalar(
    value: float,
    name: str,
    *,
    positive: bool = False,
    non_negative: bool = False,
    lower: float | None = None,
    upper: float | None = None,
) -> float:
    """`value` as a finite float, optionally > 0, ≥ 0, or within the closed range [lower, upper]."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise QuantInputError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise QuantInputError(f"{name} must be finite, got {number}")
    if positive and number <= 0:
        raise QuantInputError(f"{name} must be > 0, got {number}")
    if non_negative and number < 0:
        raise QuantInputError(f"{name} must be ≥ 0, got {number}")
    if lower is not None and number < lower:
        raise QuantInputError(f"{name} must be ≥ {lower}, got {number}")
    if upper is not None and number > upper:
        raise QuantInputError(f"{name} must be ≤ {upper}, got {number}")
    return number


def check_open_unit(value: float, name: str) -> float:
    """`value` as a float strictly between 0 and 1 (a confidence level or a probability parameter)."""
    number = check_scalar(value, name)
    if not 0.0 < number < 1.0:
        raise QuantInputError(f"{name} must be strictly between 0 and 1, got {number}")
    return number


def check_count(value: int, name: str, *, minimum: int, maximum: int) -> int:
    """`value` as an int within [minimum, maximum] (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise QuantInputError(f"{name} must be an integer, got {value!r}")
    if not minimum <= value <= maximum:
        raise QuantInputError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return int(value)


def check_nonzero_std(std: NDArray[np.float64] | float, name: str) -> None:
    """Raise if any column's per-period standard deviation is (numerically) zero, naming the column."""
    std_array = np.atleast_1d(np.asarray(std, dtype=np.float64))
    flat = std_array <= ZERO_STD
    if flat.any():
        where = f" (column {int(np.flatnonzero(flat)[0])})" if std_array.size > 1 else ""
        raise QuantInputError(f"{name} has zero variance{where}; the statistic is undefined")


def ensure_finite(result: float | NDArray[np.float64], what: str) -> None:
    """Last guard before returning: a non-finite result means the inputs overflowed the arithmetic."""
    if not np.all(np.isfinite(result)):
        raise QuantInputError(f"{what} is not finite for these inputs (overflow or degenerate data)")


def _as_float_array(values: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise QuantInputError(f"{name} must be numeric: {exc}") from exc


def _where(mask: NDArray[np.bool_]) -> str:
    index = np.argwhere(mask)[0]
    if mask.ndim == 2:
        return f"row {int(index[0])}, column {int(index[1])}"
    return f"index {int(index[0])}"


def _first(mask: NDArray[np.bool_], array: NDArray[np.float64]) -> str:
    value = array[tuple(np.argwhere(mask)[0])]
    return "NaN" if np.isnan(value) else "infinity"
