"""Allocation methods against reference libraries (PyPortfolioOpt, cvxpy, scipy, scikit-learn) and their
defining properties.

Reference conventions made explicit: PyPortfolioOpt annualises with frequency=252 and compounds mean
returns by default, and its max_sharpe risk-free rate defaults to 0.02; here it is always given
frequency=PPY, compounding=False and our risk-free rate. Our covariance is the sample covariance (ddof=1),
as are pypfopt's sample_cov and pandas' DataFrame.cov.
"""

import importlib

import numpy as np
import pytest

from aiotrade.quant.allocation import (
    AllocationConstraints,
    AllocationInputError,
    AllocationMethod,
    CovarianceEstimator,
    calculate_allocations,
)
from aiotrade.quant.allocation_hrp import single_linkage
from aiotrade.quant.allocation_solvers import project_onto_budget_box

PPY = 365.0
RF = 0.01
ALL_METHODS = list(AllocationMethod)


def _returns(seed: int, n_bars: int, n_assets: int) -> np.ndarray:
    """Daily returns with a common factor, distinct drifts and volatilities."""
    rng = np.random.default_rng(seed)
    drift = rng.normal(0.0006, 0.0008, n_assets)
    vol = rng.uniform(0.01, 0.04, n_assets)
    beta = rng.uniform(0.2, 1.2, n_assets)
    market = rng.normal(0.0, 0.02, (n_bars, 1))
    return drift + market * beta + rng.normal(0.0, 1.0, (n_bars, n_assets)) * vol


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return _returns(seed=11, n_bars=500, n_assets=6)


def _signals(n: int) -> np.ndarray:
    return np.linspace(-0.5, 2.0, n)


def _allocate(returns: np.ndarray, method: AllocationMethod, constraints: AllocationConstraints, signals=None):
    """Allocate with `method`; the signal-weighted method gets `signals` (or a default ramp), others none."""
    if method is not AllocationMethod.SIGNAL_WEIGHTED:
        signals = None
    elif signals is None:
        signals = _signals(returns.shape[1])
    return calculate_allocations(returns, method, constraints=constraints, signals=signals)


def _pypfopt_inputs(returns: np.ndarray):
    pd = importlib.import_module("pandas")
    expected_returns = importlib.import_module("pypfopt.expected_returns")
    risk_models = importlib.import_module("pypfopt.risk_models")
    frame = pd.DataFrame(returns)
    mu = expected_returns.mean_historical_return(frame, returns_data=True, compounding=False, frequency=PPY)
    cov = risk_models.sample_cov(frame, returns_data=True, frequency=PPY)
    return frame, mu, cov


# --- reference libraries -------------------------------------------------------------------------------


@pytest.mark.parametrize(("long_only", "bounds"), [(True, (0.0, 1.0)), (True, (0.05, 0.3)), (False, (-1.0, 1.0))])
def test_min_variance_matches_pypfopt_min_volatility(returns, long_only, bounds):
    pypfopt = importlib.import_module("pypfopt")
    _, mu, cov = _pypfopt_inputs(returns)
    ef = pypfopt.EfficientFrontier(mu, cov, weight_bounds=bounds, solver="CLARABEL")
    expected = np.array(list(ef.min_volatility().values()))

    got = calculate_allocations(
        returns,
        AllocationMethod.MIN_VARIANCE,
        constraints=AllocationConstraints(long_only=long_only, min_weight=bounds[0], max_weight=bounds[1]),
    )

    np.testing.assert_allclose(got.weights, expected, atol=1e-5)
    ret, vol, _ = ef.portfolio_performance(risk_free_rate=0.0)
    assert got.volatility == pytest.approx(vol, rel=1e-7)
    assert got.expected_return == pytest.approx(ret, rel=1e-5)


