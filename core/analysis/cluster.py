"""Leiden clustering and marker genes per group.

Markers use Welch's t-test on log-normalised expression computed from sparse
per-group sums, O(nnz) for all groups at once. The peer's Wilcoxon test ranks
every gene in every group (82 s of its 164 s on 200,000 bins); for a ranked
list of markers shown to a human reader the t-test ranks agree closely and
cost a fraction of a second. Markers never enter a prompt.
"""

from __future__ import annotations

import array
import random

import numpy as np
import scipy.sparse as sp
from scipy import stats

from core.analysis.preprocess import LogNormalized
from core.arrays import unique_int


def knn_edges(knn_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges of a kNN graph (i~j if either lists the other), each once as (i < j).

    Sorted by (i, j): the order of ``sp.triu(knn_to_adjacency(knn_idx)).tocoo()``, without
    building the n x n adjacency (at 650,000 bins it and its transpose cost ~250 MB).
    """
    n, k = knn_idx.shape
    src = np.repeat(np.arange(n, dtype=np.int64), k)
    dst = knn_idx.ravel().astype(np.int64)
    keep = src != dst
    lo = np.minimum(src[keep], dst[keep])
    hi = np.maximum(src[keep], dst[keep])
    del src, dst, keep
    key = unique_int(lo * n + hi)
    del lo, hi
    return key // n, key % n


def leiden(
    adj: sp.csr_matrix, resolution: float = 1.0, seed: int = 0, n_iterations: int = 2
) -> np.ndarray:
    """Leiden communities (modularity, igraph's C implementation) of an undirected graph."""
    upper = sp.triu(adj, k=1).tocoo()
    unit = bool(upper.nnz == 0 or np.all(upper.data == 1.0))
    # unit weights are igraph's default: passing None gives identical partitions without a list of floats
    weights = None if unit else upper.data.tolist()
    return leiden_edges(adj.shape[0], upper.row, upper.col, weights, resolution, seed, n_iterations)


def leiden_knn(
    knn_idx: np.ndarray, resolution: float = 1.0, seed: int = 0, n_iterations: int = 2
) -> np.ndarray:
    """:func:`leiden` of the unweighted symmetric kNN graph, straight from the neighbour lists."""
    rows, cols = knn_edges(knn_idx)
    return leiden_edges(knn_idx.shape[0], rows, cols, None, resolution, seed, n_iterations)


def leiden_edges(
    n: int,
    rows: np.ndarray,
    cols: np.ndarray,
    weights: list[float] | None,
    resolution: float = 1.0,
    seed: int = 0,
    n_iterations: int = 2,
) -> np.ndarray:
    """Leiden communities of the undirected graph with edges (rows[e], cols[e])."""
    import igraph as ig

    # One call with a lazy iterator of (int, int) pairs: no Python list of all edges (~130 bytes
    # per edge), and no repeated add_edges() calls, each of which rebuilds igraph's edge index
    # (31 chunked calls took ~40 s at 650,000 bins; one call takes ~4 s).
    r = array.array("q", np.asarray(rows, dtype=np.int64).tobytes())
    c = array.array("q", np.asarray(cols, dtype=np.int64).tobytes())
    g = ig.Graph(n=n, edges=zip(r, c, strict=True), directed=False)
    del r, c
    # igraph draws from Python's `random` module: seed it explicitly for reproducibility
    state = random.getstate()
    random.seed(seed)
    ig.set_random_number_generator(random)
    try:
        part = g.community_leiden(
            objective_function="modularity",
            resolution=resolution,
            weights=weights,
            n_iterations=n_iterations,
        )
    finally:
        random.setstate(state)
    labels = np.asarray(part.membership, dtype=np.int64)
    # relabel by size (0 = largest), stable
    sizes = np.bincount(labels)
    order = np.argsort(-sizes, kind="stable")
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return remap[labels]


def group_stats(
    Xlog: sp.csr_matrix | LogNormalized, labels: np.ndarray, chunk_nnz: int = 4_000_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-group sum, sum of squares, number expressing, and group sizes (groups x genes).

    One pass over the non-zeros in row chunks (``np.bincount`` on group x gene keys, float64
    accumulation), so that memory beyond the groups x genes results stays bounded by the chunk.
    """
    n, g = Xlog.shape
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1
    s1 = np.zeros(k * g)
    s2 = np.zeros(k * g)
    cnt = np.zeros(k * g)
    indptr = Xlog.indptr
    r0 = 0
    while r0 < n:
        r1 = int(np.searchsorted(indptr, indptr[r0] + chunk_nnz, side="right")) - 1
        r1 = min(max(r1, r0 + 1), n)
        a, b = int(indptr[r0]), int(indptr[r1])
        if b > a:
            key = np.repeat(labels[r0:r1] * g, np.diff(indptr[r0 : r1 + 1])) + Xlog.indices[a:b]
            v = (
                Xlog.row_values(r0, r1) if isinstance(Xlog, LogNormalized) else Xlog.data[a:b]
            ).astype(np.float64)
            s1 += np.bincount(key, weights=v, minlength=k * g)
            s2 += np.bincount(key, weights=v * v, minlength=k * g)
            cnt += np.bincount(key, minlength=k * g)
        r0 = r1
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    return s1.reshape(k, g), s2.reshape(k, g), cnt.reshape(k, g), sizes


def marker_genes(
    Xlog: sp.csr_matrix | LogNormalized,
    labels: np.ndarray,
    gene_names: np.ndarray,
    top: int = 10,
    min_logfc: float = 0.25,
) -> dict[str, list[dict[str, float | str]]]:
    """Top marker genes per group (one group vs the rest): Welch t, log2 fold change, fractions.

    Returns ``{group: [{gene, t, pval_adj, log2fc, frac_in, frac_out}, ...]}`` with
    Benjamini-Hochberg adjusted p-values over genes within each group.
    """
    s1, s2, cnt, sizes = group_stats(Xlog, labels)
    tot1, tot2, totc, n = s1.sum(0), s2.sum(0), cnt.sum(0), sizes.sum()
    out: dict[str, list[dict[str, float | str]]] = {}
    for gi in range(len(sizes)):
        n1, n2 = sizes[gi], n - sizes[gi]
        if n1 < 2 or n2 < 2:
            out[str(gi)] = []
            continue
        m1 = s1[gi] / n1
        m2 = (tot1 - s1[gi]) / n2
        v1 = np.maximum(s2[gi] / n1 - m1**2, 0) * n1 / (n1 - 1)
        v2 = np.maximum((tot2 - s2[gi]) / n2 - m2**2, 0) * n2 / (n2 - 1)
        se = np.sqrt(v1 / n1 + v2 / n2) + 1e-12
        t = (m1 - m2) / se
        dof = (v1 / n1 + v2 / n2) ** 2 / (
            (v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1) + 1e-300
        )
        p = 2 * stats.t.sf(np.abs(t), np.maximum(dof, 1))
        padj = bh_fdr(p)
        lfc = (np.expm1(m1) + 1e-9) / (np.expm1(m2) + 1e-9)
        lfc = np.log2(lfc)
        ok = (lfc >= min_logfc) & (t > 0)
        cand = np.flatnonzero(ok)
        cand = cand[np.argsort(-t[cand], kind="stable")][:top]
        out[str(gi)] = [
            {
                "gene": str(gene_names[j]),
                "t": round(float(t[j]), 3),
                "pval_adj": float(f"{padj[j]:.3g}"),
                "log2fc": round(float(lfc[j]), 3),
                "frac_in": round(float(cnt[gi, j] / n1), 3),
                "frac_out": round(float((totc[j] - cnt[gi, j]) / n2), 3),
            }
            for j in cand
        ]
    return out


def bh_fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    return out
