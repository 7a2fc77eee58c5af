"""Sparse preprocessing equals its dense reference; seeded steps are reproducible."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from core.analysis import cluster as cl
from core.analysis import preprocess as pp


def _counts(n: int = 300, g: int = 120, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix(
        rng.poisson(rng.lognormal(-0.5, 1.0, size=g), size=(n, g)).astype(np.float32)
    )


def test_normalize_log1p_matches_dense() -> None:
    X = _counts()
    dense = X.toarray().astype(np.float64)
    ref = np.log1p(dense / dense.sum(1, keepdims=True) * 1e4)
    out = pp.normalize_log1p(X)
    assert np.allclose(out.toarray(), ref, atol=1e-4)
    assert np.shares_memory(out.indices, X.indices)  # no second copy of the index structure


def test_pca_matches_dense_svd_of_centred_matrix() -> None:
    rng = np.random.default_rng(1)
    X = _counts(400, 80, 1).toarray()
    X += rng.poisson(np.outer(rng.gamma(1, 1, 400), rng.gamma(1, 3, 80)))  # low-rank signal
    Xl = pp.normalize_log1p(sp.csr_matrix(X))
    scores, evr = pp.pca_sparse(Xl, n_comps=10, seed=0, n_iter=8)
    D = Xl.toarray().astype(np.float64)
    D -= D.mean(0)
    U, s, _ = np.linalg.svd(D, full_matrices=False)
    ref_evr = s[:10] ** 2 / (s**2).sum()
    assert np.allclose(evr[:3], ref_evr[:3], rtol=1e-4)  # the signal components exactly
    assert np.allclose(evr, ref_evr, rtol=2e-2)  # the noise tail as randomised SVD allows
    # same subspace, up to sign
    for k in range(5):
        c = abs(np.corrcoef(scores[:, k], U[:, k] * s[k])[0, 1])
        assert c > 0.999


def test_hvg_picks_the_variable_genes() -> None:
    rng = np.random.default_rng(2)
    X = _counts(500, 200, 2).toarray()
    X[:250, :10] = 0  # ten genes switched off in half the spots, doubled in the other half
    X[250:, :10] *= 2
    hv = pp.highly_variable_genes(pp.normalize_log1p(sp.csr_matrix(X)), n_top=20)
    assert len(set(range(10)) & set(hv.tolist())) >= 8
    del rng


def test_exact_knn_equals_brute_force() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((500, 8)).astype(np.float32)
    idx, dist = pp.knn_graph(x, k=5)
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    ref = np.argsort(d, axis=1)[:, :5]
    assert np.mean(np.sort(idx, 1) == np.sort(ref, 1)) > 0.999
    assert np.allclose(np.sort(dist, 1), np.sqrt(np.sort(d, 1)[:, :5]), atol=1e-3)


def test_leiden_is_seeded_and_finds_blocks() -> None:
    rng = np.random.default_rng(5)
    x = np.vstack([rng.normal(m, 0.3, size=(150, 5)) for m in (0, 4, 8)]).astype(np.float32)
    idx, _ = pp.knn_graph(x, 10)
    A = pp.knn_to_adjacency(idx, len(x))
    a = cl.leiden(A, 1.0, seed=3)
    b = cl.leiden(A, 1.0, seed=3)
    assert np.array_equal(a, b)
    truth = np.repeat([0, 1, 2], 150)
    for c in np.unique(a):  # no cluster spans two true blocks
        assert len(np.unique(truth[a == c])) == 1


def test_lognormalized_is_bit_identical_to_normalize_log1p() -> None:
    X = _counts(500, 80, 3)
    X[7] = 0  # an empty row
    X.eliminate_zeros()
    ref = pp.normalize_log1p(X)
    lz = pp.LogNormalized(X)
    assert np.array_equal(lz.row_values(0, X.shape[0]), ref.data)
    assert np.array_equal(lz.row_values(100, 250), ref[100:250].data)
    assert np.array_equal(lz.columns([3, 0, 41]), ref[:, [3, 0, 41]].toarray())
    m = lz.materialize()
    assert np.array_equal(m.data, ref.data) and np.array_equal(m.indices, ref.indices)
    labels = np.arange(X.shape[0]) % 4
    for a, b in zip(
        cl.group_stats(lz, labels, chunk_nnz=333), cl.group_stats(ref, labels), strict=True
    ):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_knn_edges_equal_the_upper_triangle_of_the_adjacency_and_leiden_agrees() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    idx, _ = pp.knn_graph(x, 7)
    idx[3, 0] = 3  # a self-loop entry is dropped, as by knn_to_adjacency
    A = pp.knn_to_adjacency(idx, len(x))
    up = sp.triu(A, k=1).tocoo()
    r, c = cl.knn_edges(idx)
    assert np.array_equal(up.row, r) and np.array_equal(up.col, c)
    assert np.array_equal(cl.leiden(A, 1.0, seed=2), cl.leiden_knn(idx, 1.0, seed=2))


def test_label_spreading_matches_the_dense_iteration() -> None:
    from core.analysis.annotate import label_spreading

    rng = np.random.default_rng(9)
    n, K = 300, 4
    idx, _ = pp.knn_graph(rng.normal(size=(n, 5)).astype(np.float32), 6)
    P0 = rng.dirichlet(np.ones(K), size=n)
    A = pp.knn_to_adjacency(idx, n).toarray().astype(np.float64)
    S = A / np.sqrt(np.outer(A.sum(1), A.sum(1)))
    P = P0.copy()
    for _ in range(30):
        P = 0.95 * S @ P + 0.05 * P0
    P /= P.sum(1, keepdims=True)
    got = label_spreading(idx, P0)
    assert got.shape == (n, K)
    assert np.abs(got - P).max() < 1e-5


def test_marker_genes_ranks_the_planted_gene_first() -> None:
    X = _counts(300, 50, 6).toarray()
    labels = np.repeat([0, 1, 2], 100)
    X[labels == 1, 7] += 30
    Xl = pp.normalize_log1p(sp.csr_matrix(X))
    genes = np.array([f"G{i}" for i in range(50)])
    m = cl.marker_genes(Xl, labels, genes, top=3)
    assert m["1"][0]["gene"] == "G7" and m["1"][0]["log2fc"] > 1
    assert float(m["1"][0]["pval_adj"]) < 1e-10
