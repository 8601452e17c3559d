"""Numerical kernels behind `allocation`: constraint-set fitting and the three optimisers.

The feasible set throughout is the budget box {w : sum(w) = budget, lo <= w <= hi}; callers have already
checked that it is non-empty. Everything is dense numpy; no scipy.
"""

import numpy as np

from aiotrade.quant.allocation_errors import AllocationConvergenceError, AllocationInputError

FloatArray = np.ndarray


def project_onto_budget_box(v: FloatArray, lo: FloatArray, hi: FloatArray, budget: float) -> FloatArray:
    """Euclidean projection of `v` onto the budget box; the result lies within [lo, hi] exactly."""
    # w(tau) = clip(v - tau, lo, hi) and sum(w(tau)) is piecewise linear and non-increasing in tau,
    # with kinks at v - hi and v - lo: locate the segment holding `budget` and interpolate.
    taus = np.unique(np.concatenate((v - hi, v - lo)))
    sums = np.clip(v[None, :] - taus[:, None], lo, hi).sum(axis=1)
    k = int(np.searchsorted(-sums, -budget, side="left"))
    if k == 0:
        tau = taus[0]
    elif k == taus.size:
        tau = taus[-1]
    else:
        span = sums[k - 1] - sums[k]
        frac = 0.0 if span <= 0.0 else (sums[k - 1] - budget) / span
        tau = taus[k - 1] + frac * (taus[k] - taus[k - 1])
    return np.clip(v - tau, lo, hi)


def scale_into_budget_box(v: FloatArray, lo: FloatArray, hi: FloatArray, budget: float) -> FloatArray | None:
    """`clip(c * v, lo, hi)` with the scale c >= 0 that makes it sum to `budget`, for v >= 0.

    Keeps the ratios between unclipped assets, which is what a heuristic's weights mean. Returns None
    when no scale reaches the budget (the clipped assets cannot absorb it).
    """
    pos = v > 0.0
    scales = np.concatenate(([0.0], lo[pos] / v[pos], hi[pos] / v[pos]))
    scales = np.unique(scales[scales >= 0.0])
    sums = np.clip(scales[:, None] * v[None, :], lo, hi).sum(axis=1)  # non-decreasing in the scale
    tol = 1e-12 * max(1.0, abs(budget))
    if budget < sums[0] - tol or budget > sums[-1] + tol:
        return None
    k = int(np.searchsorted(sums, budget, side="left"))
    if k == 0:
        scale = scales[0]
    elif k == scales.size:
        scale = scales[-1]
    else:
        span = sums[k] - sums[k - 1]
        frac = 0.0 if span <= 0.0 else (budget - sums[k - 1]) / span
        scale = scales[k - 1] + frac * (scales[k] - scales[k - 1])
    return np.clip(scale * v, lo, hi)


def min_variance(cov: FloatArray, lo: FloatArray, hi: FloatArray, budget: float) -> FloatArray:
    """The unique minimiser of w'Σw over the budget box (Σ positive definite)."""
    n = cov.shape[0]
    # Warm start: the unconstrained minimum-variance portfolio, projected into the box.
    unconstrained = np.linalg.solve(cov, np.ones(n))
    start = project_onto_budget_box(budget * unconstrained / unconstrained.sum(), lo, hi, budget)
    g = np.vstack((np.eye(n), -np.eye(n)))
    h = np.concatenate((lo, -hi))
    return _active_set_qp(cov, np.ones((1, n)), g, h, start)


def max_sharpe(cov: FloatArray, excess: FloatArray, lo: FloatArray, hi: FloatArray, budget: float) -> FloatArray:
    """The maximiser of excess'w / sqrt(w'Σw) over the budget box.

    Solved as the convex problem min y'Σy s.t. excess'y = 1 in the homogenised variable y = κw, κ > 0
    (Cornuejols & Tütüncü), where the box becomes y - (lo/budget)·sum(y) >= 0, (hi/budget)·sum(y) - y >= 0
    and sum(y) >= 0.
    """
    n = cov.shape[0]
    best = _max_linear_vertex(excess, lo, hi, budget)
    best_excess = float(excess @ best)
    if best_excess <= 1e-12:
        raise AllocationInputError(
            "max_sharpe is undefined: no portfolio allowed by the constraints has a positive expected "
            f"excess return over the risk-free rate (best achievable {best_excess:.3g} per year)"
        )
    # Start from the most central feasible point that still has a clearly positive excess return.
    centre = project_onto_budget_box(np.full(n, budget / n), lo, hi, budget)
    centre_excess = float(excess @ centre)
    if centre_excess >= 0.5 * best_excess:
        start_w = centre
    else:
        t = (0.5 * best_excess - centre_excess) / (best_excess - centre_excess)
        start_w = (1.0 - t) * centre + t * best
    start = start_w / float(excess @ start_w)
    ones = np.ones((1, n))
    g = np.vstack((np.eye(n) - np.outer(lo / budget, ones), np.outer(hi / budget, ones) - np.eye(n), ones))
    y = _active_set_qp(cov, excess[None, :], g, np.zeros(2 * n + 1), start)
    return budget * y / y.sum()