@pytest.mark.parametrize(("long_only", "bounds"), [(True, (0.0, 1.0)), (True, (0.05, 0.3)), (False, (-1.0, 1.0))])
def test_max_sharpe_matches_pypfopt_max_sharpe(returns, long_only, bounds):
    pypfopt = importlib.import_module("pypfopt")
    _, mu, cov = _pypfopt_inputs(returns)
    ef = pypfopt.EfficientFrontier(mu, cov, weight_bounds=bounds, solver="CLARABEL")
    expected = np.array(list(ef.max_sharpe(risk_free_rate=RF).values()))

    got = calculate_allocations(
        returns,
        AllocationMethod.MAX_SHARPE,
        constraints=AllocationConstraints(
            long_only=long_only, min_weight=bounds[0], max_weight=bounds[1], risk_free_rate=RF
        ),
    )

    np.testing.assert_allclose(got.weights, expected, atol=1e-5)
    ret, vol, sharpe = ef.portfolio_performance(risk_free_rate=RF)
    assert (got.expected_return, got.volatility) == pytest.approx((ret, vol), rel=1e-6)
    assert got.sharpe_ratio == pytest.approx(sharpe, rel=1e-8)
    assert got.sharpe_ratio >= sharpe - 1e-9  # never worse than the reference optimum


def test_min_variance_with_cash_buffer_and_per_asset_bounds_matches_cvxpy(returns):
    cp = importlib.import_module("cvxpy")
    lo = np.array([0.0, 0.05, 0.0, 0.1, 0.0, 0.0])
    hi = np.array([0.3, 0.4, 0.12, 0.5, 0.25, 0.6])
    constraints = AllocationConstraints(min_weight=tuple(lo), max_weight=tuple(hi), cash_buffer=0.15)
    cov = np.cov(returns, rowvar=False, ddof=1) * PPY
    w = cp.Variable(6)
    cp.Problem(cp.Minimize(cp.quad_form(w, cov)), [cp.sum(w) == 0.85, w >= lo, w <= hi]).solve("CLARABEL")

    got = calculate_allocations(returns, AllocationMethod.MIN_VARIANCE, constraints=constraints)

    np.testing.assert_allclose(got.weights, w.value, atol=1e-5)
    assert got.cash_weight == pytest.approx(0.15, abs=1e-12)


def test_max_sharpe_with_cash_buffer_matches_cvxpy_homogenised_problem(returns):
    cp = importlib.import_module("cvxpy")
    budget, hi = 0.8, 0.3
    constraints = AllocationConstraints(max_weight=hi, cash_buffer=1 - budget, risk_free_rate=RF)
    cov = np.cov(returns, rowvar=False, ddof=1) * PPY
    excess = returns.mean(axis=0) * PPY - RF
    y, k = cp.Variable(6), cp.Variable()
    cp.Problem(
        cp.Minimize(cp.quad_form(y, cov)),
        [excess @ y == 1, cp.sum(y) == budget * k, y >= 0, y <= hi * k, k >= 0],
    ).solve("CLARABEL")

    got = calculate_allocations(returns, AllocationMethod.MAX_SHARPE, constraints=constraints)

    np.testing.assert_allclose(got.weights, y.value / k.value, atol=1e-5)
    # Cash earns the risk-free rate, so the Sharpe ratio is that of the risky sleeve.
    assert got.expected_return == pytest.approx(excess @ got.weights + RF, rel=1e-12)


@pytest.mark.parametrize(("seed", "n_assets"), [(11, 6), (3, 8), (5, 20)])
def test_hrp_matches_pypfopt_hrpopt_exactly(seed, n_assets):
    pypfopt = importlib.import_module("pypfopt")
    data = _returns(seed=seed, n_bars=500, n_assets=n_assets)
    frame, _, _ = _pypfopt_inputs(data)
    expected = np.array(list(pypfopt.HRPOpt(frame).optimize(linkage_method="single").values()))

    got = calculate_allocations(data, AllocationMethod.HRP)

    np.testing.assert_allclose(got.weights, expected, rtol=0, atol=1e-12)


def test_single_linkage_matches_scipy_linkage_matrix():
    hierarchy = importlib.import_module("scipy.cluster.hierarchy")
    distance = importlib.import_module("scipy.spatial.distance")
    rng = np.random.default_rng(4)
    dist = distance.squareform(distance.pdist(rng.normal(size=(25, 3))))

    np.testing.assert_array_equal(single_linkage(dist), hierarchy.linkage(distance.squareform(dist), "single"))


