"""The large-sample code paths (above 50,000 bins) agree with the small-sample ones."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from core.analysis import preprocess as pp
from core.analysis.cluster import group_stats
from core.analysis.pipeline import subset_csr, subset_csr_inplace
from core.analysis.qc import _detected_in
from core.analysis.spatial import morans_i


@pytest.mark.parametrize("seed", range(6))
def test_hd_subsets_equal_scipy_indexing(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = sp.random(
        400, 60, density=rng.uniform(0.01, 0.3), format="csr", dtype=np.float32, random_state=seed
    )
    rows = rng.random(400) < rng.uniform(0.5, 1.0)
    cols = rng.random(60) < (1.0 if seed == 0 else rng.uniform(0.3, 1.0))
    ref = sp.csr_matrix(X[rows][:, cols])
    chunk = int(rng.integers(1, 150))
    for got in (
        subset_csr(X, rows, cols, chunk_rows=chunk),
        subset_csr_inplace(X.copy(), rows, cols, chunk_rows=chunk),
    ):
        assert got.shape == ref.shape
        np.testing.assert_array_equal(got.indptr, ref.indptr)
        np.testing.assert_array_equal(got.indices, ref.indices)
        np.testing.assert_array_equal(got.data, ref.data)
    np.testing.assert_array_equal(
        _detected_in(X, rows, chunk), np.bincount(X[rows].indices, minlength=60)
    )


def test_hd_chunked_statistics_match_whole_matrix() -> None:
    rng = np.random.default_rng(0)
    X = sp.random(3000, 40, density=0.1, format="csr", dtype=np.float32, random_state=1)
    labels = rng.integers(0, 5, size=3000)
    whole = group_stats(X, labels, chunk_nnz=10**9)
    for a, b in zip(group_stats(X, labels, chunk_nnz=97), whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    m1, v1 = pp.gene_mean_var(X, chunk_nnz=101)
    m2, v2 = pp.gene_mean_var(X)
    np.testing.assert_allclose(m1, m2, rtol=1e-12)
    np.testing.assert_allclose(v1, v2, rtol=1e-10, atol=1e-14)
    xy = np.stack(np.divmod(np.arange(3000), 60), 1).astype(float)
    from core.analysis.spatial import spatial_graph

    A = spatial_graph(xy, "visium_hd")
    r1, r2 = morans_i(X, A, chunk_rows=333), morans_i(X, A)
    np.testing.assert_allclose(r1["I"], r2["I"], rtol=1e-10, atol=1e-12)


def test_hd_cholesky_qr_spans_the_same_space() -> None:
    rng = np.random.default_rng(0)
    M = rng.standard_normal((60_000, 12)) @ rng.standard_normal((12, 12))
    Q = pp._orthonormal(M)
    np.testing.assert_allclose(Q.T @ Q, np.eye(12), atol=1e-10)
    Qh, _ = np.linalg.qr(M)
    np.testing.assert_allclose(np.abs(Qh.T @ Q), np.eye(12), atol=1e-8)  # same columns up to sign


def test_hd_ivf_knn_recall_above_exact_threshold() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 10)) * 4
    x = (centres[rng.integers(0, 40, size=60_000)] + rng.normal(size=(60_000, 10))).astype(
        np.float32
    )
    idx, dist = pp.knn_graph(x, 15, seed=0, threads=1)
    assert idx.shape == (60_000, 15) and np.all(idx != np.arange(60_000)[:, None])
    assert np.all(np.diff(dist, axis=1) >= -1e-5)
    q = rng.choice(60_000, 300, replace=False)
    import faiss

    flat = faiss.IndexFlatL2(10)
    flat.add(x)
    _, ex = flat.search(x[q], 16)
    exact = ex[:, 1:]
    recall = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(idx[q], exact, strict=True)])
    assert recall > 0.9
    idx2, _ = pp.knn_graph(x, 15, seed=0, threads=2)
    assert np.array_equal(idx, idx2)
