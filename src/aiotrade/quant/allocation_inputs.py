"""Input checks and covariance estimation for `allocation`."""

import numpy as np

from aiotrade.quant.allocation_errors import AllocationInputError

MIN_OBSERVATIONS = 30
"""Fewest bars accepted; with n assets the minimum is max(MIN_OBSERVATIONS, 2·n)."""


def minimum_observations(n_assets: int) -> int:
    """Fewest bars accepted for `n_assets` assets."""
    return max(MIN_OBSERVATIONS, 2 * n_assets)


def validated_returns(returns: np.ndarray) -> np.ndarray:
    """`returns` as a finite float (time × assets) array with enough rows and no constant column."""
    try:
        data = np.asarray(returns, dtype=float)
    except (TypeError, ValueError) as exc:
        raise AllocationInputError(f"returns must be a numeric array: {exc}") from exc
    if data.ndim != 2 or data.shape[1] == 0:
        raise AllocationInputError(f"returns must be a 2-D array (time × assets), got shape {data.shape}")
    n_obs, n_assets = data.shape
    if not np.all(np.isfinite(data)):
        cols = np.flatnonzero(~np.all(np.isfinite(data), axis=0)).tolist()
        raise AllocationInputError(f"returns contain NaN or infinity in assets {cols}")
    needed = minimum_observations(n_assets)
    if n_obs < needed:
        raise AllocationInputError(
            f"{n_obs} observations are too few for {n_assets} assets: need at least {needed} "
            f"(max({MIN_OBSERVATIONS}, 2 × assets))"
        )
    constant = np.flatnonzero(np.all(data == data[0], axis=0)).tolist()
    if constant:
        raise AllocationInputError(f"assets {constant} have zero variance (constant returns)")
    return data


def estimate_covariance(data: np.ndarray, ledoit_wolf: bool) -> tuple[np.ndarray, float | None]:
    """Per-period covariance: sample (ddof=1), or Ledoit-Wolf with its shrinkage intensity."""
    centred = data - data.mean(axis=0)
    n_obs, n_assets = data.shape
    if not ledoit_wolf:
        return centred.T @ centred / (n_obs - 1), None
    # Ledoit & Wolf (2004), exactly as sklearn.covariance.ledoit_wolf computes it.
    emp = centred.T @ centred / n_obs
    mu = np.trace(emp) / n_assets
    sq = centred**2
    beta_ = float((sq.T @ sq).sum()) / n_obs
    delta_ = float((emp**2).sum())
    beta = (beta_ - delta_) / (n_assets * n_obs)
    delta = (delta_ - 2.0 * mu * np.trace(emp) + n_assets * mu**2) / n_assets
    # delta = 0 means the sample covariance already is a scaled identity: nothing to shrink.
    shrinkage = 0.0 if delta <= 0.0 else min(max(beta, 0.0), delta) / delta
    shrunk = (1.0 - shrinkage) * emp
    shrunk.flat[:: n_assets + 1] += shrinkage * mu
    return shrunk, float(shrinkage)


def require_positive_definite(cov: np.ndarray, method: str) -> None:
    """Raise unless the covariance is comfortably non-singular (needed for a unique optimum)."""
    sigma = np.sqrt(np.diag(cov))
    eigenvalues = np.linalg.eigvalsh(cov / np.outer(sigma, sigma))
    if eigenvalues[0] <= 1e-10 * eigenvalues[-1]:
        raise AllocationInputError(
            f"{method} needs a non-singular covariance: some assets' returns are (nearly) linear "
            "combinations of others, e.g. a duplicated column"
        )