def test_ledoit_wolf_matches_sklearn_and_pypfopt_shrinkage(returns):
    sk_cov = importlib.import_module("sklearn.covariance")
    pypfopt = importlib.import_module("pypfopt")
    frame, mu, _ = _pypfopt_inputs(returns)
    shrunk, shrinkage = sk_cov.ledoit_wolf(returns)
    pf_cov = pypfopt.risk_models.CovarianceShrinkage(frame, returns_data=True, frequency=PPY).ledoit_wolf()
    ef = pypfopt.EfficientFrontier(mu, pf_cov, solver="CLARABEL")
    expected = np.array(list(ef.min_volatility().values()))

    got = calculate_allocations(returns, AllocationMethod.MIN_VARIANCE, covariance="ledoit_wolf")

    assert got.covariance is CovarianceEstimator.LEDOIT_WOLF
    assert got.shrinkage == pytest.approx(shrinkage, rel=1e-12)
    assert got.volatility == pytest.approx(np.sqrt(got.weights @ shrunk @ got.weights * PPY), rel=1e-12)
    np.testing.assert_allclose(got.weights, expected, atol=1e-5)


def test_risk_parity_matches_scipy_solution_of_spinu_problem(returns):
    optimize = importlib.import_module("scipy.optimize")
    cov = np.cov(returns, rowvar=False, ddof=1) * PPY
    n = cov.shape[0]

    def spinu(x):
        return 0.5 * x @ cov @ x - np.log(x).sum() / n, cov @ x - 1 / (n * x)

    ref = optimize.minimize(spinu, np.ones(n), jac=True, bounds=[(1e-9, None)] * n, tol=1e-14).x

    got = calculate_allocations(returns, AllocationMethod.RISK_PARITY)

    np.testing.assert_allclose(got.weights, ref / ref.sum(), atol=1e-6)


def _nearly_collinear_returns(rng: np.random.Generator) -> np.ndarray:
    """Returns driven by one or two common factors with little idiosyncratic noise, as closes of pairs
    quoted against one another are: correlation matrices with condition numbers up to ~1e8."""
    n_assets = int(rng.integers(2, 12))
    n_bars = int(rng.integers(max(30, 2 * n_assets), 200))  # the fewest observations allowed
    factors = rng.normal(size=(n_bars, int(rng.integers(1, 3))))
    loadings = rng.normal(size=(factors.shape[1], n_assets))
    noise = rng.normal(size=(n_bars, n_assets)) * rng.uniform(1e-4, 1e-2)
    return (factors @ loadings + noise) * 0.01


def test_risk_parity_converges_on_nearly_collinear_returns():
    # Found by the API suite: paper closes made Newton's line search stall on rounding 1e-11 short of
    # its tolerance, and the allocation came back as a 422 "did not converge".
    rng = np.random.default_rng(5)
    for _ in range(300):
        returns = _nearly_collinear_returns(rng)
        got = calculate_allocations(returns, AllocationMethod.RISK_PARITY)
        n = returns.shape[1]
        np.testing.assert_allclose(got.risk_contribution_shares, np.full(n, 1 / n), rtol=1e-6)


def test_projection_matches_cvxpy_euclidean_projection():
    cp = importlib.import_module("cvxpy")
    rng = np.random.default_rng(8)
    for _ in range(20):
        v = rng.normal(0.2, 0.5, 7)
        lo = rng.uniform(-0.2, 0.05, 7)
        hi = lo + rng.uniform(0.05, 0.4, 7)
        budget = float(rng.uniform(lo.sum(), hi.sum()))
        w = cp.Variable(7)
        cp.Problem(cp.Minimize(cp.sum_squares(w - v)), [cp.sum(w) == budget, w >= lo, w <= hi]).solve("CLARABEL")

        got = project_onto_budget_box(v, lo, hi, budget)

        np.testing.assert_allclose(got, w.value, atol=1e-6)
        assert np.all((got >= lo) & (got <= hi))
        assert got.sum() == pytest.approx(budget, abs=1e-12)


