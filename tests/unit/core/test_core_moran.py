"""Moran's I against the formula computed by hand, and the analytic variance of squidpy/pysal."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy import stats

from core.analysis.cluster import bh_fdr
from core.analysis.spatial import morans_i, nhood_enrichment, spatial_graph


def _hand_moran(x: np.ndarray, A: np.ndarray) -> tuple[float, float, float]:
    """Textbook Moran's I with row-standardised weights, by explicit loops."""
    n = len(x)
    W = np.zeros_like(A, dtype=float)
    for i in range(n):
        deg = A[i].sum()
        for j in range(n):
            W[i, j] = A[i, j] / deg if deg else 0.0
    z = x - x.mean()
    num = sum(W[i, j] * z[i] * z[j] for i in range(n) for j in range(n))
    den = sum(z[i] ** 2 for i in range(n))
    s0 = W.sum()
    i_val = n / s0 * num / den
    s1 = 0.5 * sum((W[i, j] + W[j, i]) ** 2 for i in range(n) for j in range(n))
    s2 = sum((W[i].sum() + W[:, i].sum()) ** 2 for i in range(n))
    e = -1.0 / (n - 1)
    var = (n * n * s1 - n * s2 + 3 * s0 * s0) / ((n - 1) * (n + 1) * s0 * s0) - e * e
    return i_val, var, e


def test_morans_i_equals_hand_formula_on_small_inputs() -> None:
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 10, size=(40, 2))
    A = spatial_graph(xy, "generic", k_generic=5)
    X = rng.poisson(2.0, size=(40, 6)).astype(float)
    X[:, 0] = xy[:, 0]  # strongly autocorrelated column
    res = morans_i(sp.csr_matrix(X), A)
    for g in range(X.shape[1]):
        i_val, var, e = _hand_moran(X[:, g], A.toarray())
        assert abs(res["I"][g] - i_val) < 1e-10
        z = (i_val - e) / np.sqrt(var)
        p = stats.norm.sf(z) if z > 0 else stats.norm.cdf(z)
        assert abs(res["z"][g] - z) < 1e-8
        assert abs(res["pval_norm"][g] - p) < 1e-10
    assert res["I"][0] > 0.5 and res["pval_norm"][0] < 1e-6
    assert np.allclose(res["pval_norm_fdr_bh"], bh_fdr(res["pval_norm"]))


def test_bh_fdr_matches_definition() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.5])
    m = len(p)
    order = np.argsort(p)
    expected = np.empty(m)
    running = 1.0
    for rank in range(m, 0, -1):
        running = min(running, p[order[rank - 1]] * m / rank)
        expected[order[rank - 1]] = running
    assert np.allclose(bh_fdr(p), expected)


def test_visium_graph_is_the_first_hexagonal_ring() -> None:
    r, c = np.divmod(np.arange(400), 20)
    xy = np.stack([c * 100.0 + (r % 2) * 50.0, r * 100.0 * np.sqrt(3) / 2], 1)
    A = spatial_graph(xy, "visium")
    deg = np.asarray(A.sum(axis=1)).ravel()
    interior = (r > 0) & (r < 19) & (c > 0) & (c < 19)
    assert np.all(deg[interior] == 6)
    assert (A != A.T).nnz == 0


def test_nhood_enrichment_detects_segregation() -> None:
    r, c = np.divmod(np.arange(900), 30)
    xy = np.stack([c * 8.0, r * 8.0], 1)
    A = spatial_graph(xy, "visium_hd")
    labels = (c >= 15).astype(np.int64)  # two halves
    z, obs = nhood_enrichment(A, labels, n_perms=50, seed=0)
    assert z[0, 0] > 10 and z[1, 1] > 10 and z[0, 1] < -10
    assert obs[0, 1] == obs[1, 0]
