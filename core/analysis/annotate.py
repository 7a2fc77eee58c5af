"""Marker-based cell typing with calibrated confidence, lineage calls and spot composition.

Evidence: for each cell type, a set-level Poisson log-likelihood ratio that its marker set is
enriched in the spot (:func:`set_llr`), over the markers that are co-expressed with the rest of
their set in this sample (:func:`coherent_markers`), each weighted by its specificity
(:func:`specificity_weights`), pooled over the spot and its expression-space neighbours for
single-cell-scale units (HD bins). Probabilities: a softmax of the per-spot LLR (natural units,
no sharpness constant), refined for HD bins by label spreading on the expression kNN graph
(:func:`label_spreading`). Calls are hierarchical, so a marker table of any breadth works without
an organ: a lineage's broad types first (:attr:`core.markers.MarkerTable.broad_types`), an
organ-specific type only where its own markers are enriched and it beats the broad type, and
"unassigned" where no marker set is enriched. Visium spots (55 um) hold several cells, so we
estimate each spot's composition from its marker shares (:func:`estimate_composition`) and call
the dominant type from it. Confidence is calibrated (Platt scaling, :data:`CALIBRATION`): a
confidence of 0.8 means about 80% of such calls were right on the synth.py sweep.

Measured by ``bench/accuracy.py`` (docs/accuracy.md), on seeds nobody tuned on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from core.errors import NoMarkerOverlap
from core.markers import LINEAGES, MarkerTable

MIN_MARKERS = 2


@dataclass
class Annotation:
    """Per-spot calls and per-type bookkeeping."""

    cell_types: list[str]  # types scored (enough markers present)
    lineage_of: dict[str, str]
    probs: np.ndarray  # n x K
    cell_type: np.ndarray  # n (str)
    lineage: np.ndarray  # n (str)
    confidence: np.ndarray  # n
    entropy: np.ndarray  # n, normalised to [0, 1]
    lineage_probs: np.ndarray  # n x L (LINEAGES order)
    composition: np.ndarray | None  # n x K estimated fractions (Visium), else None
    markers_used: dict[str, list[str]]
    skipped_types: dict[str, int] = field(default_factory=dict)
    available: bool = True
    unavailable_reason: str | None = None
    top_type: np.ndarray | None = (
        None  # n: best-supported type, also where the call is "unassigned"
    )
    calib_feature: np.ndarray | None = None  # n: the calibration feature x (see CALIBRATION)
    merged_types: dict[str, str] = field(
        default_factory=dict
    )  # subtype -> the broader type it merged into

    @property
    def lineage_composition(self) -> np.ndarray:
        """n x L lineage fractions: from the composition where estimated, else the lineage probabilities."""
        if self.composition is None:
            return self.lineage_probs
        L = np.zeros((len(self.cell_types), len(LINEAGES)))
        for i, t in enumerate(self.cell_types):
            L[i, LINEAGES.index(self.lineage_of[t])] = 1.0
        return self.composition @ L


def match_markers(
    gene_names: np.ndarray, table: MarkerTable
) -> tuple[dict[str, np.ndarray], dict[str, list[str]], dict[str, int]]:
    """Column indices of each type's markers present in the data (case-insensitive symbols)."""
    upper = {str(g).upper(): i for i, g in enumerate(gene_names)}
    found: dict[str, np.ndarray] = {}
    names: dict[str, list[str]] = {}
    skipped: dict[str, int] = {}
    for t, genes in table.genes.items():
        cols = [upper[g] for g in genes if g in upper]
        if len(cols) >= MIN_MARKERS:
            found[t] = np.asarray(cols, dtype=np.int64)
            names[t] = [str(gene_names[c]) for c in cols]
        else:
            skipped[t] = len(cols)
    return found, names, skipped