# --- heuristics ----------------------------------------------------------------------------------------


def test_inverse_volatility_weights_are_proportional_to_inverse_std(returns):
    inv = 1 / returns.std(axis=0, ddof=1)

    got = calculate_allocations(returns, AllocationMethod.INVERSE_VOLATILITY)

    np.testing.assert_allclose(got.weights, inv / inv.sum(), rtol=1e-12)


def test_equal_weight_splits_the_budget_left_after_the_cash_buffer(returns):
    got = calculate_allocations(
        returns, "equal_weight", constraints=AllocationConstraints(cash_buffer=0.25, risk_free_rate=RF)
    )

    np.testing.assert_allclose(got.weights, np.full(6, 0.125), rtol=1e-15)
    assert got.cash_weight == pytest.approx(0.25)
    assert got.expected_return == pytest.approx(returns.mean(axis=0) @ got.weights * PPY + 0.25 * RF)


def test_signal_weighted_long_only_gives_non_positive_scores_no_weight(returns):
    signals = np.array([3.0, -1.0, 0.0, 1.0, 2.0, -5.0])

    got = calculate_allocations(returns, AllocationMethod.SIGNAL_WEIGHTED, signals=signals)

    np.testing.assert_allclose(got.weights, [0.5, 0, 0, 1 / 6, 1 / 3, 0], atol=1e-15)


def test_signal_weighted_with_shorting_keeps_signs_and_net_budget(returns):
    signals = np.array([0.4, -0.2, 0.3, 0.1, -0.1, 0.5])
    constraints = AllocationConstraints(long_only=False, cash_buffer=0.5)

    got = calculate_allocations(returns, AllocationMethod.SIGNAL_WEIGHTED, signals=signals, constraints=constraints)

    np.testing.assert_allclose(got.weights, 0.5 * signals / signals.sum(), atol=1e-15)


def test_capped_heuristic_keeps_the_ratios_of_uncapped_assets(returns):
    inv = 1 / returns.std(axis=0, ddof=1)
    cap = 0.9 * float(np.max(inv / inv.sum()))

    got = calculate_allocations(
        returns, AllocationMethod.INVERSE_VOLATILITY, constraints=AllocationConstraints(max_weight=cap)
    )

    capped = np.isclose(got.weights, cap, rtol=0, atol=1e-12)
    assert capped.any()
    assert not capped.all()
    np.testing.assert_allclose(got.weights[~capped] / inv[~capped], (got.weights / inv)[~capped][0], rtol=1e-12)


# --- properties ----------------------------------------------------------------------------------------

CONSTRAINT_SETS = {
    "default": AllocationConstraints(),
    "cash_and_caps": AllocationConstraints(max_weight=0.3, cash_buffer=0.1, risk_free_rate=RF),
    "floors_and_caps": AllocationConstraints(
        min_weight=(0.02, 0.0, 0.05, 0.0, 0.1, 0.0), max_weight=(0.25, 0.5, 0.3, 0.2, 0.4, 0.35)
    ),
    "shorting": AllocationConstraints(long_only=False, min_weight=-0.2, max_weight=0.6, cash_buffer=0.2),
}


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("name", CONSTRAINT_SETS)
def test_weights_sum_to_budget_and_respect_bounds(returns, method, name):
    constraints = CONSTRAINT_SETS[name]
    lo, hi = constraints.bounds(6)

    got = _allocate(returns, method, constraints)

    assert got.weights.sum() == pytest.approx(constraints.budget, abs=1e-9)
    assert np.all(got.weights >= lo - 1e-9)
    assert np.all(got.weights <= hi + 1e-9)
    assert got.risk_contributions.sum() == pytest.approx(got.volatility, rel=1e-9)
    assert got.sharpe_ratio == pytest.approx((got.expected_return - constraints.risk_free_rate) / got.volatility)
    assert got.method is method
    assert got.n_observations == 500
    assert not got.weights.flags.writeable
    assert all(np.isfinite([got.expected_return, got.volatility, got.sharpe_ratio]))


