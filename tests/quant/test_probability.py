"""Outcome probabilities: closed forms against independent formulas, limits, scipy and Monte Carlo."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from scipy import stats

from aiotrade.quant import probability as prob
from aiotrade.quant.errors import QuantInputError

# Broadie-Glasserman-Kou: monitoring a Brownian barrier only at step closes acts like moving the barrier
# out by β σ √Δt, β = −ζ(1/2)/√(2π) ≈ 0.5826. The per-step Monte Carlo is compared with the continuous
# closed form evaluated at the shifted barriers; the unshifted one differs by several standard errors.
BGK_BETA = 0.5825971579390106


def shifted_probability(entry: float, tp: float, sl: float, model: prob.DriftDiffusion) -> float:
    shift = math.exp(BGK_BETA * model.sigma)
    return prob.probability_take_profit_first(
        entry=entry, take_profit=tp * shift, stop_loss=sl / shift, side="long", mu=model.mu, sigma=model.sigma
    )


def gbm_formula(entry: float, tp: float, sl: float, mu: float, sigma: float) -> float:
    """P(tp first) written for GBM prices: (S₀^γ − L^γ) / (U^γ − L^γ), γ = 1 − 2μ_GBM/σ², μ_GBM = μ + σ²/2."""
    gamma = 1.0 - 2.0 * (mu + sigma**2 / 2.0) / sigma**2
    if abs(gamma) < 1e-15:
        return math.log(entry / sl) / math.log(tp / sl)
    return (entry**gamma - sl**gamma) / (tp**gamma - sl**gamma)


@pytest.mark.parametrize(
    ("mu", "sigma", "tp", "sl"),
    [
        (0.001, 0.02, 110.0, 95.0),
        (-0.002, 0.03, 120.0, 90.0),
        (0.0005, 0.01, 101.0, 99.5),
        (-0.0001, 0.05, 150.0, 60.0),
    ],
)
def test_take_profit_first_matches_the_gbm_price_form(mu: float, sigma: float, tp: float, sl: float) -> None:
    ours = prob.probability_take_profit_first(
        entry=100.0, take_profit=tp, stop_loss=sl, side="long", mu=mu, sigma=sigma
    )
    assert ours == pytest.approx(gbm_formula(100.0, tp, sl, mu, sigma), rel=1e-10)


def test_zero_drift_gives_the_ratio_of_log_distances() -> None:
    a, b = math.log(110 / 100), math.log(100 / 95)
    kwargs = {"entry": 100.0, "take_profit": 110.0, "stop_loss": 95.0, "side": "long", "sigma": 0.02}
    assert prob.probability_take_profit_first(mu=0.0, **kwargs) == pytest.approx(b / (a + b), rel=1e-15)
    # Approaching the limit from either side is continuous (no 0/0, no jump at the switch to the limit).
    for mu in (1e-16, -1e-16, 1e-12, -1e-12, 1e-9):
        assert prob.probability_take_profit_first(mu=mu, **kwargs) == pytest.approx(b / (a + b), abs=1e-6)
    # A short mirrors a long: same log distances, drift against it.
    short = prob.probability_take_profit_first(
        entry=100.0, take_profit=100 * 100 / 110, stop_loss=100 * 100 / 95, side="short", mu=0.0, sigma=0.02
    )
    assert short == pytest.approx(b / (a + b), rel=1e-12)


def test_short_with_negative_drift_mirrors_long_with_positive_drift() -> None:
    long = prob.probability_take_profit_first(
        entry=100.0, take_profit=112.0, stop_loss=94.0, side="long", mu=0.0015, sigma=0.025
    )
    short = prob.probability_take_profit_first(
        entry=100.0,
        take_profit=100 * 100 / 112,
        stop_loss=100 * 100 / 94,
        side="short",
        mu=-0.0015,
        sigma=0.025,
    )
    assert short == pytest.approx(long, rel=1e-12)


def test_take_profit_probability_rises_with_drift_and_stays_in_bounds_for_extreme_drift() -> None:
    mus = [-1.0, -0.01, -0.001, 0.0, 0.001, 0.01, 1.0]
    values = [
        prob.probability_take_profit_first(
            entry=100.0, take_profit=110.0, stop_loss=95.0, side="long", mu=mu, sigma=0.01
        )
        for mu in mus
    ]
    assert all(0.0 <= v <= 1.0 and math.isfinite(v) for v in values)
    assert values == sorted(values)
    assert values[0] < 1e-100 and values[-1] == 1.0


@pytest.mark.parametrize(("mu", "tp", "sl"), [(0.002, 110.0, 95.0), (0.0, 110.0, 95.0), (-0.001, 108.0, 96.0)])
def test_closed_form_agrees_with_gbm_monte_carlo_within_its_wilson_interval(mu: float, tp: float, sl: float) -> None:
    sample = np.random.default_rng(7).normal(mu, 0.02, size=5_000)
    model = prob.estimate_drift_diffusion(sample)
    mc = prob.monte_carlo_outcome(
        sample,
        entry=100.0,
        take_profit=tp,
        stop_loss=sl,
        side="long",
        n_steps=600,
        seed=11,
        n_paths=20_000,
        method="gbm",
        confidence=0.99,
    )
    assert mc.neither.estimate < 1e-3
    expected = shifted_probability(100.0, tp, sl, model)
    assert mc.take_profit_first.low <= expected <= mc.take_profit_first.high
    assert mc.stop_loss_first.low <= 1 - expected <= mc.stop_loss_first.high


def test_gbm_monte_carlo_detects_drift_the_zero_drift_formula_would_miss() -> None:
    sample = np.random.default_rng(7).normal(0.002, 0.02, size=5_000)
    mc = prob.monte_carlo_outcome(
        sample,
        entry=100.0,
        take_profit=110.0,
        stop_loss=95.0,
        side="long",
        n_steps=600,
        seed=11,
        n_paths=20_000,
        method="gbm",
        confidence=0.99,
    )
    zero_drift = prob.DriftDiffusion(mu=0.0, sigma=0.02, n_observations=5_000)
    assert shifted_probability(100.0, 110.0, 95.0, zero_drift) < mc.take_profit_first.low


def test_bootstrap_of_a_two_valued_sample_reproduces_the_gamblers_ruin() -> None:
    # Log returns of ±1 % with P(up) = 0.6: a lattice random walk, so barriers at whole steps are hit
    # exactly (no overshoot) and P(+A before −B) = (1 − r^B) / (1 − r^(A+B)), r = q/p.
    sample = np.array([0.01] * 36 + [-0.01] * 24)
    up, down = 10, 5
    mc = prob.monte_carlo_outcome(
        sample,
        entry=100.0,
        take_profit=100 * math.exp(0.01 * up - 1e-9),
        stop_loss=100 * math.exp(-0.01 * down + 1e-9),
        side="long",
        n_steps=500,
        seed=2024,
        n_paths=20_000,
        confidence=0.99,
    )
    r = 0.4 / 0.6
    exact = (1 - r**down) / (1 - r ** (up + down))
    assert mc.neither.estimate == 0.0
    assert mc.take_profit_first.low <= exact <= mc.take_profit_first.high
    assert abs(mc.take_profit_first.estimate - exact) < 0.01


def test_bootstrap_of_fat_tailed_returns_is_close_to_the_shifted_closed_form(market) -> None:
    # Non-Gaussian steps overshoot differently from Brownian motion: agreement is approximate (±0.02).
    log_returns = np.log1p(market.returns[:, 3])
    model = prob.estimate_drift_diffusion(log_returns)
    mc = prob.monte_carlo_outcome(
        log_returns,
        entry=100.0,
        take_profit=115.0,
        stop_loss=90.0,
        side="long",
        n_steps=1_500,
        seed=3,
        n_paths=20_000,
    )
    assert mc.neither.estimate < 1e-3
    assert mc.take_profit_first.estimate == pytest.approx(shifted_probability(100.0, 115.0, 90.0, model), abs=0.02)


def test_probability_above_and_below_match_scipy_lognormal() -> None:
    mu, sigma, horizon, price = 0.0007, 0.03, 30.0, 100.0
    # ln S_T ~ N(ln S₀ + μT, σ²T): scipy's lognorm with s = σ√T and scale = S₀ e^{μT}.
    reference = stats.lognorm(s=sigma * math.sqrt(horizon), scale=price * math.exp(mu * horizon))
    for level in (70.0, 95.0, 100.0, 102.1, 140.0):
        above = prob.probability_above(price, level, horizon=horizon, mu=mu, sigma=sigma)
        below = prob.probability_below(price, level, horizon=horizon, mu=mu, sigma=sigma)
        assert above == pytest.approx(reference.sf(level), rel=1e-12)
        assert below == pytest.approx(reference.cdf(level), rel=1e-12)
        assert above + below == pytest.approx(1.0, rel=1e-15)
    # At the median S₀ e^{μT} the price is equally likely above or below.
    median = price * math.exp(mu * horizon)
    assert prob.probability_above(price, median, horizon=horizon, mu=mu, sigma=sigma) == pytest.approx(0.5)


@pytest.mark.parametrize("method", ["gbm", "bootstrap"])
def test_probability_above_agrees_with_monte_carlo(market, method: str) -> None:
    log_returns = np.log1p(market.returns[:, 1])
    model = prob.estimate_drift_diffusion(log_returns)
    level, steps = 103.0, 60
    mc = prob.monte_carlo_outcome(
        log_returns,
        entry=100.0,
        take_profit=1e6,
        stop_loss=1e-6,
        side="long",
        n_steps=steps,
        seed=5,
        n_paths=40_000,
        level=level,
        method=method,
        confidence=0.99,
    )
    closed = prob.probability_above(100.0, level, horizon=steps, mu=model.mu, sigma=model.sigma)
    assert mc.neither.estimate == 1.0  # barriers out of reach: every path runs to the horizon
    # The bootstrap's per-step variance is the ddof = 0 one and its sum of 60 fat-tailed steps is only
    # approximately normal: allow 0.005 on top of the sampling interval.
    assert mc.above_level.low - 0.005 <= closed <= mc.above_level.high + 0.005


def test_expected_value_of_a_trade_includes_entry_and_exit_fees() -> None:
    # Long 100 → 110 / 95 with 0.1 % fees: win 10 − 0.001 × 210 = 9.79, loss −5 − 0.001 × 195 = −5.195.
    ev = prob.trade_expected_value(
        entry=100.0,
        take_profit=110.0,
        stop_loss=95.0,
        side="long",
        probability_take_profit=0.4,
        fee_rate=0.001,
    )
    assert ev == pytest.approx(0.4 * 9.79 + 0.6 * -5.195, rel=1e-14)
    # Short 100 → 90 / 104: win 10 − 0.001 × 190 = 9.81, loss −4 − 0.001 × 204 = −4.204.
    ev_short = prob.trade_expected_value(
        entry=100.0,
        take_profit=90.0,
        stop_loss=104.0,
        side="short",
        probability_take_profit=0.3,
        fee_rate=0.001,
    )
    assert ev_short == pytest.approx(0.3 * 9.81 + 0.7 * -4.204, rel=1e-14)


def test_trade_outcome_combines_probability_and_payoffs() -> None:
    outcome = prob.trade_outcome(
        entry=100.0, take_profit=110.0, stop_loss=95.0, side="long", mu=0.0, sigma=0.02, fee_rate=0.001
    )
    a, b = math.log(1.1), math.log(100 / 95)
    p = b / (a + b)
    assert outcome.probability_take_profit == pytest.approx(p, rel=1e-14)
    assert outcome.probability_stop_loss == pytest.approx(1 - p, rel=1e-14)
    assert outcome.expected_value == pytest.approx(p * 9.79 - (1 - p) * 5.195, rel=1e-12)
    assert outcome.expected_return == pytest.approx(outcome.expected_value / 100.0, rel=1e-15)
    assert outcome.reward_risk == pytest.approx(2.0, rel=1e-15)
    assert outcome.breakeven_probability == pytest.approx(5.195 / (9.79 + 5.195), rel=1e-14)
    at_breakeven = prob.trade_expected_value(
        entry=100.0,
        take_profit=110.0,
        stop_loss=95.0,
        side="long",
        fee_rate=0.001,
        probability_take_profit=outcome.breakeven_probability,
    )
    assert at_breakeven == pytest.approx(0.0, abs=1e-12)


def test_monte_carlo_expected_value_agrees_with_the_closed_form() -> None:
    sample = np.random.default_rng(8).normal(0.001, 0.02, size=3_000)
    model = prob.estimate_drift_diffusion(sample)
    mc = prob.monte_carlo_outcome(
        sample,
        entry=100.0,
        take_profit=108.0,
        stop_loss=95.0,
        side="long",
        n_steps=800,
        seed=17,
        n_paths=20_000,
        fee_rate=0.001,
        method="gbm",
        confidence=0.99,
    )
    p = shifted_probability(100.0, 108.0, 95.0, model)
    closed = prob.trade_expected_value(
        entry=100.0, take_profit=108.0, stop_loss=95.0, side="long", probability_take_profit=p, fee_rate=0.001
    )
    assert mc.expected_value.low <= closed <= mc.expected_value.high
    # With no path left open, the Monte Carlo EV is exactly its own frequencies times the two payoffs.
    assert mc.neither.estimate == 0.0
    win, loss = 8 - 0.001 * 208, -5 - 0.001 * 195
    assert mc.expected_value.estimate == pytest.approx(
        mc.take_profit_first.estimate * win + mc.stop_loss_first.estimate * loss, rel=1e-12
    )


def test_monte_carlo_is_reproducible_for_a_seed_and_consistent_across_chunk_sizes(market) -> None:
    log_returns = np.log1p(market.returns[:, 0])
    kwargs = {
        "entry": 100.0,
        "take_profit": 115.0,
        "stop_loss": 92.0,
        "side": "long",
        "n_steps": 200,
        "n_paths": 10_000,
        "level": 100.0,
        "confidence": 0.99,
    }
    first = prob.monte_carlo_outcome(log_returns, seed=42, **kwargs)
    assert prob.monte_carlo_outcome(log_returns, seed=42, **kwargs) == first
    other_seed = prob.monte_carlo_outcome(log_returns, seed=43, **kwargs)
    assert other_seed != first
    chunked = prob.monte_carlo_outcome(log_returns, seed=42, max_chunk_cells=7_000, **kwargs)
    assert chunked.n_paths == 10_000
    for name in ("take_profit_first", "stop_loss_first", "above_level"):
        a, b = getattr(first, name), getattr(chunked, name)
        assert a.low <= b.estimate <= a.high, name
    total = first.take_profit_first.estimate + first.stop_loss_first.estimate + first.neither.estimate
    assert total == pytest.approx(1.0, abs=1e-12)


def test_monte_carlo_memory_is_bounded_by_the_chunk_size(market) -> None:
    log_returns = np.log1p(market.returns[:, 2])
    kwargs = {
        "entry": 100.0,
        "take_profit": 130.0,
        "stop_loss": 80.0,
        "side": "long",
        "n_steps": 400,
        "n_paths": 5_000,
        "seed": 1,
    }
    tracemalloc.start()
    try:
        prob.monte_carlo_outcome(log_returns, max_chunk_cells=20_000, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Unchunked, the 2,000,000 cells would need 16 MB of indices plus 16 MB of log prices.
    assert peak < 2_000_000


def test_short_trade_monte_carlo_counts_the_take_profit_below_entry() -> None:
    sample = np.random.default_rng(4).normal(-0.002, 0.02, size=2_000)  # falling market favours the short
    model = prob.estimate_drift_diffusion(sample)
    mc = prob.monte_carlo_outcome(
        sample,
        entry=100.0,
        take_profit=92.0,
        stop_loss=105.0,
        side="short",
        n_steps=800,
        seed=9,
        n_paths=20_000,
        method="gbm",
        confidence=0.99,
    )
    shift = math.exp(BGK_BETA * model.sigma)
    expected = prob.probability_take_profit_first(
        entry=100.0,
        take_profit=92.0 / shift,
        stop_loss=105.0 * shift,
        side="short",
        mu=model.mu,
        sigma=model.sigma,
    )
    assert mc.take_profit_first.low <= expected <= mc.take_profit_first.high
    # The drift matters: without it the short would win only ln(1.05) / ln(105/92) ≈ 0.37 of the time.
    assert mc.take_profit_first.low > 0.5 > math.log(1.05) / math.log(105 / 92)


@pytest.mark.parametrize(("successes", "trials"), [(0, 10), (8, 10), (10, 10), (4_321, 10_000), (1, 1_000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_interval_matches_scipy(successes: int, trials: int, confidence: float) -> None:
    ours = prob.wilson_interval(successes, trials, confidence=confidence)
    reference = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    assert ours.estimate == successes / trials
    assert ours.low == pytest.approx(reference.low, abs=1e-12)
    assert ours.high == pytest.approx(reference.high, abs=1e-12)


def test_drift_diffusion_estimate_uses_mean_and_sample_std(market) -> None:
    log_returns = np.log1p(market.returns[:, 0])
    model = prob.estimate_drift_diffusion(log_returns)
    assert model.mu == pytest.approx(log_returns.mean(), rel=1e-14)
    assert model.sigma == pytest.approx(log_returns.std(ddof=1), rel=1e-14)
    assert model.n_observations == 750


# --- bad input -------------------------------------------------------------------------------------------

BRACKET = {"entry": 100.0, "take_profit": 110.0, "stop_loss": 95.0, "side": "long", "mu": 0.0, "sigma": 0.02}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"side": "buy"}, "side must be 'long' or 'short'"),
        ({"take_profit": 90.0}, "a long needs stop_loss < entry < take_profit"),
        ({"side": "short"}, "a short needs take_profit < entry < stop_loss"),
        ({"stop_loss": 100.0}, "a long needs stop_loss < entry < take_profit"),
        ({"sigma": 0.0}, "sigma must be > 0"),
        ({"sigma": -0.01}, "sigma must be ≥ 0"),
        ({"mu": float("nan")}, "mu must be finite"),
        ({"entry": float("inf")}, "entry must be finite"),
        ({"stop_loss": 0.0}, "stop_loss must be > 0"),
    ],
)
def test_bad_bracket_inputs_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(QuantInputError, match=message):
        prob.probability_take_profit_first(**(BRACKET | changes))


def test_bad_level_or_horizon_are_refused() -> None:
    with pytest.raises(QuantInputError, match="horizon must be > 0"):
        prob.probability_above(100.0, 105.0, horizon=0.0, mu=0.0, sigma=0.02)
    with pytest.raises(QuantInputError, match="level must be > 0"):
        prob.probability_below(100.0, -1.0, horizon=5.0, mu=0.0, sigma=0.02)
    with pytest.raises(QuantInputError, match="probability_take_profit must be ≤ 1"):
        prob.trade_expected_value(
            entry=100.0, take_profit=110.0, stop_loss=95.0, side="long", probability_take_profit=1.5
        )


def test_bad_monte_carlo_inputs_are_refused(market) -> None:
    log_returns = np.log1p(market.returns[:, 0])
    kwargs = {
        "entry": 100.0,
        "take_profit": 110.0,
        "stop_loss": 95.0,
        "side": "long",
        "n_steps": 50,
        "seed": 1,
    }
    cases = [
        (log_returns[:29], {}, "29 entries; at least 30"),
        (np.full(40, 0.001), {}, "log_returns has zero variance"),
        (np.where(np.arange(750) == 12, np.nan, log_returns), {}, "log_returns contains NaN at index 12"),
        (log_returns, {"n_paths": 10}, "n_paths must be between 100 and 1000000"),
        (log_returns, {"n_steps": 0}, "n_steps must be between 1 and 100000"),
        (log_returns, {"n_steps": 50_000, "n_paths": 10_000}, "exceeds 200000000"),
        (log_returns, {"method": "garch"}, "method must be 'bootstrap' or 'gbm'"),
        (log_returns, {"seed": 1.5}, "seed must be an integer"),
        (log_returns, {"level": 0.0}, "level must be > 0"),
        (log_returns, {"confidence": 1.0}, "confidence must be strictly between 0 and 1"),
        (log_returns, {"fee_rate": -0.001}, "fee_rate must be ≥ 0.0"),
    ]
    for sample, changes, message in cases:
        with pytest.raises(QuantInputError, match=message):
            prob.monte_carlo_outcome(sample, **(kwargs | changes))