def pool_matrix(knn_idx: np.ndarray | None, n: int) -> sp.csr_matrix:
    """Sum over each spot and its expression-space neighbours (I + kNN), as a sparse operator."""
    if knn_idx is None or knn_idx.size == 0:
        return sp.eye(n, format="csr")
    k = knn_idx.shape[1]
    rows = np.r_[np.repeat(np.arange(n), k), np.arange(n)]
    cols = np.r_[knn_idx.ravel(), np.arange(n)]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def label_spreading(
    knn_idx: np.ndarray, P0: np.ndarray, alpha: float = 0.95, n_iter: int = 30
) -> np.ndarray:
    """Label spreading on the expression kNN graph (Zhou et al. 2004): P <- a S P + (1 - a) P0.

    S is the symmetrically normalised kNN adjacency. Marker evidence from a spot's
    transcriptional neighbours, which differ from it mostly in noise, refines its call; this
    propagates information carried by every highly variable gene, not only the table's markers.
    """
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    from core.analysis.preprocess import knn_to_adjacency

    n = P0.shape[0]
    A = knn_to_adjacency(knn_idx, n).astype(np.float32)
    d = np.asarray(A.sum(axis=1)).ravel()
    inv = (1.0 / np.sqrt(np.maximum(d, 1e-12))).astype(np.float32)
    S = (sp.diags(inv) @ A @ sp.diags(inv)).tocsr()
    del A
    # The product S @ P gathers each neighbour's row of P: memory-bound, with neighbours spread
    # over the whole sample. Reverse Cuthill-McKee renumbering puts neighbours close in memory
    # (2.5x faster per iteration at 650,000 bins), and float32 halves the bytes moved; the
    # result is put back in the input order. (Measured: max |dP| 2e-7 against float64.)
    perm = reverse_cuthill_mckee(S, symmetric_mode=True)
    S = S[perm][:, perm].tocsr()
    B = np.ascontiguousarray(P0[perm], dtype=np.float32)
    base = (1 - alpha) * B
    P = B.copy()
    for _ in range(n_iter):
        P = S @ P
        P *= alpha
        P += base
    np.maximum(P, 0, out=P)
    P /= np.maximum(P.sum(axis=1, keepdims=True), 1e-12)
    out = np.empty((n, P0.shape[1]), dtype=np.float64)
    out[perm] = P
    return out


def softmax(s: np.ndarray, beta: float) -> np.ndarray:
    z = beta * (s - s.max(axis=1, keepdims=True))
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def estimate_composition(
    obs_counts: np.ndarray, D: np.ndarray, baseline_q: float = 0.02
) -> np.ndarray:
    """Per-spot cell-type fractions from pooled marker shares (Visium: several cells per spot).

    share_it = O_it / D_i ~ b_t + f_it * (h_t - b_t): the share of t's markers rises linearly
    with the fraction of type t in the spot. b_t is the baseline share (a low quantile over
    spots); the per-type scale 1 / (h_t - b_t) is fitted by non-negative least squares so that
    fractions sum to one across spots: min_c sum_i (1 - sum_t c_t y_it)^2, c >= 0.
    """
    from scipy.optimize import nnls

    share = obs_counts / np.maximum(D, 1.0)[:, None]
    b = np.quantile(share, baseline_q, axis=0)
    Y = np.maximum(share - b[None, :], 0.0)
    c, _ = nnls(Y, np.ones(len(Y)))
    F = Y * c[None, :]
    tot = F.sum(axis=1, keepdims=True)
    comp: np.ndarray = np.where(tot > 0, F / np.maximum(tot, 1e-12), 1.0 / F.shape[1])
    return comp