@pytest.mark.parametrize("cash_buffer", [0.0, 0.3])
def test_risk_parity_contributions_are_equal(returns, cash_buffer):
    got = calculate_allocations(
        returns, AllocationMethod.RISK_PARITY, constraints=AllocationConstraints(cash_buffer=cash_buffer)
    )

    np.testing.assert_allclose(got.risk_contribution_shares, np.full(6, 1 / 6), rtol=1e-10)


def _random_feasible(rng, lo, hi, budget, count):
    """Dirichlet portfolios kept only if they satisfy the bounds (rejection sampling)."""
    samples = budget * rng.dirichlet(np.full(lo.size, 2.0), size=count)
    return samples[np.all((samples >= lo) & (samples <= hi), axis=1)]


@pytest.mark.parametrize("name", ["default", "cash_and_caps", "floors_and_caps"])
def test_min_variance_is_below_every_random_feasible_portfolio(returns, name):
    constraints = CONSTRAINT_SETS[name]
    cov = np.cov(returns, rowvar=False) * PPY
    samples = _random_feasible(np.random.default_rng(1), *constraints.bounds(6), constraints.budget, 20000)
    assert len(samples) > 500

    got = calculate_allocations(returns, AllocationMethod.MIN_VARIANCE, constraints=constraints)

    assert got.volatility**2 <= np.min(np.einsum("ij,jk,ik->i", samples, cov, samples))


@pytest.mark.parametrize("name", ["default", "cash_and_caps", "floors_and_caps"])
def test_max_sharpe_is_above_every_random_feasible_portfolio(returns, name):
    constraints = CONSTRAINT_SETS[name]
    cov = np.cov(returns, rowvar=False) * PPY
    excess = returns.mean(axis=0) * PPY - constraints.risk_free_rate
    samples = _random_feasible(np.random.default_rng(2), *constraints.bounds(6), constraints.budget, 20000)

    got = calculate_allocations(returns, AllocationMethod.MAX_SHARPE, constraints=constraints)

    sharpes = samples @ excess / np.sqrt(np.einsum("ij,jk,ik->i", samples, cov, samples))
    assert got.sharpe_ratio >= np.max(sharpes)


def test_single_asset_gets_the_whole_budget():
    data = _returns(seed=2, n_bars=40, n_assets=1)
    for method in ALL_METHODS:
        got = _allocate(data, method, AllocationConstraints(cash_buffer=0.1), signals=[1.0])
        np.testing.assert_allclose(got.weights, [0.9], rtol=1e-12)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_fifty_assets_thousand_bars_allocate_within_bounds(method):
    data = _returns(seed=9, n_bars=1000, n_assets=50)
    signals = np.random.default_rng(0).uniform(0.1, 1.0, 50)
    for constraints in (AllocationConstraints(), AllocationConstraints(max_weight=0.05, cash_buffer=0.05)):
        got = _allocate(data, method, constraints, signals)
        assert abs(got.weights.sum() - constraints.budget) < 1e-9
        assert np.all(got.weights >= -1e-12) and np.all(got.weights <= (constraints.max_weight or 1) + 1e-12)


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_returns_are_rejected_naming_the_asset(returns, bad):
    data = returns.copy()
    data[10, 3] = bad
    with pytest.raises(AllocationInputError, match=r"NaN or infinity in assets \[3\]"):
        calculate_allocations(data, "equal_weight")


def test_too_few_observations_states_the_minimum():
    with pytest.raises(AllocationInputError, match=r"need at least 30"):
        calculate_allocations(_returns(1, 29, 3), "min_variance")
    with pytest.raises(AllocationInputError, match=r"need at least 40"):
        calculate_allocations(_returns(1, 39, 20), "min_variance")


def test_zero_variance_asset_is_rejected(returns):
    data = returns.copy()
    data[:, 2] = 0.001
    with pytest.raises(AllocationInputError, match=r"assets \[2\] have zero variance"):
        calculate_allocations(data, "inverse_volatility")


