"""Portfolio allocation: seven weighting methods under long-only, per-asset bounds and a cash buffer.

Conventions, recorded on every result:
- `returns` are simple per-period returns, one row per bar (any order), one column per asset.
- Expected returns are the arithmetic mean × periods_per_year. The covariance is the sample covariance
  (ddof=1) × periods_per_year, or Ledoit-Wolf shrinkage toward a scaled identity (scikit-learn's
  estimator, on the ddof=0 covariance) × periods_per_year.
- Weights sum to the budget 1 - cash_buffer; the cash buffer earns the risk-free rate, so the portfolio's
  expected return is μ'w + rf·cash and its Sharpe ratio (μ - rf)'w / sqrt(w'Σw).
- Default bounds: [0, 1] per asset when long-only, [-1, 1] otherwise.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import numpy as np

from aiotrade.quant.allocation_errors import AllocationConvergenceError, AllocationInputError
from aiotrade.quant.allocation_hrp import hrp_weights
from aiotrade.quant.allocation_inputs import (
    MIN_OBSERVATIONS,
    estimate_covariance,
    minimum_observations,
    require_positive_definite,
    validated_returns,
)
from aiotrade.quant.allocation_solvers import (
    equal_risk_contribution,
    max_sharpe,
    min_variance,
    project_onto_budget_box,
    scale_into_budget_box,
)

__all__ = [
    "MIN_OBSERVATIONS",
    "AllocationConstraints",
    "AllocationConvergenceError",
    "AllocationInputError",
    "AllocationMethod",
    "AllocationResult",
    "CovarianceEstimator",
    "calculate_allocations",
    "minimum_observations",
]

_FEASIBILITY_TOL = 1e-12
_E = TypeVar("_E", bound=StrEnum)


class AllocationMethod(StrEnum):
    EQUAL_WEIGHT = "equal_weight"
    INVERSE_VOLATILITY = "inverse_volatility"
    MIN_VARIANCE = "min_variance"
    MAX_SHARPE = "max_sharpe"
    RISK_PARITY = "risk_parity"
    HRP = "hrp"
    SIGNAL_WEIGHTED = "signal_weighted"


class CovarianceEstimator(StrEnum):
    SAMPLE = "sample"
    LEDOIT_WOLF = "ledoit_wolf"


_METHOD_CONVENTIONS: dict[AllocationMethod, str] = {
    AllocationMethod.EQUAL_WEIGHT: "equal weights",
    AllocationMethod.INVERSE_VOLATILITY: "weights proportional to 1/σ_i (volatility, not variance)",
    AllocationMethod.MIN_VARIANCE: "exact minimiser of w'Σw over the constraint set (active-set QP)",
    AllocationMethod.MAX_SHARPE: "exact maximiser of (μ - rf)'w / sqrt(w'Σw) over the constraint set",
    AllocationMethod.RISK_PARITY: (
        "equal risk contributions w_i(Σw)_i, long-only (Spinu's convex form, Newton); exact while no bound binds"
    ),
    AllocationMethod.HRP: (
        "López de Prado HRP: single linkage on d=sqrt((1-ρ)/2), quasi-diagonal order, bisection in halves"
    ),
    AllocationMethod.SIGNAL_WEIGHTED: (
        "weights proportional to the signals; long-only: scores <= 0 get no weight; with shorting: "
        "signals scaled to a net sum equal to the budget (their sum must be positive), then projected "
        "onto the bounds"
    ),
}
_HEURISTIC_BOUNDS = "bounds applied by clip(c·w) with c fitting the budget, so unclipped ratios are kept"


@dataclass(frozen=True, slots=True)
class AllocationConstraints:
    """What an allocation must satisfy. Validated at construction; per-asset lengths at allocation."""

    long_only: bool = True
    min_weight: float | Sequence[float] | None = None  # None: 0 if long-only, else -1
    max_weight: float | Sequence[float] | None = None  # None: 1
    cash_buffer: float = 0.0  # fraction held back; weights sum to 1 - cash_buffer
    risk_free_rate: float = 0.0  # annual, simple
    periods_per_year: float = 365.0  # crypto trades every day

    def __post_init__(self) -> None:
        for name in ("min_weight", "max_weight"):
            value = getattr(self, name)
            if value is not None:  # normalise to float or tuple so the config stays hashable
                normal = float(value) if np.ndim(value) == 0 else tuple(float(v) for v in value)
                object.__setattr__(self, name, normal)
            _require_finite(name, getattr(self, name))
        _require_finite("cash_buffer", self.cash_buffer)
        _require_finite("risk_free_rate", self.risk_free_rate)
        _require_finite("periods_per_year", self.periods_per_year)
        if not 0.0 <= self.cash_buffer < 1.0:
            raise AllocationInputError(f"cash_buffer must be in [0, 1), got {self.cash_buffer}")
        if self.periods_per_year <= 0:
            raise AllocationInputError(f"periods_per_year must be positive, got {self.periods_per_year}")
        if self.long_only and self.min_weight is not None and np.any(np.asarray(self.min_weight) < 0):
            raise AllocationInputError("min_weight must be >= 0 when long_only is set")

    @property
    def budget(self) -> float:
        return 1.0 - self.cash_buffer

    def bounds(self, n_assets: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-asset (lo, hi) arrays; raises AllocationInputError if no weights can satisfy them."""
        lo = _broadcast("min_weight", self.min_weight, 0.0 if self.long_only else -1.0, n_assets)
        hi = _broadcast("max_weight", self.max_weight, 1.0, n_assets)
        if np.any(lo > hi):
            bad = np.flatnonzero(lo > hi).tolist()
            raise AllocationInputError(f"min_weight exceeds max_weight for assets {bad}")
        budget = self.budget
        tol = _FEASIBILITY_TOL * max(1.0, n_assets)
        if lo.sum() > budget + tol:
            raise AllocationInputError(
                f"infeasible constraints: the min weights sum to {lo.sum():.6g}, more than the invested "
                f"budget 1 - cash_buffer = {budget:.6g}"
            )
        if hi.sum() < budget - tol:
            raise AllocationInputError(
                f"infeasible constraints: the max weights sum to {hi.sum():.6g}, less than the invested "
                f"budget 1 - cash_buffer = {budget:.6g}"
            )
        return lo, hi