def specificity_weights(found: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per type, a weight per marker: 1 / (number of scored types listing the gene), mean 1 in the set.

    A gene listed by many types (CD74, VIM) says little about which of them a spot is; a gene
    only one type lists says the most. Scaling each set to mean weight 1 keeps sets comparable.
    """
    n_of: dict[int, int] = {}
    for cols in found.values():
        for c in cols.tolist():
            n_of[c] = n_of.get(c, 0) + 1
    out = {}
    for t, cols in found.items():
        w = np.array([1.0 / n_of[int(c)] for c in cols])
        out[t] = w / w.mean()
    return out


def local_residual_operator(
    spatial_graph: sp.csr_matrix | None, min_linked: int = 50
) -> tuple[sp.csr_matrix | None, np.ndarray | None]:
    """I - N (N: the row-normalised spatial graph) and the spots it applies to, for multi-cell spots.

    A spot's marker shares minus the mean of its spatial neighbours': what is left is how the spot
    differs from the tissue around it. Populations that share a region (T cells and macrophages
    in one domain) raise each other's markers together across the section, but within a region
    their fractions vary from spot to spot independently; the markers of one population still rise
    and fall together. Returns (None, None) where fewer than ``min_linked`` spots have a neighbour
    (a sparse capture with no usable spatial graph): coherence is then judged across spots.
    """
    if spatial_graph is None:
        return None, None
    deg = np.asarray(spatial_graph.sum(axis=1)).ravel()
    linked = np.flatnonzero(deg > 0)
    if len(linked) < min_linked:
        return None, None
    n = spatial_graph.shape[0]
    N = sp.diags(1.0 / np.maximum(deg, 1.0)) @ spatial_graph
    return (sp.eye(n, format="csr") - N).tocsr(), linked


def coherent_markers(
    counts: sp.csr_matrix,
    found: dict[str, np.ndarray],
    pool: sp.csr_matrix,
    max_rows: int = 20_000,
    chunk: int = 8_192,
    spatial_graph: sp.csr_matrix | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Keep each type's markers that are co-expressed with the rest of its set in this sample.

    A table lists markers from many tissues and studies; in a given sample some are not expressed,
    or are expressed by another population. For marker g of type t we correlate, across spots, g's
    share of the (pooled) counts with the specificity-weighted share of t's other markers
    (:func:`specificity_weights`), and keep g when the correlation is significantly positive
    (> 3 / sqrt(n), a 3-sigma bound under no association). Weighting the reference by specificity
    makes the type's own markers define it: genes a table also lists under an abundant other type
    (B-cell genes among PanglaoDB's macrophage markers) would otherwise outweigh them. A gene that
    several types list goes to the one whose other markers it follows best (the highest
    correlation; among near-equal ones, the type with the most markers), so near-duplicate types
    (B cells, B cells naive) do not split one population. A type left
    with fewer than :data:`MIN_MARKERS` coherent markers is not present as a population here and is
    not scored (``dropped``: type -> coherent markers left). At most ``max_rows`` evenly spaced spots
    are used (the estimate needs thousands, not all).

    Multi-cell spots (Visium) hold several populations, and populations that share a region
    correlate across the section (co-location): a table's dendritic-cell set of CCR7 (here a T-cell
    gene) and ITGAX, CD83 (macrophage genes) looks coherent wherever T cells and macrophages share
    domains. With ``spatial_graph``, the correlation is of each spot's shares net of its spatial
    neighbours' mean (:func:`local_residual_operator`): co-expression within one population, not
    co-location of several.
    """
    types = list(found)
    cols = np.unique(np.concatenate([found[t] for t in types]))
    pos = {int(c): i for i, c in enumerate(cols)}
    G, K = len(cols), len(types)
    M = np.zeros((G, K))
    spec = specificity_weights(found)
    for k, t in enumerate(types):
        M[[pos[int(c)] for c in found[t]], k] = spec[t]
    n = counts.shape[0]
    Xm = counts[:, cols].tocsr().astype(np.float64)
    depth = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
    resid, linked = local_residual_operator(spatial_graph)
    Sres: sp.csr_matrix | None = None
    base: np.ndarray = np.arange(n)
    if resid is not None and linked is not None:
        Dall = np.asarray(pool @ depth).ravel()
        Sall = (sp.diags(1.0 / np.maximum(Dall, 1.0)) @ (pool @ Xm)).tocsr()
        Sres = (resid @ Sall).tocsr()
        base = linked
    rows = (
        base
        if len(base) <= max_rows
        else base[np.linspace(0, len(base) - 1, max_rows).astype(np.int64)]
    )
    sx, sxx = np.zeros(G), np.zeros(G)
    sy, syy = np.zeros(K), np.zeros(K)
    sxy = np.zeros((G, K))
    for s0 in range(0, len(rows), chunk):
        r = rows[s0 : s0 + chunk]
        if Sres is not None:
            S = np.asarray(Sres[r].todense())
        else:
            P = pool[r]
            D = np.asarray(P @ depth).ravel()
            S = np.asarray((P @ Xm).todense()) / np.maximum(D, 1.0)[:, None]
        Y = S @ M
        sx += S.sum(0)
        sxx += (S * S).sum(0)
        sy += Y.sum(0)
        syy += (Y * Y).sum(0)
        sxy += S.T @ Y
    m = float(len(rows))
    bound = 3.0 / np.sqrt(m)
    # R[g, u]: correlation of marker g with the weighted share of type u's other markers
    # (Y_u - M[g, u] x_g), for every type u, from the accumulators
    sy_ = sy[None, :] - M * sx[:, None]
    syy_ = syy[None, :] - 2 * M * sxy + M * M * sxx[:, None]
    sxy_ = sxy - M * sxx[:, None]
    cov = sxy_ / m - (sx[:, None] / m) * (sy_ / m)
    vx = np.maximum(sxx / m - (sx / m) ** 2, 0)[:, None]
    vy = np.maximum(syy_ / m - (sy_ / m) ** 2, 0)
    R = cov / np.sqrt(np.maximum(vx * vy, 1e-300))
    # a gene several types list goes to the one whose other markers it follows best; among those it
    # follows equally well (within 2 / sqrt(n), twice a correlation's standard error), to the type
    # with the most markers in the data (the broader type: B cells over B cells naive)
    Rl = np.where(M > 0, R, -np.inf)
    near = Rl >= Rl.max(axis=1, keepdims=True) - 2.0 / np.sqrt(m)
    size = np.array([len(found[t]) for t in types], dtype=np.float64)
    owner = np.where(near, size[None, :] + 1e-6 * Rl.clip(-1, 1), -np.inf).argmax(axis=1)
    kept: dict[str, np.ndarray] = {}
    dropped: dict[str, int] = {}
    for k, t in enumerate(types):
        gi = np.array([pos[int(c)] for c in found[t]])
        ok = (R[gi, k] > bound) & (owner[gi] == k)
        if ok.sum() >= MIN_MARKERS:
            kept[t] = found[t][ok]
        else:
            dropped[t] = int(ok.sum())
    return kept, dropped


def merge_duplicate_types(
    counts: sp.csr_matrix,
    found: dict[str, np.ndarray],
    pool: sp.csr_matrix,
    lineage: dict[str, str],
    table_size: dict[str, int],
    max_rows: int = 20_000,
    min_r: float = 0.9,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Merge types of one lineage whose coherent marker sets mark the same population here.

    Broad tables list a type and its subtypes (B cells, B cells naive, B cells memory) with
    overlapping markers; where the sample does not separate them (their set shares correlate above
    ``min_r`` across spots), the calls stay at the broader type (the one the table lists more
    markers for), which takes the union of their coherent markers. Returns (sets, merged -> kept).

    The correlation is corrected for counting noise (disattenuated): two sets' shares are
    proportional up to Poisson noise when they mark one population, but a small set in shallow
    spots (four basal keratins at a few thousand UMIs) reads noisily, which caps the raw
    correlation below 1 however alike the sets are. The Poisson variance of a share O / D is
    O / D^2 per spot; its mean is taken off each set's variance (the covariance of disjoint sets
    carries no counting noise), with the variance left floored at a quarter of the observed, so
    that a set that is mostly noise is not called a duplicate on noise.
    """
    types = list(found)
    n = counts.shape[0]
    rows = np.arange(n) if n <= max_rows else np.linspace(0, n - 1, max_rows).astype(np.int64)
    cols = np.unique(np.concatenate([found[t] for t in types]))
    pos = {int(c): i for i, c in enumerate(cols)}
    M = np.zeros((len(cols), len(types)))
    for k, t in enumerate(types):
        M[[pos[int(c)] for c in found[t]], k] = 1.0
    P = pool[rows]
    D = np.asarray(P @ np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)).ravel()
    O = np.asarray((P @ counts[:, cols].tocsr().astype(np.float64)) @ M)  # noqa: E741
    Y = O / np.maximum(D, 1.0)[:, None]
    sd = Y.std(axis=0)
    Y = np.where(sd > 0, Y, np.random.default_rng(0).normal(size=Y.shape))
    cov = np.atleast_2d(np.cov(Y, rowvar=False))
    var = np.diag(cov)
    noise = np.where(sd > 0, (O / np.maximum(D, 1.0)[:, None] ** 2).mean(axis=0), 0.0)
    signal = np.maximum(var - noise, 0.25 * var)
    C = cov / np.sqrt(np.outer(signal, signal))
    np.fill_diagonal(C, 1.0)
    into: dict[str, str] = {}

    def root(t: str) -> str:
        while t in into:
            t = into[t]
        return t

    iu = np.triu_indices(len(types), 1)
    for i, j in sorted(zip(*iu, strict=True), key=lambda ij: -C[ij]):
        if C[i, j] < min_r:
            break
        a, b = root(types[i]), root(types[j])
        if a == b or lineage[a] != lineage[b]:
            continue
        keep, drop = (a, b) if (table_size[a], a) >= (table_size[b], b) else (b, a)
        into[drop] = keep
    out = {t: c for t, c in found.items() if t not in into}
    for t in into:
        kept = root(t)
        out[kept] = np.union1d(out[kept], found[t])
    return out, {t: root(t) for t in into}


def set_llr(
    counts: sp.csr_matrix,
    found: dict[str, np.ndarray],
    weights: dict[str, np.ndarray],
    pool: sp.csr_matrix,
    chunk: int = 16_384,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per spot and type, the Poisson log-likelihood ratio that the type's marker set is enriched.

    O = specificity-weighted UMIs of the set (pooled over ``pool``), E = its expectation at the
    sample-wide share: LLR = O log(O / E) - (O - E) (the Poisson likelihood at the best fold
    change against fold 1), signed negative where the set is depleted. Unlike a mean of per-gene
    z-scores, the whole set's counts enter one test, so shallow units (HD bins with a few hundred
    UMIs, where most markers read 0) still accumulate evidence. Returns (LLR n x K, unweighted
    pooled set counts n x K, pooled depth n).
    """
    types = list(found)
    cols = np.unique(np.concatenate([found[t] for t in types]))
    pos = {int(c): i for i, c in enumerate(cols)}
    G, K = len(cols), len(types)
    W = np.zeros((G, K))
    U = np.zeros((G, K))
    for k, t in enumerate(types):
        for c, w in zip(found[t].tolist(), weights[t].tolist(), strict=True):
            W[pos[int(c)], k] = w
            U[pos[int(c)], k] = 1.0
    Xm = counts[:, cols].tocsr().astype(np.float64)
    depth = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
    share = np.asarray(Xm.sum(axis=0)).ravel() / max(depth.sum(), 1.0)
    wshare = share @ W
    n = counts.shape[0]
    llr = np.empty((n, K))
    sets = np.empty((n, K))
    D = np.asarray(pool @ depth).ravel()
    for s0 in range(0, n, chunk):
        s1 = min(n, s0 + chunk)
        O = np.asarray((pool[s0:s1] @ Xm).todense())  # noqa: E741
        Ow = O @ W
        E = D[s0:s1, None] * wshare[None, :] + 1e-9
        g = Ow * np.log(np.maximum(Ow, 1e-12) / E) - (Ow - E)
        llr[s0:s1] = np.where(Ow >= E, g, -g)
        sets[s0:s1] = O @ U
    return llr, sets, D


# Platt calibration of confidence: P(call correct) = 1 / (1 + exp(-(a * x + b))), x = log of the
# ratio of the top to the runner-up probability (or composition fraction, Visium) of the call
# (CALIB_FEATURE_DOC), all three marker tables pooled, never on report seeds. HD: fitted by
# `python bench/accuracy.py --tier full --seeds 0-2 --fit-calibration` (seeds 0-2). Visium: re-fitted
# after marker coherence became spatially local and duplicate merging noise-corrected, by
# `python bench/accuracy.py --tier full --seeds 0-9 --layouts visium --fit-calibration` (seeds 0-9).
CALIB_FEATURE_DOC = "x = log(p_top / p_runner_up) of the call"
CALIBRATION = {"hd": (3.107, 0.054), "visium": (12.116, 0.050)}
CALIBRATION_SEEDS = {"hd": "0-2", "visium": "0-9"}
# A spot is "unassigned" when no type's marker set is enriched (best pooled LLR below this, in
# nats: the data favour enrichment by less than e^1 to 1) - no type stands out.
MIN_LLR = 1.0


def annotate(
    counts: sp.csr_matrix,
    gene_names: np.ndarray,
    table: MarkerTable,
    multi_cell: bool,
    knn_idx: np.ndarray | None = None,
    strict: bool = False,
    spatial_graph: sp.csr_matrix | None = None,
) -> Annotation:
    """Score every spot for every cell type of ``table`` and call type, lineage, confidence, entropy.

    Steps: markers present in the data; coherent markers only (:func:`coherent_markers`);
    specificity weights (:func:`specificity_weights`); a set-level Poisson LLR per type
    (:func:`set_llr`), pooled over expression neighbours for HD bins, to probabilities (softmax of
    the per-spot LLR, refined by label spreading for HD). The call is hierarchical: the lineage's
    broad type (:attr:`MarkerTable.broad_types`) first, an organ-specific type only where its own
    markers (those no broad type lists) are enriched and its total evidence beats the broad type's.
    "unassigned" where no marker set is enriched. Confidence is calibrated: the probability that
    the call is right (see :data:`CALIBRATION`).

    Parameters
    ----------
    counts
        Raw UMI counts (spots x genes).
    multi_cell
        True for Visium spots (several cells per spot): also estimate composition, and call the
        dominant type from it.
    knn_idx
        Expression-space neighbours (n x k) to pool evidence over (single-cell-scale units only);
        None scores spots alone.
    spatial_graph
        Spatial neighbour graph (n x n, as :func:`core.analysis.spatial.spatial_graph`). For
        multi-cell spots, marker coherence is judged net of the spatial neighbours' mean, so that
        populations sharing a region do not make a mixed marker set look coherent
        (:func:`coherent_markers`); unused for single-cell-scale units.
    strict
        Raise :class:`~core.errors.NoMarkerOverlap` when fewer than two cell types can be scored;
        otherwise return an annotation marked unavailable (every spot ``unassigned``), so that the
        rest of the analysis (QC, clusters, domains, spatial statistics) still runs.
    """
    found, names, skipped = match_markers(gene_names, table)
    n = counts.shape[0]
    # Visium spots already pool ~7 cells each: pooling over expression neighbours blurs their
    # compositions (measured: lineage accuracy 0.90 unpooled vs 0.77 pooled on our synthetic
    # Visium), so only single-cell-scale units (HD bins) borrow strength from neighbours.
    pool = pool_matrix(None if multi_cell else knn_idx, n)
    pool_size = float(pool.sum() / n)
    incoherent: dict[str, int] = {}
    merged: dict[str, str] = {}
    if len(found) >= 2:
        found, incoherent = coherent_markers(
            counts, found, pool, spatial_graph=spatial_graph if multi_cell else None
        )
        if len(found) >= 2:
            found, merged = merge_duplicate_types(
                counts, found, pool, table.lineage, {t: len(table.genes[t]) for t in found}
            )
        names = {t: [str(gene_names[c]) for c in found[t]] for t in found}
    if len(found) < 2:
        reason = (
            f"only {len(found)} cell type(s) of the marker table ({table.source}) have {MIN_MARKERS}+ "
            f"marker genes in this sample; check that genes are named by symbol (not Ensembl id) "
            f"and that the table's species matches"
        )
        if strict:
            raise NoMarkerOverlap(reason)
        return unassigned(n, reason, {**skipped, **incoherent})
    skipped = {**skipped, **incoherent}
    types = list(found)
    K = len(types)
    lin_of = np.array([LINEAGES.index(table.lineage[t]) for t in types])
    broad_set = table.broad_types
    broad = np.array([t in broad_set for t in types])
    # a lineage with no broad type scored: its types all count as broad
    for li in set(lin_of.tolist()):
        if not broad[lin_of == li].any():
            broad[lin_of == li] = True
    weights = specificity_weights(found)
    llr, obs_counts, D = set_llr(counts, found, weights, pool)
    # "no type stands out": the pooled evidence (the spot and its expression neighbours, on which
    # the call rests) favours no marker set's enrichment by MIN_LLR nats
    none = llr.max(axis=1) < MIN_LLR
    llr /= pool_size  # per-spot scale for the probabilities (each pooled count serves k + 1 spots)
    # own evidence of organ-specific types: their markers that no broad type lists
    broad_genes = set(
        np.concatenate([found[t] for t, b in zip(types, broad, strict=True) if b]).tolist()
    )
    own = {
        t: found[t][~np.isin(found[t], list(broad_genes))]
        for t, b in zip(types, broad, strict=True)
        if not b
    }
    own = {t: c for t, c in own.items() if len(c) >= 1}
    own_llr = np.zeros((n, K))
    if own:
        o_llr, _, _ = set_llr(counts, own, {t: np.ones(len(c)) for t, c in own.items()}, pool)
        for j, t in enumerate(own):
            own_llr[:, types.index(t)] = o_llr[:, j] / pool_size
    # competition: broad types, plus specific types where their own markers are enriched (LLR > MIN_LLR)
    eligible = broad[None, :] | (own_llr > MIN_LLR)
    score = np.where(eligible, llr, -np.inf)
    probs = softmax(score, 1.0)
    if not multi_cell and knn_idx is not None and knn_idx.size:
        probs = label_spreading(knn_idx, probs)
    if multi_cell:
        # composition over the broad types (a spot's mix is estimated at the level every table shares)
        comp_b = estimate_composition(obs_counts[:, broad], D)
        comp = np.zeros((n, K))
        comp[:, broad] = comp_b
        basis = comp
    else:
        comp = None
        basis = probs
    order = np.argsort(-basis, axis=1)
    best = order[:, 0]
    rows = np.arange(n)
    p1 = basis[rows, best]
    p2 = basis[rows, order[:, 1]] if K > 1 else np.zeros(n)
    x = np.log(np.maximum(p1, 1e-6) / np.maximum(p2, 1e-6))
    a_, b_ = CALIBRATION["visium" if multi_cell else "hd"]
    conf = 1.0 / (1.0 + np.exp(-(a_ * x + b_)))
    p = np.clip(basis, 1e-12, 1)
    ent = -(p * np.log(p)).sum(axis=1) / np.log(max(K, 2))
    lp = np.zeros((n, len(LINEAGES)))
    for k in range(K):
        lp[:, lin_of[k]] += probs[:, k]
    top_type = np.asarray(types, dtype=object)[best]
    lineage = np.asarray([table.lineage[t] for t in types], dtype=object)[best]
    cell_type = np.where(none, "unassigned", top_type).astype(object)
    return Annotation(
        cell_types=types,
        lineage_of={t: table.lineage[t] for t in types},
        probs=probs.astype(np.float32),
        cell_type=cell_type,
        lineage=lineage,
        confidence=conf,
        entropy=ent,
        lineage_probs=lp,
        composition=comp,
        markers_used=names,
        skipped_types=skipped,
        top_type=top_type,
        calib_feature=x,
        merged_types=merged,
    )


def unassigned(n: int, reason: str, skipped: dict[str, int]) -> Annotation:
    """An annotation that could not be made: every spot ``unassigned`` (lineage ``other``)."""
    lp = np.zeros((n, len(LINEAGES)))
    lp[:, LINEAGES.index("other")] = 1.0
    return Annotation(
        cell_types=["unassigned"],
        lineage_of={"unassigned": "other"},
        probs=np.ones((n, 1), dtype=np.float32),
        cell_type=np.full(n, "unassigned", dtype=object),
        lineage=np.full(n, "other", dtype=object),
        confidence=np.zeros(n),
        entropy=np.ones(n),
        lineage_probs=lp,
        composition=None,
        markers_used={},
        skipped_types=skipped,
        available=False,
        unavailable_reason=reason,
    )


def cluster_majority(labels: np.ndarray, calls: np.ndarray) -> dict[str, dict[str, float | str]]:
    """Per cluster: the majority label and the share of spots agreeing with it."""
    out: dict[str, dict[str, float | str]] = {}
    for c in np.unique(labels):
        m = labels == c
        vals, cnt = np.unique(calls[m], return_counts=True)
        j = int(cnt.argmax())
        out[str(c)] = {
            "label": str(vals[j]),
            "agreement": round(float(cnt[j] / m.sum()), 3),
            "n": int(m.sum()),
        }
    return out