def test_duplicated_asset_is_rejected_by_optimisers(returns):
    data = np.column_stack((returns, returns[:, 0]))
    for method in ("min_variance", "max_sharpe"):
        with pytest.raises(AllocationInputError, match="non-singular covariance"):
            calculate_allocations(data, method)


@pytest.mark.parametrize(
    ("constraints", "message"),
    [
        (dict(min_weight=0.2), r"min weights sum to 1.2, more than the invested budget"),
        (dict(max_weight=0.15), r"max weights sum to 0.9, less than the invested budget"),
        (dict(max_weight=0.16, cash_buffer=0.1), None),  # 0.96 >= 0.9: feasible thanks to the cash buffer
        (dict(min_weight=0.3, max_weight=0.2), r"min_weight exceeds max_weight for assets \[0, 1, 2"),
        (dict(max_weight=(0.5, 0.5)), r"max_weight has 2 entries for 6 assets"),
    ],
)
def test_infeasible_constraints_are_named(returns, constraints, message):
    if message is None:
        calculate_allocations(returns, "min_variance", constraints=AllocationConstraints(**constraints))
        return
    with pytest.raises(AllocationInputError, match=message):
        calculate_allocations(returns, "min_variance", constraints=AllocationConstraints(**constraints))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(cash_buffer=1.0), r"cash_buffer must be in \[0, 1\)"),
        (dict(cash_buffer=-0.1), r"cash_buffer must be in \[0, 1\)"),
        (dict(min_weight=-0.1), r"min_weight must be >= 0 when long_only"),
        (dict(periods_per_year=0), r"periods_per_year must be positive"),
        (dict(risk_free_rate=float("nan")), r"risk_free_rate must be finite"),
        (dict(max_weight=(0.5, float("inf"))), r"max_weight must be finite"),
    ],
)
def test_invalid_constraints_fail_at_construction(kwargs, message):
    with pytest.raises(AllocationInputError, match=message):
        AllocationConstraints(**kwargs)


def test_max_sharpe_without_positive_excess_return_is_rejected(returns):
    constraints = AllocationConstraints(risk_free_rate=10.0)
    with pytest.raises(AllocationInputError, match="no portfolio allowed by the constraints has a positive"):
        calculate_allocations(returns, "max_sharpe", constraints=constraints)


@pytest.mark.parametrize(
    ("signals", "constraints", "message"),
    [
        (None, AllocationConstraints(), "needs one signal per asset"),
        ([1.0, 2.0], AllocationConstraints(), r"signals must have shape \(6,\)"),
        ([1, 2, np.nan, 1, 1, 1], AllocationConstraints(), r"NaN or infinity at assets \[2\]"),
        ([-1, 0, -2, 0, -1, -3], AllocationConstraints(), "at least one positive signal"),
        ([1, 1, 0, 0, 0, 0], AllocationConstraints(max_weight=0.4), "can hold at most 0.8"),
        ([1, -1, 0, 0, 0, 0], AllocationConstraints(long_only=False), "positive sum"),
    ],
)
def test_bad_signals_are_rejected(returns, signals, constraints, message):
    with pytest.raises(AllocationInputError, match=message):
        calculate_allocations(returns, "signal_weighted", signals=signals, constraints=constraints)


def test_signals_given_to_another_method_are_rejected(returns):
    with pytest.raises(AllocationInputError, match="signals are only used by signal_weighted"):
        calculate_allocations(returns, "hrp", signals=np.ones(6))


@pytest.mark.parametrize(
    ("returns_arg", "method", "message"),
    [
        (np.zeros(100), "hrp", r"2-D array \(time × assets\)"),
        (np.zeros((100, 0)), "hrp", r"2-D array"),
        ([["a", "b"]], "hrp", "numeric array"),
        (None, "kelly", "unknown method 'kelly'; expected one of: equal_weight"),
    ],
)
def test_malformed_input_is_rejected(returns, returns_arg, method, message):
    with pytest.raises(AllocationInputError, match=message):
        calculate_allocations(returns if returns_arg is None else returns_arg, method)


