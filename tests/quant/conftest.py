"""Fixed market data for the quant tests: a seeded, fat-tailed panel of daily returns and its benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest


@dataclass(frozen=True)
class Market:
    """750 daily simple returns of 4 assets driven by a Student-t market factor, plus that factor."""

    returns: np.ndarray  # (750, 4)
    benchmark: np.ndarray  # (750,)
    weights: np.ndarray  # (4,), sums to 1
    periods_per_year: float = 365.0
    risk_free_rate: float = 0.04  # annual


def _standard_t(rng: np.random.Generator, df: float, size: tuple[int, ...] | int) -> np.ndarray:
    """Student-t draws rescaled to unit variance (var of t_df is df / (df − 2))."""
    return rng.standard_t(df, size=size) / np.sqrt(df / (df - 2.0))


@pytest.fixture(scope="session")
def market() -> Market:
    rng = np.random.default_rng(20_240_517)
    n = 750
    market_factor = 0.0008 + 0.025 * _standard_t(rng, 5.0, n)
    betas = np.array([1.2, 0.8, 1.5, 0.3])
    drifts = np.array([0.0004, 0.0002, -0.0001, 0.0003])
    idio_vols = np.array([0.02, 0.015, 0.03, 0.01])
    idio = np.column_stack([_standard_t(rng, df, n) for df in (4.0, 6.0, 5.0, 8.0)])
    returns = market_factor[:, None] * betas + drifts + idio * idio_vols
    weights = np.array([0.4, 0.3, 0.2, 0.1])
    for array in (returns, market_factor, weights):
        array.flags.writeable = False
    return Market(returns=returns, benchmark=market_factor, weights=weights)