def equal_risk_contribution(cov: FloatArray) -> FloatArray:
    """The unique long-only portfolio (summing to 1) whose assets contribute equally to its variance.

    Newton's method on Spinu's strictly convex formulation min ½x'Cx - (1/n)·Σ log x_i over the correlation
    matrix C (better conditioned than Σ); its minimiser has x_i (Cx)_i = 1/n, and x / σ rescaled is the ERC
    portfolio for Σ.
    """
    n = cov.shape[0]
    sigma = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sigma, sigma)
    target = 1.0 / n
    x = np.full(n, 1.0 / np.sqrt(corr.sum()))  # x'Cx = 1 at the start, as at the optimum

    def objective(z: FloatArray) -> float:
        return 0.5 * float(z @ corr @ z) - target * float(np.log(z).sum())

    best_x, best_residual, stalled = x, np.inf, 0
    for _ in range(_ERC_MAX_STEPS):
        cx = corr @ x
        residual = float(np.max(np.abs(x * cx - target)))
        if residual < best_residual:
            best_x, best_residual, stalled = x, residual, 0
        else:
            stalled += 1
        if best_residual <= _ERC_EXACT or (stalled >= 3 and best_residual <= _ERC_ACCEPTED):
            # Near the optimum the residual settles on a rounding floor set by C's conditioning;
            # three steps without improving on it mean there is nothing left to gain.
            w = best_x / sigma
            return w / w.sum()
        grad = cx - target / x
        step = np.linalg.solve(corr + np.diag(target / x**2), grad)
        decrement = float(grad @ step)
        if n * decrement < 1.0 / 16.0:
            # n·f is self-concordant, and below this Newton decrement its full step stays inside the
            # domain and converges quadratically. A line search here would compare objective values
            # that differ by less than their rounding and stall short of the optimum.
            x = x - step
            continue
        t = 1.0
        while np.any(x - t * step <= 0.0):
            t *= 0.5
        f0 = objective(x)
        while t > 1e-12 and objective(x - t * step) > f0 - 0.25 * t * decrement:
            t *= 0.5
        x = x - t * step
    raise AllocationConvergenceError(
        f"risk_parity: Newton iteration did not converge in {_ERC_MAX_STEPS} steps "
        f"(largest risk-contribution error {best_residual:.2g})"
    )


# Residual of x_i (Cx)_i = 1/n: converged outright, or accepted once rounding stops further progress.
# The floor grows with C's condition number (about 1e-10 at 1e8, for returns that are nearly collinear);
# 1e-8 on contributions of 1/n still makes the shares equal to 1e-6 relative for n = 100.
_ERC_EXACT = 1e-14
_ERC_ACCEPTED = 1e-8
_ERC_MAX_STEPS = 100


def _max_linear_vertex(c: FloatArray, lo: FloatArray, hi: FloatArray, budget: float) -> FloatArray:
    """A maximiser of c'w over the budget box: fill the budget into the best assets first."""
    order = np.argsort(-c, kind="stable")
    capacity = (hi - lo)[order]
    room = budget - lo.sum()
    before = np.cumsum(capacity) - capacity
    w = lo.copy()
    w[order] += np.clip(room - before, 0.0, capacity)
    return w


def _active_set_qp(q: FloatArray, a: FloatArray, g: FloatArray, h: FloatArray, x0: FloatArray) -> FloatArray:
    """Minimise ½x'Qx subject to the equalities a·x = a·x0 and G·x >= h, from the feasible point x0.

    Primal active-set method (Nocedal & Wright, Algorithm 16.3) for positive definite Q: exact at
    termination up to rounding, finite in practice for these small dense problems.
    """
    n = x0.size
    m_eq = a.shape[0]
    x = x0.copy()
    working: list[int] = []
    for _ in range(20 * (n + h.size)):
        grad = q @ x
        rows = np.vstack((a, g[working])) if working else a
        m = rows.shape[0]
        kkt = np.zeros((n + m, n + m))
        kkt[:n, :n] = q
        kkt[:n, n:] = rows.T
        kkt[n:, :n] = rows
        sol = np.linalg.solve(kkt, np.concatenate((-grad, np.zeros(m))))
        p = sol[:n]
        # p is zero when it is tiny, or when the decrease it promises (½p'Qp) is below the objective's
        # rounding: with Q ill-conditioned (nearly collinear returns) the computed p at the optimum is
        # noise of ~1e-11 that would otherwise be stepped along until the iteration budget ran out.
        if np.max(np.abs(p)) <= 1e-13 * max(1.0, np.max(np.abs(x))) or float(p @ q @ p) <= _NEGLIGIBLE_DECREASE * max(
            float(x @ q @ x), np.finfo(float).tiny
        ):
            if not working:
                return x
            multipliers = -sol[n + m_eq :]
            worst = int(np.argmin(multipliers))
            if multipliers[worst] >= -1e-12 * max(1.0, np.max(np.abs(grad))):
                return x
            working.pop(worst)
            continue
        gp = g @ p
        blocking = gp < -1e-13 * np.max(np.abs(p))
        blocking[working] = False
        ratios = np.full(h.size, np.inf)
        slack = np.maximum(g[blocking] @ x - h[blocking], 0.0)
        ratios[blocking] = slack / -gp[blocking]
        j = int(np.argmin(ratios))
        if ratios[j] < 1.0:
            x = x + ratios[j] * p
            working.append(j)
        else:
            x = x + p
    raise AllocationConvergenceError("active-set solver exceeded its iteration budget")


# A step whose objective decrease is below this fraction of the objective changes nothing that float64
# can represent in it (weights move by ~1e-8 relative at most on a well-conditioned problem).
_NEGLIGIBLE_DECREASE = 1e-16
