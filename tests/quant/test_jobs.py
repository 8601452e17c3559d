"""The worker entry points give exactly the numbers of the in-loop calls they replace, and survive pickling.

Each `reference_*` below is what the service does on the event loop today (services/risk/analytics.py,
services/portfolio.py, services/live.py), written out; the job must agree to the last bit.
"""

from __future__ import annotations

import dataclasses
import pickle
import tracemalloc
from typing import Any

import numpy as np
import pytest

from aiotrade.domain.candles import CandleSeries, aligned_closes
from aiotrade.quant import allocation as qalloc
from aiotrade.quant import jobs
from aiotrade.quant import probability as qprob
from aiotrade.quant import risk as qrisk
from aiotrade.quant.allocation_errors import AllocationConvergenceError
from aiotrade.quant.errors import QuantInputError

DAY = 86_400_000
T0 = 1_700_006_400_000  # a UTC midnight


def candle_series(closes: np.ndarray, *, skip: tuple[int, ...] = (), offset: int = 0) -> CandleSeries:
    """Daily candles with the closes as exact 8-decimal text, some days missing (as a venue may leave gaps)."""
    rows = [[T0 + (i + offset) * DAY, "1", "1", "1", f"{c:.8f}", "1"] for i, c in enumerate(closes) if i not in skip]
    return CandleSeries.from_rows(rows)


