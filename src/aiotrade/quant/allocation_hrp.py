"""Hierarchical risk parity (López de Prado, 2016) in numpy.

Correlation distance d_ij = sqrt((1 - ρ_ij) / 2), single-linkage clustering on d itself (as PyPortfolioOpt
and Riskfolio-Lib do, rather than the Euclidean "distance of distances" of the paper's listing),
quasi-diagonal ordering from the dendrogram, then recursive bisection of that order into halves, each
split by inverse cluster variance with inverse-variance weights inside a cluster.
"""

import numpy as np

FloatArray = np.ndarray


def hrp_weights(cov: FloatArray) -> FloatArray:
    """HRP weights (positive, summing to 1) for the covariance matrix `cov`."""
    sigma = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sigma, sigma)
    dist = np.sqrt(np.clip((1.0 - corr) / 2.0, 0.0, 1.0))
    order = quasi_diagonal_order(single_linkage(dist))
    return _recursive_bisection(cov, order)


def single_linkage(dist: FloatArray) -> FloatArray:
    """Single-linkage dendrogram of a square distance matrix, in scipy's linkage-matrix format.

    Row i merges clusters Z[i, 0] < Z[i, 1] at height Z[i, 2] into cluster n + i of size Z[i, 3]. Built
    like scipy's `mst_single_linkage` (Prim's minimum spanning tree, stable sort by height, union-find
    labels) so that the tree, ties included, is the same.
    """
    n = dist.shape[0]
    merged = np.zeros(n, dtype=bool)
    nearest = np.full(n, np.inf)
    edges = np.empty((n - 1, 3))
    x = 0
    for k in range(n - 1):
        merged[x] = True
        nearest = np.minimum(nearest, dist[x])
        candidates = np.where(merged, np.inf, nearest)
        y = int(np.argmin(candidates))
        edges[k] = (x, y, candidates[y])
        x = y
    edges = edges[np.argsort(edges[:, 2], kind="stable")]

    parent = np.arange(2 * n - 1)
    size = np.ones(2 * n - 1)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = int(parent[root])
        while parent[i] != root:  # path compression
            parent[i], i = root, int(parent[i])
        return root

    link = np.empty((n - 1, 4))
    for i, (a, b, height) in enumerate(edges):
        ra, rb = sorted((find(int(a)), find(int(b))))
        new = n + i
        parent[ra] = parent[rb] = new
        size[new] = size[ra] + size[rb]
        link[i] = (ra, rb, height, size[new])
    return link


def quasi_diagonal_order(link: FloatArray) -> list[int]:
    """Leaves of the dendrogram left to right (pre-order, first-listed child first)."""
    n = link.shape[0] + 1
    order: list[int] = []
    stack = [2 * n - 2]
    while stack:
        node = stack.pop()
        if node < n:
            order.append(node)
        else:
            left, right = link[node - n, :2].astype(int)
            stack.extend((right, left))
    return order


def _recursive_bisection(cov: FloatArray, order: list[int]) -> FloatArray:
    weights = np.ones(cov.shape[0])
    clusters = [np.asarray(order)]
    while clusters:
        halves = [half for c in clusters if c.size > 1 for half in (c[: c.size // 2], c[c.size // 2 :])]
        for first, second in zip(halves[::2], halves[1::2], strict=True):
            var_first, var_second = _cluster_variance(cov, first), _cluster_variance(cov, second)
            alpha = 1.0 - var_first / (var_first + var_second)
            weights[first] *= alpha
            weights[second] *= 1.0 - alpha
        clusters = halves
    return weights


def _cluster_variance(cov: FloatArray, items: FloatArray) -> float:
    """Variance of the inverse-variance portfolio of a cluster."""
    sub = cov[np.ix_(items, items)]
    ivp = 1.0 / np.diag(sub)
    ivp /= ivp.sum()
    return float(ivp @ sub @ ivp)
