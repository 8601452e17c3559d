"""Outcome probabilities of a trade: closed forms for a drift-diffusion and a seeded bootstrap Monte Carlo.

Model: the log price X_t = ln S_t is an arithmetic Brownian motion, dX = μ dt + σ dW, with μ and σ the
per-period mean and standard deviation (ddof = 1) of historical **log** returns; time is counted in bars.
(μ is the drift of the log price, so no −σ²/2 correction appears anywhere.)

- Take-profit before stop-loss (continuous monitoring, no time limit — with σ > 0 one barrier is hit almost
  surely). For a long, a = ln(tp/entry) > 0 and b = ln(entry/sl) > 0; for a short, a = ln(entry/tp),
  b = ln(sl/entry) and the drift is −μ. With k = 2μ/σ² (the scale function of the diffusion is e^{−kx}):
      P(tp first) = (1 − e^{kb}) / (e^{−ka} − e^{kb}),   and as μ → 0, P → b / (a + b).
  Checking barriers only at bar closes instead acts like moving each barrier out by ≈ 0.5826 σ
  (Broadie-Glasserman-Kou), which is how the Monte Carlo below relates to this formula.
- Price above a level K after T periods (lognormal): P(S_T > K) = Φ((ln(S₀/K) + μT) / (σ√T)).
- Expected value per unit of the trade, in quote currency, fees included: a fee rate f is charged on the
  entry notional and on the exit notional, so a long closed at x makes (x − entry) − f (entry + x).
- Monte Carlo: paths of `n_steps` log returns, either resampled i.i.d. with replacement from history
  ("bootstrap") or drawn N(μ, σ²) ("gbm"). Barriers are checked at each step's close (discrete
  monitoring, so a path may cross a barrier within a bar unseen); a barrier hit is booked at the barrier
  price (resting orders, no gap slippage), and a path hitting neither within the horizon is closed at its
  final price. Probabilities carry **Wilson score** intervals; the expected value a normal-approximation
  interval, mean ± z s/√n (s with ddof = 1). Paths are generated in chunks of at most `max_chunk_cells`
  = paths × steps cells, so memory is bounded whatever `n_paths`; results depend only on the inputs, `seed`
  and `max_chunk_cells`. Bounds: 100 ≤ n_paths ≤ 1e6, 1 ≤ n_steps ≤ 1e5, paths × steps ≤ 2e8.
- Fee rates are fractions in [0, 0.1]; every estimator needs ≥ 30 log returns with non-zero variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aiotrade.quant.errors import (
    MIN_OBSERVATIONS,
    ZERO_STD,
    QuantInputError,
    check_count,
    check_nonzero_std,
    check_open_unit,
    check_scalar,
    check_vector,
    ensure_finite,
)

Side = Literal["long", "short"]
Method = Literal["bootstrap", "gbm"]

MIN_PATHS = 100
MAX_PATHS = 1_000_000
MAX_STEPS = 100_000
#: paths × steps above this is refused: it bounds the running time, not the memory (chunks bound that).
MAX_TOTAL_CELLS = 200_000_000
DEFAULT_CHUNK_CELLS = 1_000_000

_NORMAL = NormalDist()
# Below this |k|(a + b) the exponentials cancel to rounding error; the μ = 0 limit is exact to ~1e-12.
_ZERO_DRIFT = 1e-12


@dataclass(frozen=True, slots=True)
class DriftDiffusion:
    """Per-period drift `mu` and volatility `sigma` (ddof = 1) of the log price, from `n_observations`."""

    mu: float
    sigma: float
    n_observations: int


@dataclass(frozen=True, slots=True)
class TradeOutcome:
    """Closed-form outcome of a bracket trade under the drift-diffusion.

    `expected_value` is per unit in quote currency (fees included) and `expected_return` that over the entry
    price; `breakeven_probability` is the take-profit probability at which the expected value is zero (above
    1 when fees exceed the take-profit gain).
    """

    probability_take_profit: float
    probability_stop_loss: float
    expected_value: float
    expected_return: float
    reward_risk: float
    breakeven_probability: float


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate with the bounds of its confidence interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class MonteCarloOutcome:
    """Monte Carlo frequencies of the bracket outcomes, P(S_T > level) and the expected value per unit.

    `take_profit_first + stop_loss_first + neither` = 1; below the level is 1 − `above_level`.
    """

    method: Method
    n_paths: int
    n_steps: int
    confidence: float
    take_profit_first: Interval
    stop_loss_first: Interval
    neither: Interval
    above_level: Interval | None
    expected_value: Interval


def estimate_drift_diffusion(log_returns: ArrayLike) -> DriftDiffusion:
    """μ = mean and σ = standard deviation (ddof = 1) of ≥ 30 finite per-period log returns; σ must be > 0."""
    x = check_vector(log_returns, "log_returns")
    if x.shape[0] < MIN_OBSERVATIONS:
        raise QuantInputError(f"log_returns has {x.shape[0]} entries; at least {MIN_OBSERVATIONS} are required")
    sigma = float(x.std(ddof=1))
    check_nonzero_std(sigma, "log_returns")
    return DriftDiffusion(mu=float(x.mean()), sigma=sigma, n_observations=int(x.shape[0]))


def probability_take_profit_first(
    *, entry: float, take_profit: float, stop_loss: float, side: Side, mu: float, sigma: float
) -> float:
    """Probability the take-profit is touched before the stop-loss (closed form in the module docstring)."""
    a, b, drift = _bracket(entry, take_profit, stop_loss, side, mu)
    return _hit_upper_first(a, b, drift, _sigma(sigma))


def probability_above(price: float, level: float, *, horizon: float, mu: float, sigma: float) -> float:
    """P(S_T > level) after `horizon` periods: Φ((ln(price/level) + μT) / (σ√T))."""
    return _NORMAL.cdf(_standardised_distance(price, level, horizon, mu, sigma))


def probability_below(price: float, level: float, *, horizon: float, mu: float, sigma: float) -> float:
    """P(S_T < level) after `horizon` periods: 1 − `probability_above` (computed without cancellation)."""
    return _NORMAL.cdf(-_standardised_distance(price, level, horizon, mu, sigma))


def trade_expected_value(
    *,
    entry: float,
    take_profit: float,
    stop_loss: float,
    side: Side,
    probability_take_profit: float,
    fee_rate: float = 0.0,
) -> float:
    """p × P&L at take-profit + (1 − p) × P&L at stop-loss, per unit in quote currency, fees included."""
    _bracket(entry, take_profit, stop_loss, side, 0.0)
    p = check_scalar(probability_take_profit, "probability_take_profit", lower=0.0, upper=1.0)
    fee = _fee(fee_rate)
    win, loss = _pnl(entry, take_profit, side, fee), _pnl(entry, stop_loss, side, fee)
    return p * win + (1.0 - p) * loss


def trade_outcome(
    *,
    entry: float,
    take_profit: float,
    stop_loss: float,
    side: Side,
    mu: float,
    sigma: float,
    fee_rate: float = 0.0,
) -> TradeOutcome:
    """Closed-form probabilities and expected value of a bracket trade (see the module docstring)."""
    p = probability_take_profit_first(
        entry=entry, take_profit=take_profit, stop_loss=stop_loss, side=side, mu=mu, sigma=sigma
    )
    fee = _fee(fee_rate)
    win, loss = _pnl(entry, take_profit, side, fee), _pnl(entry, stop_loss, side, fee)
    expected = p * win + (1.0 - p) * loss
    result = TradeOutcome(
        probability_take_profit=p,
        probability_stop_loss=1.0 - p,
        expected_value=expected,
        expected_return=expected / entry,
        reward_risk=abs(take_profit - entry) / abs(entry - stop_loss),
        breakeven_probability=-loss / (win - loss),
    )
    ensure_finite(np.array([result.expected_value, result.breakeven_probability]), "trade outcome")
    return result


def monte_carlo_outcome(
    log_returns: ArrayLike,
    *,
    entry: float,
    take_profit: float,
    stop_loss: float,
    side: Side,
    n_steps: int,
    seed: int,
    n_paths: int = 10_000,
    level: float | None = None,
    fee_rate: float = 0.0,
    confidence: float = 0.95,
    method: Method = "bootstrap",
    max_chunk_cells: int = DEFAULT_CHUNK_CELLS,
) -> MonteCarloOutcome:
    """Simulate `n_paths` paths of `n_steps` log returns and count bracket outcomes (module docstring).

    Deterministic for a given `seed`. `level` (default: none) adds P(S_T > level) at the horizon.
    """
    model = estimate_drift_diffusion(log_returns)
    sample = np.asarray(log_returns, dtype=np.float64)
    a, b, _ = _bracket(entry, take_profit, stop_loss, side, 0.0)
    paths = check_count(n_paths, "n_paths", minimum=MIN_PATHS, maximum=MAX_PATHS)
    steps = check_count(n_steps, "n_steps", minimum=1, maximum=MAX_STEPS)
    if paths * steps > MAX_TOTAL_CELLS:
        raise QuantInputError(f"n_paths × n_steps = {paths * steps} exceeds {MAX_TOTAL_CELLS}")
    chunk_cells = check_count(max_chunk_cells, "max_chunk_cells", minimum=1, maximum=MAX_TOTAL_CELLS)
    fee = _fee(fee_rate)
    c = check_open_unit(confidence, "confidence")
    level_value = None if level is None else check_scalar(level, "level", positive=True)
    if method not in ("bootstrap", "gbm"):
        raise QuantInputError(f"method must be 'bootstrap' or 'gbm', got {method!r}")
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise QuantInputError(f"seed must be an integer, got {seed!r}")

    direction = 1.0 if side == "long" else -1.0
    win, loss = _pnl(entry, take_profit, side, fee), _pnl(entry, stop_loss, side, fee)
    rng = np.random.default_rng(int(seed))
    chunk = max(1, chunk_cells // steps)
    n_tp = n_sl = n_above = 0
    pnl_sum = pnl_sq_sum = 0.0
    for start in range(0, paths, chunk):
        rows = min(chunk, paths - start)
        if method == "bootstrap":
            increments = sample[rng.integers(0, sample.shape[0], size=(rows, steps))]
        else:
            increments = rng.normal(model.mu, model.sigma, size=(rows, steps))
        log_path = np.cumsum(increments, axis=1)
        del increments
        favourable = log_path if side == "long" else -log_path
        t_up = _first_true(favourable >= a, steps)
        t_down = _first_true(favourable <= -b, steps)
        tp_first, sl_first = t_up < t_down, t_down < t_up
        final_price = entry * np.exp(log_path[:, -1])
        if level_value is not None:
            n_above += int(np.count_nonzero(final_price > level_value))
        pnl = np.where(
            tp_first,
            win,
            np.where(sl_first, loss, direction * (final_price - entry) - fee * (entry + final_price)),
        )
        n_tp += int(np.count_nonzero(tp_first))
        n_sl += int(np.count_nonzero(sl_first))
        pnl_sum += float(pnl.sum())
        pnl_sq_sum += float(pnl @ pnl)

    mean = pnl_sum / paths
    variance = max(pnl_sq_sum - paths * mean * mean, 0.0) / (paths - 1)
    half_width = _NORMAL.inv_cdf(0.5 + c / 2.0) * math.sqrt(variance / paths)
    result = MonteCarloOutcome(
        method=method,
        n_paths=paths,
        n_steps=steps,
        confidence=c,
        take_profit_first=wilson_interval(n_tp, paths, confidence=c),
        stop_loss_first=wilson_interval(n_sl, paths, confidence=c),
        neither=wilson_interval(paths - n_tp - n_sl, paths, confidence=c),
        above_level=None if level_value is None else wilson_interval(n_above, paths, confidence=c),
        expected_value=Interval(mean, mean - half_width, mean + half_width),
    )
    ensure_finite(np.array([mean, half_width]), "Monte Carlo expected value")
    return result


def wilson_interval(successes: int, trials: int, *, confidence: float = 0.95) -> Interval:
    """Frequency successes/trials with its Wilson score interval at `confidence` (two-sided)."""
    n = check_count(trials, "trials", minimum=1, maximum=2**62)
    k = check_count(successes, "successes", minimum=0, maximum=n)
    z = _NORMAL.inv_cdf(0.5 + check_open_unit(confidence, "confidence") / 2.0)
    p = k / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


# --- helpers ------------------------------------------------------------------------------------------


def _hit_upper_first(a: float, b: float, drift: float, sigma: float) -> float:
    """P(an ABM from 0 with this drift and σ reaches +a before −b), a, b > 0, evaluated without overflow."""
    k = 2.0 * drift / (sigma * sigma)
    if abs(k) * (a + b) < _ZERO_DRIFT:
        return b / (a + b)
    if k > 0:
        # (1 − e^{kb}) / (e^{−ka} − e^{kb}) multiplied through by e^{−kb}: both exponents now negative.
        p = math.expm1(-k * b) / math.expm1(-k * (a + b))
    else:
        m = -k
        p = math.exp(-m * a) * math.expm1(-m * b) / math.expm1(-m * (a + b))
    return min(1.0, max(0.0, p))


def _bracket(entry: float, take_profit: float, stop_loss: float, side: Side, mu: float) -> tuple[float, float, float]:
    """Log distances a (to the take-profit) and b (to the stop-loss), both > 0, and the favourable drift."""
    e = check_scalar(entry, "entry", positive=True)
    tp = check_scalar(take_profit, "take_profit", positive=True)
    sl = check_scalar(stop_loss, "stop_loss", positive=True)
    drift = check_scalar(mu, "mu")
    if side == "long":
        if not sl < e < tp:
            raise QuantInputError(f"a long needs stop_loss < entry < take_profit, got {sl} / {e} / {tp}")
        return math.log(tp / e), math.log(e / sl), drift
    if side == "short":
        if not tp < e < sl:
            raise QuantInputError(f"a short needs take_profit < entry < stop_loss, got {tp} / {e} / {sl}")
        return math.log(e / tp), math.log(sl / e), -drift
    raise QuantInputError(f"side must be 'long' or 'short', got {side!r}")


def _standardised_distance(price: float, level: float, horizon: float, mu: float, sigma: float) -> float:
    s0 = check_scalar(price, "price", positive=True)
    k = check_scalar(level, "level", positive=True)
    t = check_scalar(horizon, "horizon", positive=True)
    drift = check_scalar(mu, "mu")
    return (math.log(s0 / k) + drift * t) / (_sigma(sigma) * math.sqrt(t))


def _sigma(sigma: float) -> float:
    s = check_scalar(sigma, "sigma", non_negative=True)
    if s <= ZERO_STD:
        raise QuantInputError(f"sigma must be > 0 (a zero-variance diffusion has no probabilities), got {s}")
    return s


def _fee(fee_rate: float) -> float:
    return check_scalar(fee_rate, "fee_rate", lower=0.0, upper=0.1)


def _pnl(entry: float, exit_price: float, side: Side, fee: float) -> float:
    direction = 1.0 if side == "long" else -1.0
    return direction * (exit_price - entry) - fee * (entry + exit_price)


def _first_true(mask: NDArray[np.bool_], never: int) -> NDArray[np.int64]:
    """Index of the first True in each row, `never` for rows without one."""
    return np.where(mask.any(axis=1), mask.argmax(axis=1), never)