@dataclass(frozen=True, slots=True, eq=False)
class AllocationResult:
    """An allocation and the annualised figures of the resulting portfolio. Arrays are read-only."""

    method: AllocationMethod
    weights: np.ndarray  # per asset; sums to 1 - cash_weight, within [lo, hi] to 1e-9
    cash_weight: float
    expected_return: float  # annual: μ'w + rf·cash
    volatility: float  # annual: sqrt(w'Σw)
    sharpe_ratio: float  # (expected_return - rf) / volatility
    risk_contributions: np.ndarray  # w_i(Σw)_i / volatility: annual volatility units, sums to volatility
    covariance: CovarianceEstimator
    shrinkage: float | None  # Ledoit-Wolf intensity in [0, 1]; None for the sample covariance
    risk_free_rate: float
    periods_per_year: float
    n_observations: int
    conventions: tuple[str, ...] = field(default=())

    @property
    def risk_contribution_shares(self) -> np.ndarray:
        """Each asset's share of portfolio variance; sums to 1."""
        return self.risk_contributions / self.volatility


def calculate_allocations(
    returns: np.ndarray,
    method: AllocationMethod | str,
    *,
    constraints: AllocationConstraints | None = None,
    signals: np.ndarray | Sequence[float] | None = None,
    covariance: CovarianceEstimator | str = CovarianceEstimator.SAMPLE,
) -> AllocationResult:
    """Allocate across the columns of `returns` (time × assets) with `method` under `constraints`.

    Guarantees: weights sum to 1 - cash_buffer and lie within the per-asset bounds (to 1e-9), every
    reported figure is finite, and bad input raises AllocationInputError naming the problem. `signals`
    (one score per asset) is required by, and only used by, the signal-weighted method.
    """
    constraints = constraints if constraints is not None else AllocationConstraints()
    method = _parse_enum(AllocationMethod, method, "method")
    estimator = _parse_enum(CovarianceEstimator, covariance, "covariance")
    if method is not AllocationMethod.SIGNAL_WEIGHTED and signals is not None:
        raise AllocationInputError(f"signals are only used by {AllocationMethod.SIGNAL_WEIGHTED.value}")
    data = validated_returns(returns)
    n_obs, n_assets = data.shape
    lo, hi = constraints.bounds(n_assets)
    budget = constraints.budget

    ppy = constraints.periods_per_year
    mu = data.mean(axis=0) * ppy
    cov, shrinkage = estimate_covariance(data, estimator is CovarianceEstimator.LEDOIT_WOLF)
    cov = cov * ppy

    excess = mu - constraints.risk_free_rate
    conventions = [_METHOD_CONVENTIONS[method]]
    if method is AllocationMethod.MIN_VARIANCE:
        require_positive_definite(cov, method.value)
        raw = min_variance(cov, lo, hi, budget)
    elif method is AllocationMethod.MAX_SHARPE:
        require_positive_definite(cov, method.value)
        raw = max_sharpe(cov, excess, lo, hi, budget)
    elif method is AllocationMethod.SIGNAL_WEIGHTED:
        raw = _signal_weights(signals, n_assets, constraints.long_only, lo, hi, budget)
        conventions.append(_HEURISTIC_BOUNDS)
    else:
        raw = _fit_heuristic(_heuristic_weights(method, cov), lo, hi, budget)
        conventions.append(_HEURISTIC_BOUNDS)

    # Final projection: removes solver rounding so the bounds and budget hold to machine precision.
    weights = project_onto_budget_box(raw, lo, hi, budget)
    return _result(method, weights, mu, cov, constraints, estimator, shrinkage, n_obs, conventions)


