"""Spatial domains: clustering of neighbourhood-smoothed expression and composition.

Domains are tissue regions, not expression clusters. On HD bins (one cell per
bin) expression clusters follow cell types; a region is defined by what
surrounds a bin. We therefore smooth each spot's expression embedding and
cell-type probabilities over a radius suited to the layout (a Gaussian on
the bin grid for Visium HD, followed there by an edge-preserving pass; Gaussian
weights over neighbouring spots for Visium and other layouts), cluster the smoothed profiles with k-means, pick
the number of domains as the largest count whose clusters are parted by density
valleys and found again on subsamples (:func:`choose_k`), and clean
isolated speckles with a majority vote over the spatial neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

import numpy as np
import scipy.sparse as sp
from scipy import ndimage
from scipy.spatial import cKDTree

from core.enums import Layout

# smoothing radius (Gaussian sigma) in micrometres per layout
# (tuned on bench/domain_sweep.py seeds 0-4: the earlier 150/60/100 um blurred small islands
# and thin bands into their neighbours; an HD bin's 3-bin radius still averages ~30 cells)
SIGMA_UM: dict[str, float] = {Layout.VISIUM: 90.0, Layout.VISIUM_HD: 24.0, Layout.GENERIC: 60.0}


class Candidate(TypedDict):
    """One candidate domain count and its evidence (``score``, ``chosen``: set by the choice)."""

    k: int
    silhouette: float
    stability: float
    valley: NotRequired[float]
    score: NotRequired[float]
    chosen: NotRequired[bool]


@dataclass
class DomainResult:
    labels: np.ndarray
    k: int
    silhouette: dict[int, float]
    sigma_um: float
    # every candidate count: {"k", "silhouette", "stability", "valley", "score", "chosen"}
    candidates: list[Candidate] = field(default_factory=list)
    # a count whose evidence is nearly as good as the chosen one's (None when clear-cut)
    close_alternative: int | None = None
    method: str = "fixed"
    stability: float | None = None  # of the chosen count


def grid_indices(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Integer (row, col) of square bins from their coordinates, and the pitch (px)."""
    tree = cKDTree(xy)
    d, _ = tree.query(xy[: min(len(xy), 2000)], k=2)
    pitch = float(np.median(d[:, 1]))
    origin = xy.min(axis=0)
    rc = np.rint((xy - origin) / pitch).astype(np.int64)
    return rc[:, 1], rc[:, 0], pitch


def smooth_grid(F: np.ndarray, rows: np.ndarray, cols: np.ndarray, sigma_bins: float) -> np.ndarray:
    """Gaussian smoothing of per-bin features on the bin grid (mask-normalised; empty bins ignored)."""
    H, W = int(rows.max()) + 1, int(cols.max()) + 1
    mask = np.zeros((H, W), dtype=np.float32)
    mask[rows, cols] = 1.0
    msm = ndimage.gaussian_filter(mask, sigma_bins, mode="constant", truncate=3.0)
    out = np.empty(F.shape, dtype=np.float32)
    grid = np.zeros((H, W), dtype=np.float32)
    for j in range(F.shape[1]):
        grid[:] = 0
        grid[rows, cols] = F[:, j]
        sm = ndimage.gaussian_filter(grid, sigma_bins, mode="constant", truncate=3.0)
        out[:, j] = sm[rows, cols] / np.maximum(msm[rows, cols], 1e-6)
    return out


# edge-preserving second pass on the HD grid (after the Gaussian): a bilateral filter whose
# weights fall with grid distance (sigma EDGE_SIGMA_BINS, within EDGE_RADIUS_BINS) and with the
# feature distance to the centre bin (bandwidth EDGE_H times the median distance between
# adjacent bins), EDGE_ROUNDS times. It averages within a region, not across its border, so a
# large domain's spread shrinks while narrow bands keep their profile: k-means then no longer
# splits the large domain first. Tuned on the 16 hard 8-domain shallow HD samples of tuning seeds
# 0-15 and checked on 78 HD samples of seeds 0-99 (docs/accuracy.md).
EDGE_RADIUS_BINS = 5
EDGE_SIGMA_BINS = 3.0
EDGE_H = 2.0
EDGE_ROUNDS = 2


