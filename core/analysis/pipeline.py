"""run_analysis(): AnnData in, a typed AnalysisResult out.

QC -> normalise/log1p -> HVGs -> PCA -> spatial graph -> Moran's I -> kNN -> Leiden ->
markers -> annotation -> neighbourhood enrichment ->
diversity -> domains. Every randomised step takes ``params.seed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from core.analysis import annotate as ann
from core.analysis import cluster as cl
from core.analysis import domains as dom
from core.analysis import preprocess as pp
from core.analysis import qc as qcm
from core.analysis import spatial as spa
from core.enums import JobStage, Layout
from core.errors import BadOption
from core.jsonable import JSONObject
from core.markers import LINEAGES, MarkerTable, load_default_markers

if TYPE_CHECKING:
    from anndata import AnnData

Progress = Callable[[str, float], None]


@dataclass
class AnalysisParams:
    """Parameters of one analysis run (all stored in provenance).

    Attributes
    ----------
    resolution
        Leiden resolution, 0.1 to 2.0.
    seed
        Seed of every randomised step (PCA, kNN, Leiden, permutations, domains).
    n_hvg, n_pcs, n_neighbors
        Highly variable genes kept, principal components, neighbours of the expression graph.
    n_perms
        Permutations of the neighbourhood enrichment test.
    n_domains
        Fixed number of spatial domains (2 to 30); ``None``: chosen by silhouette.
    threads, blas_threads
        kNN threads (0: all cores) and dense BLAS threads.
    """

    resolution: float = 1.0
    seed: int = 0
    n_hvg: int = 2000
    n_pcs: int = 50
    n_neighbors: int = 15
    n_perms: int = 100
    n_domains: int | None = None
    threads: int = 0  # kNN threads (0 = all cores)
    blas_threads: int = 1  # dense BLAS threads: the work is sparse-dominated, and threaded
    # OpenBLAS spin-waits badly when cores are shared (PCA measured 2-7x slower with 2 threads
    # on a loaded 2-core machine)

    def validate(self) -> None:
        if not 0.1 <= self.resolution <= 2.0:
            raise BadOption(f"--resolution must be between 0.1 and 2.0 (got {self.resolution})")
        if self.n_domains is not None and not 2 <= self.n_domains <= 30:
            raise BadOption(f"number of domains must be between 2 and 30 (got {self.n_domains})")

    def as_dict(self) -> JSONObject:
        return dict(self.__dict__)


@dataclass
class AnalysisResult:
    """Everything computed; arrays are aligned to the kept spots (``obs_names``).

    Made by :func:`run_analysis`; the runner turns it into ``analysis.json``, ``spots.csv``,
    ``features.json`` and figures. Counts and the log-normalised matrix are kept sparse.
    """

    layout: str
    params: AnalysisParams
    obs_names: np.ndarray
    xy: np.ndarray
    qc: qcm.QCResult
    qc_metrics: dict[str, np.ndarray]
    gene_names: np.ndarray
    hvg: np.ndarray  # names
    pca: np.ndarray
    pca_variance_ratio: np.ndarray
    clusters: np.ndarray
    cluster_markers: dict[str, list[dict[str, float | str]]]
    annotation: ann.Annotation
    cluster_majority: dict[str, dict[str, float | str]]
    domains: dom.DomainResult
    domain_markers: dict[str, list[dict[str, float | str]]]
    spatial_graph: sp.csr_matrix
    moran: dict[str, np.ndarray]  # I, z, pval_norm, pval_norm_fdr_bh over `hvg`
    nhood_celltype: tuple[np.ndarray, list[str]]
    nhood_lineage: tuple[np.ndarray, list[str]]
    nhood_cluster: np.ndarray
    diversity: np.ndarray  # per-spot neighbourhood entropy of cell types
    xlog: pp.LogNormalized  # log-normalised kept spots x kept genes, on demand (figures / h5ad)
    counts: sp.csr_matrix
    px_per_um: float | None
    timings: dict[str, float] = field(default_factory=dict)
    marker_source: str = "default"


def _encode(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    cats, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(c) for c in cats]


def subset_csr(
    X: sp.csr_matrix, keep_rows: np.ndarray, keep_cols: np.ndarray, chunk_rows: int = 65_536
) -> sp.csr_matrix:
    """``X[keep_rows][:, keep_cols]`` in one pass, without the intermediate row-subset copy.

    Rows are processed in chunks; the output is sized exactly by a counting pass first.

    Parameters
    ----------
    X
        CSR matrix (spots x genes).
    keep_rows, keep_cols
        Boolean masks over rows and columns.
    chunk_rows
        Rows per chunk (bounds the temporary memory).

    Returns
    -------
    scipy.sparse.csr_matrix
        A new matrix; ``X`` is unchanged.
    """
    rows = np.flatnonzero(keep_rows)
    if keep_cols.all():
        out: sp.csr_matrix = X[rows] if len(rows) < X.shape[0] else X.copy()
        return out
    remap = np.full(X.shape[1], -1, dtype=np.int64)
    remap[keep_cols] = np.arange(int(keep_cols.sum()))
    lens = np.zeros(len(rows), dtype=np.int64)
    for c0 in range(0, len(rows), chunk_rows):
        sub = X[rows[c0 : c0 + chunk_rows]]
        cs = np.zeros(sub.nnz + 1, dtype=np.int64)
        np.cumsum(keep_cols[sub.indices], out=cs[1:])
        lens[c0 : c0 + chunk_rows] = cs[sub.indptr[1:]] - cs[sub.indptr[:-1]]
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    nnz = int(indptr[-1])
    idx_dtype = np.int32 if max(nnz, X.shape[1]) < 2**31 else np.int64
    indices = np.empty(nnz, dtype=idx_dtype)
    data = np.empty(nnz, dtype=X.dtype)
    for c0 in range(0, len(rows), chunk_rows):
        sub = X[rows[c0 : c0 + chunk_rows]]
        kept = keep_cols[sub.indices]
        a, b = int(indptr[c0]), int(indptr[min(c0 + chunk_rows, len(rows))])
        indices[a:b] = remap[sub.indices[kept]]
        data[a:b] = sub.data[kept]
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), int(keep_cols.sum())))


def subset_csr_inplace(
    X: sp.csr_matrix, keep_rows: np.ndarray, keep_cols: np.ndarray, chunk_rows: int = 65_536
) -> sp.csr_matrix:
    """``X[keep_rows][:, keep_cols]`` written over X's own arrays (X is destroyed).

    Kept values move forward chunk by chunk (the write position never passes the read
    position), so no second copy of the matrix is ever made. The result views the first
    ``nnz`` values of X's buffers.

    Parameters
    ----------
    X
        CSR matrix (spots x genes); not usable afterwards.
    keep_rows, keep_cols
        Boolean masks over rows and columns.
    chunk_rows
        Rows per chunk.

    Returns
    -------
    scipy.sparse.csr_matrix
        The subset, sharing X's buffers (``X`` itself when everything is kept).
    """
    n = X.shape[0]
    if keep_rows.all() and keep_cols.all():
        return X
    remap = np.full(X.shape[1], -1, dtype=np.int64)
    remap[keep_cols] = np.arange(int(keep_cols.sum()))
    indptr, indices, data = X.indptr, X.indices, X.data
    lens = np.zeros(n, dtype=np.int64)
    w = 0
    for c0 in range(0, n, chunk_rows):
        c1 = min(c0 + chunk_rows, n)
        a, b = int(indptr[c0]), int(indptr[c1])
        row_len = np.diff(indptr[c0 : c1 + 1])
        keep = keep_cols[indices[a:b]] & np.repeat(keep_rows[c0:c1], row_len)
        new_idx = remap[indices[a:b][keep]]
        new_dat = data[a:b][keep]
        row_of = np.repeat(np.arange(c1 - c0), row_len)[keep]
        lens[c0:c1] = np.bincount(row_of, minlength=c1 - c0)
        k = len(new_idx)
        indices[w : w + k] = new_idx
        data[w : w + k] = new_dat
        w += k
    lens = lens[keep_rows]
    new_ptr = np.zeros(len(lens) + 1, dtype=indptr.dtype)
    np.cumsum(lens, out=new_ptr[1:])
    return sp.csr_matrix((data[:w], indices[:w], new_ptr), shape=(len(lens), int(keep_cols.sum())))


def run_analysis(
    adata: AnnData,
    layout: str,
    params: AnalysisParams | None = None,
    markers: MarkerTable | None = None,
    px_per_um: float | None = None,
    progress: Progress | None = None,
    release_input: bool = False,
) -> AnalysisResult:
    """Run the whole spatial analysis on raw counts.

    Parameters
    ----------
    adata
        AnnData with raw counts in ``X`` (sparse or dense) and ``obsm['spatial']``.
    layout
        ``visium``, ``visium_hd`` or ``generic`` (see :func:`core.io.readers.detect_layout`).
    params
        Analysis parameters (default :class:`AnalysisParams`); validated first.
    markers
        Marker table for annotation (default: the shipped table).
    px_per_um
        Coordinate pixels per micrometre, if known (sets the domain smoothing radius).
    progress
        ``progress(stage, fraction)``, called as the analysis advances.
    release_input
        Set ``adata.X`` to None once the QC-filtered counts are made, so that the input matrix is
        not held alongside them (the runner passes True: it needs only obs and uns afterwards).

    Returns
    -------
    AnalysisResult
        QC, clusters, annotation, domains and spatial statistics, aligned to the kept spots.

    Raises
    ------
    core.errors.InputError
        Bad options (``invalid_option``) or data the analysis cannot use (e.g. ``empty_after_qc``).
    """
    params = params or AnalysisParams()
    params.validate()
    markers = markers or load_default_markers()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(
        limits=params.blas_threads if params.blas_threads > 0 else None, user_api="blas"
    ):
        return _run(adata, layout, params, markers, px_per_um, progress, release_input)


def _run(
    adata: Any,
    layout: str,
    params: AnalysisParams,
    markers: MarkerTable,
    px_per_um: float | None,
    progress: Progress | None,
    release_input: bool,
) -> AnalysisResult:
    report = progress or (lambda stage, frac: None)
    t: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str, frac: float) -> None:
        nonlocal clock
        now = time.perf_counter()
        t[name] = round(now - clock, 3)
        clock = now
        report(JobStage.ANALYZING, frac)

    X = adata.X
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sum_duplicates()
    genes = np.asarray(adata.var_names).astype(str)
    obs_names = np.asarray(adata.obs_names).astype(str)
    xy_all = np.asarray(adata.obsm["spatial"], dtype=np.float64)[:, :2]

    metrics = qcm.qc_metrics(X, genes)
    keep_s, keep_g, qc = qcm.filter_spots_and_genes(X, metrics, layout)
    if release_input and X.data.flags.writeable and X.indices.flags.writeable:
        adata.X = None  # the caller lets go of the input: filter its arrays in place, no copy
        X = subset_csr_inplace(X, keep_s, keep_g)
    else:
        X = subset_csr(X, keep_s, keep_g)
    genes = genes[keep_g]
    metrics = {k: v[keep_s] for k, v in metrics.items()}
    xy = xy_all[keep_s]
    obs_names = obs_names[keep_s]
    lap("qc", 0.1)

    Xlog = pp.normalize_log1p(X)
    hvg_idx = pp.highly_variable_genes(Xlog, params.n_hvg)
    lap("normalize_hvg", 0.2)
    hvg_mask = np.zeros(Xlog.shape[1], dtype=bool)
    hvg_mask[hvg_idx] = True  # hvg_idx is sorted: the same matrix as Xlog[:, hvg_idx]
    Xhvg = subset_csr(Xlog, np.ones(Xlog.shape[0], dtype=bool), hvg_mask)  # for PCA and Moran's I
    # From here on the log-normalised values are made on demand from the counts (bit-identical):
    # holding them costs 4 bytes per non-zero through clustering and annotation, the peak.
    del Xlog
    lognorm = pp.LogNormalized(X)
    pcs, evr = pp.pca_sparse(Xhvg, params.n_pcs, seed=params.seed)
    lap("pca", 0.3)
    # Moran's I now, so that the HVG matrix is not held through clustering and annotation
    A = spa.spatial_graph(xy, layout)
    moran = spa.morans_i(Xhvg, A)
    del Xhvg
    lap("moran", 0.35)
    n = X.shape[0]
    knn_idx: np.ndarray | None = None
    if n >= 3 and pcs.shape[1] >= 1:
        knn_idx, _ = pp.knn_graph(
            pcs, min(params.n_neighbors, n - 1), seed=params.seed, threads=params.threads
        )
        lap("neighbors", 0.4)
        clusters = cl.leiden_knn(knn_idx, params.resolution, seed=params.seed)
    else:
        clusters = np.zeros(n, dtype=np.int64)
    lap("leiden", 0.45)
    cluster_markers = cl.marker_genes(lognorm, clusters, genes)
    lap("markers", 0.5)

    annotation = ann.annotate(
        X, genes, markers, multi_cell=(layout == Layout.VISIUM), knn_idx=knn_idx, spatial_graph=A
    )
    majority = ann.cluster_majority(clusters, annotation.cell_type)
    lap("annotate", 0.6)

    ct_codes, ct_names = _encode(annotation.cell_type)
    lin_codes = np.array([LINEAGES.index(v) for v in annotation.lineage])
    z_ct, _ = spa.nhood_enrichment(A, ct_codes, params.n_perms, params.seed)
    z_lin_full, _ = spa.nhood_enrichment(A, lin_codes, params.n_perms, params.seed)
    present_lin = sorted(set(lin_codes.tolist()))
    z_lin = z_lin_full[np.ix_(present_lin, present_lin)]
    z_cl, _ = spa.nhood_enrichment(A, clusters, params.n_perms, params.seed)
    diversity = spa.neighbourhood_diversity(
        A, ct_codes, rings=2 if layout != Layout.VISIUM_HD else 3
    )
    lap("nhood_enrichment", 0.8)

    domains = dom.find_domains(
        pcs,
        annotation.probs,
        xy,
        layout,
        A,
        px_per_um,
        seed=params.seed,
        n_domains=params.n_domains,
    )
    domain_markers = cl.marker_genes(lognorm, domains.labels, genes)
    lap("domains", 0.9)

    return AnalysisResult(
        layout=layout,
        params=params,
        obs_names=obs_names,
        xy=xy,
        qc=qc,
        qc_metrics=metrics,
        gene_names=genes,
        hvg=genes[hvg_idx],
        pca=pcs,
        pca_variance_ratio=evr,
        clusters=clusters,
        cluster_markers=cluster_markers,
        annotation=annotation,
        cluster_majority=majority,
        domains=domains,
        domain_markers=domain_markers,
        spatial_graph=A,
        moran=moran,
        nhood_celltype=(z_ct, ct_names),
        nhood_lineage=(z_lin, [LINEAGES[i] for i in present_lin]),
        nhood_cluster=z_cl,
        diversity=diversity,
        xlog=lognorm,
        counts=X,
        px_per_um=px_per_um,
        timings=t,
        marker_source=markers.source,
    )