def columns(series: list[CandleSeries]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """What a service hands a job: each series' open times and float closes."""
    return [s.timestamps for s in series], [s.closes() for s in series]


@pytest.fixture(scope="module")
def panel() -> list[CandleSeries]:
    rng = np.random.default_rng(11)
    n = 400
    factor = rng.standard_t(5, n) * 0.02
    series = []
    for j, beta in enumerate((1.2, 0.8, 1.5, 0.5)):
        closes = 100.0 * np.exp(np.cumsum(beta * factor + rng.normal(0.0003, 0.015, n)))
        series.append(candle_series(closes, skip=(7 * j + 3, 100 + j), offset=j % 2))
    return series


# ----- probability -------------------------------------------------------------------------------


def reference_probability(closes: np.ndarray, **kw: Any) -> tuple[Any, ...]:
    log_returns = np.diff(np.log(closes))
    dd = qprob.estimate_drift_diffusion(log_returns)
    bracket = {k: kw[k] for k in ("entry", "take_profit", "stop_loss", "side")}
    outcome = qprob.trade_outcome(**bracket, mu=dd.mu, sigma=dd.sigma, fee_rate=kw["fee_rate"])
    above = (
        qprob.probability_above(kw["entry"], kw["level"], horizon=kw["horizon_bars"], mu=dd.mu, sigma=dd.sigma)
        if kw["level"] is not None
        else None
    )
    mc = qprob.monte_carlo_outcome(
        log_returns, **bracket, n_steps=kw["horizon_bars"], seed=kw["seed"], n_paths=kw["paths"], level=kw["level"],
        fee_rate=kw["fee_rate"],
    )  # fmt: skip
    return dd, outcome, above, mc


@pytest.mark.parametrize(
    ("side", "take_profit", "stop_loss", "level"),
    [("long", 1.25, 0.85, 1.05), ("short", 0.8, 1.2, None)],
    ids=["long-with-level", "short-without-level"],
)
def test_probability_job_gives_the_in_loop_numbers_exactly(
    panel: list[CandleSeries], side: str, take_profit: float, stop_loss: float, level: float | None
) -> None:
    closes = panel[0].closes()
    entry = float(closes[-1])
    kw: dict[str, Any] = {
        "entry": entry, "take_profit": entry * take_profit, "stop_loss": entry * stop_loss, "side": side,
        "horizon_bars": 120, "paths": 3_000, "seed": 42, "level": None if level is None else entry * level,
        "fee_rate": 0.001,
    }  # fmt: skip
    dd, outcome, above, mc = reference_probability(closes, **kw)
    result = jobs.probability_job(closes, **kw)
    assert (result.drift, result.outcome, result.above_level, result.monte_carlo) == (dd, outcome, above, mc)
    assert pickle.loads(pickle.dumps(result)) == result


def test_probability_job_memory_stays_within_the_chunk_bound_at_the_maximum_path_count(
    panel: list[CandleSeries],
) -> None:
    closes = panel[1].closes()
    entry = float(closes[-1])
    kw: dict[str, Any] = {
        "entry": entry, "take_profit": entry * 1.5, "stop_loss": entry * 0.6, "side": "long",
        "horizon_bars": 100, "paths": 100_000, "seed": 1,
    }  # fmt: skip
    tracemalloc.start()
    try:
        jobs.probability_job(closes, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 1e7 cells: unchunked, indices + increments + log prices would be 240 MB. Chunks of 1e6 cells: ≈ 32 MB.
    assert peak < 40_000_000


def test_probability_job_refuses_a_non_positive_close_with_a_quant_error(panel: list[CandleSeries]) -> None:
    closes = panel[0].closes().copy()
    closes[10] = 0.0
    with pytest.raises(QuantInputError, match="log_returns"):
        jobs.probability_job(
            closes, entry=100.0, take_profit=120.0, stop_loss=90.0, side="long", horizon_bars=10, paths=100, seed=0
        )


# ----- portfolio risk ----------------------------------------------------------------------------


def reference_portfolio_risk(series: list[CandleSeries], n_assets: int, bench: int | None, **kw: Any) -> Any:
    timestamps, closes = aligned_closes(series)
    returns = closes[1:] / closes[:-1] - 1.0
    weights = np.full(n_assets, 1.0 / n_assets)
    risk = qrisk.portfolio_risk(
        returns[:, :n_assets], weights, benchmark=returns[:, bench] if bench is not None else None, **kw
    )
    return int(timestamps[0]), int(timestamps[-1]), risk


RISK_SETTINGS = {"confidence": 0.99, "horizon": 5.0, "periods_per_year": 365.0, "risk_free_rate": 0.03}


@pytest.mark.parametrize(("n_assets", "bench"), [(3, 3), (4, 1), (4, None)], ids=["bench-apart", "bench-held", "none"])
def test_portfolio_risk_job_gives_the_in_loop_numbers_exactly(
    panel: list[CandleSeries], n_assets: int, bench: int | None
) -> None:
    start, end, expected = reference_portfolio_risk(panel, n_assets, bench, **RISK_SETTINGS)
    stamps, closes = columns(panel)
    result = jobs.portfolio_risk_job(
        stamps, closes, n_assets=n_assets, weights=None, benchmark_column=bench, **RISK_SETTINGS
    )
    assert (result.start_ms, result.end_ms) == (start, end)
    assert_same_fields(result.risk, expected)
    assert_same_fields(pickle.loads(pickle.dumps(result)).risk, expected)


def test_portfolio_risk_job_with_weights_matches_and_refuses_too_little_overlap(panel: list[CandleSeries]) -> None:
    stamps, closes = columns(panel)
    weights = np.array([0.4, 0.3, 0.2, 0.1])
    result = jobs.portfolio_risk_job(
        stamps, closes, n_assets=4, weights=weights, benchmark_column=None, **RISK_SETTINGS
    )
    _, matrix = aligned_closes(panel)
    returns = matrix[1:] / matrix[:-1] - 1.0
    assert_same_fields(result.risk, qrisk.portfolio_risk(returns, weights, **RISK_SETTINGS))

    short = [s.last(20) for s in panel]
    with pytest.raises(jobs.InsufficientHistory, match="common candles; at least 31") as refused:
        jobs.portfolio_risk_job(*columns(short), n_assets=4, weights=None, benchmark_column=None, **RISK_SETTINGS)
    again = pickle.loads(pickle.dumps(refused.value))  # the error crosses the process boundary intact
    assert type(again) is jobs.InsufficientHistory and str(again) == str(refused.value)


def test_the_jobs_alignment_is_the_domain_alignment(panel: list[CandleSeries]) -> None:
    common, matrix = jobs.aligned_closes(*columns(panel))
    expected_common, expected = aligned_closes(panel)
    assert common.tolist() == expected_common.tolist()
    assert np.array_equal(matrix, expected)
    with pytest.raises(QuantInputError, match="ascending"):
        jobs.aligned_closes([np.array([2, 1])], [np.array([1.0, 2.0])])


# ----- allocations -------------------------------------------------------------------------------


@pytest.mark.parametrize("covariance", ["sample", "ledoit_wolf"])
@pytest.mark.parametrize("method", [m.value for m in qalloc.AllocationMethod])
def test_allocation_job_gives_the_in_loop_numbers_exactly(
    panel: list[CandleSeries], method: str, covariance: str
) -> None:
    constraints = qalloc.AllocationConstraints(
        min_weight=0.05, max_weight=0.6, cash_buffer=0.02, risk_free_rate=0.03, periods_per_year=365.0
    )
    signals = [0.5, 1.0, -0.2, 0.7] if method == "signal_weighted" else None
    _, matrix = aligned_closes(panel)
    returns = matrix[1:] / matrix[:-1] - 1.0
    try:
        expected = qalloc.calculate_allocations(
            returns, method, constraints=constraints, signals=signals, covariance=covariance
        )
    except AllocationConvergenceError as exc:  # then the job must fail the same way
        with pytest.raises(AllocationConvergenceError, match=str(exc)):
            jobs.allocation_job(
                *columns(panel), method=method, constraints=constraints, signals=signals, covariance=covariance
            )
        return
    result = jobs.allocation_job(
        *columns(panel), method=method, constraints=constraints, signals=signals, covariance=covariance
    )
    assert_same_fields(result, expected)
    assert_same_fields(pickle.loads(pickle.dumps(result)), expected)


# ----- live performance --------------------------------------------------------------------------


def test_performance_job_gives_the_in_loop_numbers_exactly() -> None:
    rng = np.random.default_rng(5)
    equity = 10_000.0 * np.cumprod(1.0 + rng.normal(0.0002, 0.004, 500))
    times = 1_700_000_000.0 + 60.0 * np.arange(500) + rng.uniform(-1, 1, 500)
    spacing = float(np.median(np.diff(times)))
    ppy = 365 * 86400 / spacing
    r = equity[1:] / equity[:-1] - 1
    result = jobs.performance_job(equity, times)
    assert result == jobs.PerformanceRatios(
        periods_per_year=ppy,
        volatility=qrisk.volatility(r, periods_per_year=ppy),
        sharpe=qrisk.sharpe_ratio(r, periods_per_year=ppy, risk_free_rate=0.0),
        sortino=qrisk.sortino_ratio(r, periods_per_year=ppy, risk_free_rate=0.0),
        max_drawdown=qrisk.max_drawdown(r),
        calmar=qrisk.calmar_ratio(r, periods_per_year=ppy),
    )
    with pytest.raises(QuantInputError):  # flat equity: the ratios are undefined, as in the loop
        jobs.performance_job(np.full(100, 5.0), times[:100])


def test_warm_up_runs_every_job() -> None:
    jobs.warm_up()


def assert_same_fields(actual: Any, expected: Any) -> None:
    """Every dataclass field equal to the last bit (arrays element by element, NaN nowhere)."""
    assert type(actual) is type(expected)
    for field in dataclasses.fields(expected):
        a, e = getattr(actual, field.name), getattr(expected, field.name)
        if isinstance(e, np.ndarray):
            assert np.array_equal(a, e), field.name
        else:
            assert a == e, field.name