def test_unknown_covariance_estimator_is_rejected(returns):
    with pytest.raises(AllocationInputError, match="unknown covariance 'oas'"):
        calculate_allocations(returns, "hrp", covariance="oas")


def test_optimisers_are_never_worse_than_cvxpy_on_random_constraint_sets():
    cp = importlib.import_module("cvxpy")
    checked = 0
    for seed in range(25):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(3, 15))
        data = _returns(seed=100 + seed, n_bars=200, n_assets=n)
        long_only = bool(rng.random() < 0.6)
        lo = rng.uniform(0, 0.5 / n, n) if long_only else rng.uniform(-0.5, 0, n)
        hi = lo + rng.uniform(0.1, 0.8, n)
        budget = float(rng.choice([1.0, 0.9, 0.7]))
        if not lo.sum() <= budget <= hi.sum():
            continue
        constraints = AllocationConstraints(
            long_only=long_only, min_weight=tuple(lo), max_weight=tuple(hi), cash_buffer=1 - budget
        )
        cov = np.cov(data, rowvar=False) * PPY
        excess = data.mean(axis=0) * PPY
        w = cp.Variable(n)
        box = [cp.sum(w) == budget, w >= lo, w <= hi]
        ref_var = cp.Problem(cp.Minimize(cp.quad_form(w, cov)), box).solve("CLARABEL")
        y, k = cp.Variable(n), cp.Variable()
        homogenised = [excess @ y == 1, cp.sum(y) == budget * k, y >= lo * k, y <= hi * k, k >= 0]
        sharpe_problem = cp.Problem(cp.Minimize(cp.quad_form(y, cov)), homogenised)
        sharpe_problem.solve("CLARABEL")

        min_var = calculate_allocations(data, "min_variance", constraints=constraints)
        assert min_var.volatility**2 <= ref_var * (1 + 1e-9), seed
        if sharpe_problem.status == cp.INFEASIBLE:  # no feasible portfolio has a positive excess return
            with pytest.raises(AllocationInputError, match="max_sharpe is undefined"):
                calculate_allocations(data, "max_sharpe", constraints=constraints)
            continue
        best = calculate_allocations(data, "max_sharpe", constraints=constraints)
        ref_sharpe = excess @ y.value / np.sqrt(y.value @ cov @ y.value)
        assert best.sharpe_ratio >= ref_sharpe - 1e-9, seed
        checked += 1
    assert checked >= 10


def test_optimisers_converge_on_nearly_collinear_returns_and_match_cvxpy():
    # Found beside the risk-parity stall: on ill-conditioned covariances the active-set solver stepped
    # along rounding noise (|p| ~ 1e-11 at the optimum) until its iteration budget ran out.
    cp = importlib.import_module("cvxpy")
    rng = np.random.default_rng(17)
    checked = 0
    for _ in range(40):
        data = _nearly_collinear_returns(rng) + rng.normal(0.0005, 0.001, 1)
        n = data.shape[1]
        cov = np.cov(data, rowvar=False) * PPY
        excess = data.mean(axis=0) * PPY
        w = cp.Variable(n)
        ref_var = cp.Problem(cp.Minimize(cp.quad_form(w, cov, assume_PSD=True)), [cp.sum(w) == 1, w >= 0]).solve(
            "CLARABEL"
        )
        min_var = calculate_allocations(data, "min_variance")
        assert min_var.volatility**2 <= ref_var * (1 + 1e-6)
        try:
            best = calculate_allocations(data, "max_sharpe")
        except AllocationInputError as exc:
            assert "max_sharpe is undefined" in str(exc)
            assert np.all(excess <= 1e-12)  # long-only: no asset beats the default risk-free rate 0
            continue
        y = cp.Variable(n)
        cp.Problem(cp.Minimize(cp.quad_form(y, cov, assume_PSD=True)), [excess @ y == 1, y >= 0]).solve("CLARABEL")
        ref_sharpe = excess @ y.value / np.sqrt(y.value @ cov @ y.value)
        assert best.sharpe_ratio >= ref_sharpe * (1 - 1e-6)
        checked += 1
    assert checked >= 20