def edge_preserving_grid(
    F: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    radius: int = EDGE_RADIUS_BINS,
    sigma_bins: float = EDGE_SIGMA_BINS,
    h: float = EDGE_H,
    rounds: int = EDGE_ROUNDS,
) -> np.ndarray:
    """Bilateral smoothing of per-bin features on the bin grid (empty bins ignored).

    Each round replaces a bin's features by the mean over bins within ``radius`` weighted by
    exp(-d^2 / 2 sigma^2) in grid distance and exp(-|f - f0|^2 / 2 b^2) in feature distance,
    where b is ``h`` times the median feature distance between horizontally adjacent bins.
    """
    R = int(radius)
    H, W = int(rows.max()) + 1, int(cols.max()) + 1
    nf = F.shape[1]
    G = np.zeros((H + 2 * R, W + 2 * R, nf), dtype=np.float32)
    M = np.zeros((H + 2 * R, W + 2 * R), dtype=np.float32)
    M[rows + R, cols + R] = 1.0
    X = F.astype(np.float32)
    for _ in range(rounds):
        G[:] = 0
        G[rows + R, cols + R] = X
        right = G[rows + R, cols + R + 1]
        has_right = M[rows + R, cols + R + 1] > 0
        if not has_right.any():
            break
        b2 = h * h * float(np.median(((right - X) ** 2).sum(axis=1)[has_right]))
        if b2 <= 0:
            break
        num = np.zeros_like(X)
        den = np.zeros(len(X), dtype=np.float32)
        for dy in range(-R, R + 1):
            for dx in range(-R, R + 1):
                if dy * dy + dx * dx > R * R:
                    continue
                q = G[rows + R + dy, cols + R + dx]
                w = M[rows + R + dy, cols + R + dx] * np.exp(
                    -(dy * dy + dx * dx) / (2 * sigma_bins**2)
                    - ((q - X) ** 2).sum(axis=1) / (2 * b2)
                )
                num += w[:, None] * q
                den += w
        X = (num / np.maximum(den, 1e-12)[:, None]).astype(np.float32, copy=False)
    return X


def smooth_graph(F: np.ndarray, xy: np.ndarray, sigma_px: float, max_k: int = 64) -> np.ndarray:
    """Gaussian-weighted mean of features over spots within 2.5 sigma."""
    n = len(xy)
    tree = cKDTree(xy)
    k = min(max_k, n)
    dist, idx = tree.query(xy, k=k, distance_upper_bound=2.5 * sigma_px)
    ok = np.isfinite(dist) & (idx < n)
    w = np.where(ok, np.exp(-0.5 * (np.where(ok, dist, 0) / sigma_px) ** 2), 0.0)
    rows = np.repeat(np.arange(n), k).reshape(idx.shape)
    S = sp.csr_matrix((w[ok], (rows[ok], idx[ok])), shape=(n, n))
    S = sp.diags(1.0 / np.maximum(np.asarray(S.sum(axis=1)).ravel(), 1e-12)) @ S
    out: np.ndarray = np.asarray(S @ F, dtype=np.float32)
    return out


def kmeans(
    X: np.ndarray, k: int, seed: int, n_init: int = 3, n_iter: int = 40
) -> tuple[np.ndarray, np.ndarray, float]:
    """k-means++ with Lloyd iterations (float32); best of ``n_init`` seeded starts."""
    rng = np.random.default_rng(seed)
    n = len(X)
    x2 = (X * X).sum(axis=1)
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for _ in range(n_init):
        C = np.empty((k, X.shape[1]), dtype=X.dtype)
        C[0] = X[rng.integers(n)]
        d2 = ((X - C[0]) ** 2).sum(axis=1)
        for c in range(1, k):
            p = d2 / d2.sum() if d2.sum() > 0 else None
            C[c] = X[rng.choice(n, p=p)]
            d2 = np.minimum(d2, ((X - C[c]) ** 2).sum(axis=1))
        labels = np.zeros(n, dtype=np.int64)
        for it in range(n_iter):
            D = x2[:, None] - 2 * X @ C.T + (C * C).sum(axis=1)[None, :]
            new = D.argmin(axis=1)
            if it > 0 and np.array_equal(new, labels):
                break
            labels = new
            for c in range(k):
                m = labels == c
                C[c] = X[m].mean(axis=0) if m.any() else X[rng.integers(n)]
        inertia = float(
            np.sum(np.min(x2[:, None] - 2 * X @ C.T + (C * C).sum(axis=1)[None, :], axis=1))
        )
        if best is None or inertia < best[2]:
            best = (labels.copy(), C.copy(), inertia)
    assert best is not None
    return best