def _heuristic_weights(method: AllocationMethod, cov: np.ndarray) -> np.ndarray:
    """Unconstrained weights (positive, summing to 1) of the non-optimising methods."""
    n = cov.shape[0]
    if method is AllocationMethod.EQUAL_WEIGHT:
        return np.full(n, 1.0 / n)
    if method is AllocationMethod.INVERSE_VOLATILITY:
        inv = 1.0 / np.sqrt(np.diag(cov))
        return inv / inv.sum()
    if method is AllocationMethod.RISK_PARITY:
        return equal_risk_contribution(cov)
    return hrp_weights(cov)


def _fit_heuristic(w: np.ndarray, lo: np.ndarray, hi: np.ndarray, budget: float) -> np.ndarray:
    fitted = scale_into_budget_box(w, lo, hi, budget)
    # Only when lower bounds straddle zero (shorting allowed) can scaling miss the budget.
    return fitted if fitted is not None else project_onto_budget_box(budget * w, lo, hi, budget)


def _signal_weights(
    signals: np.ndarray | Sequence[float] | None,
    n_assets: int,
    long_only: bool,
    lo: np.ndarray,
    hi: np.ndarray,
    budget: float,
) -> np.ndarray:
    if signals is None:
        raise AllocationInputError(f"{AllocationMethod.SIGNAL_WEIGHTED.value} needs one signal per asset")
    scores = np.asarray(signals, dtype=float)
    if scores.shape != (n_assets,):
        raise AllocationInputError(f"signals must have shape ({n_assets},), got {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise AllocationInputError(f"signals contain NaN or infinity at assets {_bad(scores).tolist()}")
    if long_only:
        scores = np.where(scores > 0.0, scores, 0.0)
        if not np.any(scores > 0.0):
            raise AllocationInputError("signal_weighted long-only needs at least one positive signal")
        fitted = scale_into_budget_box(scores / scores.sum(), lo, hi, budget)
        if fitted is None:
            capacity = hi[scores > 0].sum() + lo[scores <= 0].sum()
            raise AllocationInputError(
                f"the positively signalled assets can hold at most {capacity:.6g} under max_weight, less "
                f"than the invested budget {budget:.6g}; raise max_weight or cash_buffer"
            )
        return fitted
    total = scores.sum()
    if total <= 1e-12 * np.abs(scores).sum():
        raise AllocationInputError("signal_weighted with shorting needs signals with a positive sum")
    return project_onto_budget_box(budget * scores / total, lo, hi, budget)


def _result(
    method: AllocationMethod,
    weights: np.ndarray,
    mu: np.ndarray,
    cov: np.ndarray,
    constraints: AllocationConstraints,
    estimator: CovarianceEstimator,
    shrinkage: float | None,
    n_obs: int,
    conventions: list[str],
) -> AllocationResult:
    rf = constraints.risk_free_rate
    cash = 1.0 - float(weights.sum())
    marginal = cov @ weights
    variance = float(weights @ marginal)
    if not variance > 0.0:
        raise AllocationInputError(f"the {method.value} portfolio has zero variance; Sharpe is undefined")
    volatility = float(np.sqrt(variance))
    expected = float(mu @ weights) + rf * cash
    contributions = weights * marginal / volatility
    weights.setflags(write=False)
    contributions.setflags(write=False)
    return AllocationResult(
        method=method,
        weights=weights,
        cash_weight=cash,
        expected_return=expected,
        volatility=volatility,
        sharpe_ratio=(expected - rf) / volatility,
        risk_contributions=contributions,
        covariance=estimator,
        shrinkage=shrinkage,
        risk_free_rate=rf,
        periods_per_year=constraints.periods_per_year,
        n_observations=n_obs,
        conventions=(
            *conventions,
            "simple returns; μ = arithmetic mean × periods_per_year",
            "Σ = sample covariance (ddof=1) × periods_per_year"
            if estimator is CovarianceEstimator.SAMPLE
            else "Σ = Ledoit-Wolf shrinkage to scaled identity (ddof=0 base) × periods_per_year",
            "cash earns risk_free_rate; Sharpe = (μ - rf)'w / sqrt(w'Σw)",
        ),
    )


def _parse_enum(kind: type[_E], value: _E | str, name: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        options = ", ".join(m.value for m in kind)
        raise AllocationInputError(f"unknown {name} {value!r}; expected one of: {options}") from None


def _broadcast(name: str, value: float | Sequence[float] | None, default: float, n: int) -> np.ndarray:
    if value is None:
        return np.full(n, default)
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise AllocationInputError(f"{name} has {arr.size} entries for {n} assets")
    return arr.copy()


def _require_finite(name: str, value: float | Sequence[float] | None) -> None:
    if value is not None and not np.all(np.isfinite(np.asarray(value, dtype=float))):
        raise AllocationInputError(f"{name} must be finite, got {value}")


def _bad(values: np.ndarray) -> np.ndarray:
    return np.flatnonzero(~np.isfinite(values))