def silhouette(X: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Euclidean) of a (small) labelled sample."""
    ks = np.unique(labels)
    if len(ks) < 2:
        return -1.0
    D = np.sqrt(np.maximum((X * X).sum(1)[:, None] - 2 * X @ X.T + (X * X).sum(1)[None, :], 0))
    a = np.zeros(len(X))
    b = np.full(len(X), np.inf)
    for c in ks:
        m = labels == c
        cnt = m.sum()
        mean_d = D[:, m].sum(axis=1) / np.maximum(cnt - m.astype(int) * 1, 1)
        a = np.where(m, D[:, m].sum(axis=1) / max(cnt - 1, 1), a)
        b = np.where(m, b, np.minimum(b, D[:, m].mean(axis=1)))
        del mean_d
    s = (b - a) / np.maximum(np.maximum(a, b), 1e-12)
    return float(np.mean(s))


def majority_filter(labels: np.ndarray, A: sp.csr_matrix, rounds: int = 2) -> np.ndarray:
    """Replace each label by the most common label among itself and its spatial neighbours."""
    n = len(labels)
    K = int(labels.max()) + 1
    R = (A + sp.eye(n, format="csr")).tocsr()
    lab = labels
    for _ in range(rounds):
        onehot = sp.csr_matrix((np.ones(n), (np.arange(n), lab)), shape=(n, K))
        votes = (R @ onehot).toarray()
        votes[np.arange(n), lab] += 0.5  # ties keep the current label
        lab = votes.argmax(axis=1)
    return lab


def ari(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labellings of the same items."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    C = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(C, (ai, bi), 1.0)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    n2 = len(ai) * (len(ai) - 1) / 2
    s, sa, sb = pairs(C), pairs(C.sum(1)), pairs(C.sum(0))
    expected = sa * sb / n2 if n2 else 0.0
    den = (sa + sb) / 2 - expected
    return float((s - expected) / den) if den > 0 else 1.0


def _assign(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    D = (X * X).sum(1)[:, None] - 2 * X @ C.T + (C * C).sum(1)[None, :]
    out: np.ndarray = D.argmin(axis=1)
    return out


# choice of the domain count. A domain is a region whose smoothed profile is a mode of its own:
# between two real domains the profiles pass through a thin border zone (a density valley),
# while k-means splitting one region (or carving a border zone out as a "domain") cuts through
# a single mode. A candidate is admissible when, for every cluster and its nearest cluster,
# the density of the members projected on the line joining the two centroids dips between
# them to at most VALLEY_MAX of the lower of the two peaks (a ratio: free of the features'
# scale and of the count), and its stability is at least STABILITY_MIN; the largest
# admissible count wins. (A silhouette maximum is not used: it rises whenever the two most
# similar domains are merged, so it collapsed banded HD samples to 2 domains of 4 to 6.)
# VALLEY_MAX 0.9 (with the counting-noise allowance of boundary_valley) asks for a dip beyond
# noise; on tuning seeds 20-77 (58 HD, 18 Visium samples) any bound from 0.85 to 0.99 chose
# the same counts on Visium and gave the same HD ARI minimum.
VALLEY_MAX = 0.9
STABILITY_MIN = 0.9
N_RESAMPLES = 4
RESAMPLE_FRACTION = 0.7
CLOSE_MARGIN = 0.05  # a count whose admissibility is decided by less than this is "close"


def boundary_valley(
    X: np.ndarray, labels: np.ndarray, C: np.ndarray, bins: int = 40, z: float = 1.0
) -> float:
    """How far the boundaries between clusters fall short of being density valleys.

    For every cluster and its nearest cluster (by centroid), the members of both are
    projected on the line through the two centroids (0 at one, 1 at the other), and
    histogrammed over [-0.5, 1.5] (``bins`` bins, fewer for small pairs; smoothed over 3
    bins). The ratio of the lowest density between the two peaks to the lower peak is 0 for
    two separate modes and 1 where no valley parts them. Counting noise is held against the
    dip: the valley count is raised and the peak lowered by ``z`` standard errors (a 3-bin
    mean of counts has variance count / 3), so that a few hundred spots' histogram noise is
    not read as a valley; the ratio is capped at 1. Returns the highest ratio over the pairs
    (the weakest boundary); 0.0 for a single cluster.

    Scale-free: the ratio does not change with the features' units, the smoothing radius'
    effect on their spread, or the number of clusters, unlike a silhouette, which rises
    whenever the two most similar regions are merged.
    """
    k = len(C)
    if k < 2:
        return 0.0
    D = ((C[:, None, :] - C[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(D, np.inf)
    pairs = {(min(i, int(j)), max(i, int(j))) for i, j in enumerate(D.argmin(axis=1))}
    worst = 0.0
    for a, b in sorted(pairs):
        u = C[b] - C[a]
        uu = float(u @ u)
        m = (labels == a) | (labels == b)
        if uu <= 0 or not m.any():
            worst = 1.0
            continue
        t = (X[m] - C[a]) @ u / uu
        nb = int(np.clip(2 * np.sqrt(m.sum()), 16, bins))
        h, _ = np.histogram(t, bins=nb, range=(-0.5, 1.5))
        h = np.convolve(h.astype(np.float64), np.ones(3) / 3, mode="same")
        half = nb // 2
        ia = int(np.argmax(h[:half]))
        ib = half + int(np.argmax(h[half:]))
        peak = min(h[ia], h[ib])
        v = float(h[ia : ib + 1].min())
        # counting noise of a 3-bin mean: variance count / 3
        lo_peak = peak - z * np.sqrt(peak / 3)
        ratio = min(1.0, (v + z * np.sqrt(v / 3)) / lo_peak) if lo_peak > 0 else 1.0
        worst = max(worst, ratio)
    return worst


def stability(
    X: np.ndarray,
    k: int,
    eval_idx: np.ndarray,
    seed: int,
    n_resamples: int = N_RESAMPLES,
    fraction: float = RESAMPLE_FRACTION,
) -> float:
    """Agreement of k-means with ``k`` clusters fitted on random subsamples (different seeds).

    Each fit labels the same evaluation points; the score is the mean pairwise ARI. Each fit takes
    the best of 4 k-means starts: stability is to measure whether the data hold k clusters, not
    whether one start fell into a local optimum (with 2 starts, dropping one T-cell marker gene from
    the annotation moved k = 4's stability from 1.0 to 0.81 on the seed-11 Visium test sample, and the
    count from 4 to 2; with 4 starts it is 1.0 either way).
    """
    rng = np.random.default_rng(seed + 7919 * k)
    n = len(X)
    labs = []
    for b in range(n_resamples):
        fit = rng.choice(n, size=max(k * 10, int(n * fraction)), replace=False)
        _, C, _ = kmeans(X[fit], k, seed + 1000 * (b + 1), n_init=4)
        labs.append(_assign(X[eval_idx], C))
    scores = [ari(labs[i], labs[j]) for i in range(len(labs)) for j in range(i + 1, len(labs))]
    return float(np.mean(scores)) if scores else 1.0


def choose_k(
    candidates: list[Candidate],
    valley_max: float = VALLEY_MAX,
    stability_min: float = STABILITY_MIN,
) -> tuple[int, int | None]:
    """The chosen count and a close alternative (or None), from candidates holding ``k``,
    ``valley`` (:func:`boundary_valley`) and ``stability``.

    Each candidate gets a ``score``: how far it falls short of admissibility (valley above
    ``valley_max`` plus stability below ``stability_min``; 0 when admissible). The largest
    admissible count wins; without any, the one that falls least short (the smaller on a tie).
    A close alternative is a larger count that misses admissibility by less than
    ``CLOSE_MARGIN``, or else, when the chosen count's weakest boundary is within
    ``CLOSE_MARGIN`` of the bound, the next coarser admissible count.
    """
    for c in candidates:
        short = max(0.0, c["valley"] - valley_max) + max(0.0, stability_min - c["stability"])
        c["score"] = round(short, 4)
    ok = [c for c in candidates if c["score"] == 0]
    if ok:
        chosen = max(ok, key=lambda c: c["k"])
    else:
        chosen = min(candidates, key=lambda c: (c["score"], c["k"]))
    ck = chosen["k"]
    larger = [c for c in candidates if c["k"] > ck and c["score"] - chosen["score"] < CLOSE_MARGIN]
    close: int | None = None
    if larger:
        close = int(min(c["k"] for c in larger))
    else:
        margin = valley_max - chosen["valley"]
        coarser = [c for c in candidates if c["k"] < ck and c["score"] <= chosen["score"]]
        if margin < CLOSE_MARGIN and coarser:
            close = int(max(c["k"] for c in coarser))
    return int(ck), close


def domain_features(
    pcs: np.ndarray,
    probs: np.ndarray,
    xy: np.ndarray,
    layout: str,
    px_per_um: float | None,
    sigma_um: float,
) -> np.ndarray:
    """Neighbourhood-smoothed, centred expression embedding and cell-type probabilities."""
    n = len(xy)
    pcs = pcs[:, : min(pcs.shape[1], 20)]
    scale = np.sqrt((pcs.var(axis=0)).sum()) or 1.0
    pscale = np.sqrt(probs.var(axis=0).sum()) or 1.0
    F = np.hstack([pcs / scale, probs / pscale]).astype(np.float32)
    if layout == Layout.VISIUM_HD:
        rows, cols, pitch = grid_indices(xy)
        bin_um = pitch / px_per_um if px_per_um else 8.0
        Fs = smooth_grid(F, rows, cols, max(1.0, sigma_um / bin_um))
        Fs = edge_preserving_grid(Fs, rows, cols)
    else:
        if px_per_um is None:
            d, _ = cKDTree(xy).query(xy[: min(n, 2000)], k=2)
            pitch = float(np.median(d[:, 1]))
            px_per_um = pitch / 100.0 if layout == Layout.VISIUM else pitch / 50.0
        Fs = smooth_graph(F, xy, sigma_um * px_per_um)
    out: np.ndarray = Fs - Fs.mean(axis=0)
    return out


def find_domains(
    pcs: np.ndarray,
    probs: np.ndarray,
    xy: np.ndarray,
    layout: str,
    A: sp.csr_matrix,
    px_per_um: float | None,
    seed: int = 0,
    k_range: tuple[int, int] = (2, 10),
    n_domains: int | None = None,
) -> DomainResult:
    """Spatial domains from neighbourhood-smoothed PCs and cell-type probabilities.

    The count is chosen by boundary valleys and stability together (:func:`choose_k`):
    every candidate is recorded with its silhouette, stability and valley, and a close
    alternative is flagged.

    Parameters
    ----------
    pcs, probs
        Expression embedding (n x d) and cell-type probabilities (n x K).
    px_per_um
        Coordinate pixels per micrometre (None: use the spot pitch as 100 um for Visium,
        the bin pitch as the bin size for HD).
    n_domains
        Fix the number of domains instead of choosing it.
    """
    n = len(xy)
    sigma_um = SIGMA_UM.get(layout, SIGMA_UM[Layout.GENERIC])
    Fs = domain_features(pcs, probs, xy, layout, px_per_um, sigma_um)
    rng = np.random.default_rng(seed)
    sub = rng.choice(n, size=min(n, 1500), replace=False)
    fit_idx = rng.choice(n, size=min(n, 5_000), replace=False)
    if n_domains is not None:
        ks = [n_domains]
    else:
        ks = list(range(k_range[0], min(k_range[1], max(2, n // 20)) + 1))
    fits: dict[int, np.ndarray] = {}
    candidates: list[Candidate] = []
    for k in ks:
        _labels_fit, C, _ = kmeans(Fs[fit_idx], k, seed)
        labels = _assign(Fs, C)
        fits[k] = labels
        if len(np.unique(labels[sub])) > 1:
            sil = silhouette(Fs[sub], labels[sub])
            stab = stability(Fs[fit_idx], k, np.arange(min(len(fit_idx), 1500)), seed)
            valley = boundary_valley(Fs, labels, C)
            candidates.append(
                {
                    "k": k,
                    "silhouette": round(sil, 4),
                    "stability": round(stab, 4),
                    "valley": round(valley, 4),
                }
            )
    if len(ks) > 1 and candidates:
        best_k, close = choose_k(candidates)
        method = "valley+stability"
    else:
        best_k, close, method = ks[0], None, "fixed"
    for c in candidates:
        c["chosen"] = c["k"] == best_k
    best_labels = fits[best_k]
    labels = majority_filter(best_labels, A) if A.nnz else best_labels
    # relabel by size
    sizes = np.bincount(labels, minlength=best_k)
    order = np.argsort(-sizes, kind="stable")
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    labels = remap[labels]
    present = np.unique(labels)
    labels = np.searchsorted(present, labels)
    chosen_stab = next((c["stability"] for c in candidates if c["k"] == best_k), None)
    return DomainResult(
        labels=labels,
        k=len(present),
        silhouette={c["k"]: c["silhouette"] for c in candidates},
        sigma_um=sigma_um,
        candidates=candidates,
        close_alternative=close,
        method=method,
        stability=chosen_stab,
    )
