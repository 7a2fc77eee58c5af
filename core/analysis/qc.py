"""Quality control: per-spot metrics and layout-aware filtering.

Thresholds combine an absolute floor suited to the layout (a 55 um Visium
spot carries thousands of UMIs, an 8 um HD bin a few hundred) with a robust
outlier rule (median - 3 MAD on log counts), so that a shallow subset is not
emptied by a floor meant for a full-depth sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from core.enums import Layout
from core.errors import EmptyAfterQC
from core.jsonable import JSONObject

# absolute floors per layout: min UMIs per spot/bin, max mitochondrial fraction
FLOORS: dict[str, dict[str, float]] = {
    Layout.VISIUM: {"min_counts": 50, "min_genes": 20, "max_mito": 0.35},
    Layout.VISIUM_HD: {"min_counts": 10, "min_genes": 5, "max_mito": 0.50},
    Layout.GENERIC: {"min_counts": 20, "min_genes": 10, "max_mito": 0.40},
}


@dataclass
class QCResult:
    """What QC kept and removed, and why."""

    n_spots_in: int
    n_genes_in: int
    n_spots_kept: int
    n_genes_kept: int
    removed_spots: dict[str, int]
    removed_genes: dict[str, int]
    thresholds: dict[str, float]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> JSONObject:
        return asdict(self)


def _mad(x: np.ndarray) -> float:
    med = np.median(x)
    return float(np.median(np.abs(x - med)) * 1.4826)


def qc_metrics(X: sp.csr_matrix, gene_names: np.ndarray) -> dict[str, np.ndarray]:
    """Per-spot total counts, genes detected, mitochondrial and ribosomal fractions."""
    total = np.asarray(X.sum(axis=1)).ravel().astype(np.float64)
    n_genes = np.diff(X.indptr).astype(np.int64)
    upper = np.char.upper(gene_names.astype(str))
    mito = np.char.startswith(upper, "MT-")
    ribo = np.char.startswith(upper, "RPS") | np.char.startswith(upper, "RPL")
    denom = np.maximum(total, 1.0)
    pct_mito = (
        np.asarray(X[:, np.flatnonzero(mito)].sum(axis=1)).ravel() / denom
        if mito.any()
        else np.zeros_like(total)
    )
    pct_ribo = (
        np.asarray(X[:, np.flatnonzero(ribo)].sum(axis=1)).ravel() / denom
        if ribo.any()
        else np.zeros_like(total)
    )
    return {"total_counts": total, "n_genes": n_genes, "pct_mito": pct_mito, "pct_ribo": pct_ribo}


def _detected_in(X: sp.csr_matrix, rows: np.ndarray, chunk_rows: int = 65_536) -> np.ndarray:
    """Per gene, the number of ``rows`` (a mask) where it is non-zero; no row-subset copy."""
    out = np.zeros(X.shape[1], dtype=np.int64)
    for c0 in range(0, X.shape[0], chunk_rows):
        c1 = min(c0 + chunk_rows, X.shape[0])
        a, b = int(X.indptr[c0]), int(X.indptr[c1])
        m = np.repeat(rows[c0:c1], np.diff(X.indptr[c0 : c1 + 1]))
        out += np.bincount(X.indices[a:b][m], minlength=X.shape[1])
    return out


def filter_spots_and_genes(
    X: sp.csr_matrix, metrics: dict[str, np.ndarray], layout: str
) -> tuple[np.ndarray, np.ndarray, QCResult]:
    """Boolean masks of kept spots and genes, with the reasons for each removal.

    Raises
    ------
    EmptyAfterQC
        When no spot (or no gene) survives.
    """
    floors = FLOORS.get(layout, FLOORS[Layout.GENERIC])
    n, g = X.shape
    total, ngenes, mito = metrics["total_counts"], metrics["n_genes"], metrics["pct_mito"]
    notes: list[str] = []
    logc = np.log1p(total)
    pos = total > 0
    mad_low = float(np.expm1(np.median(logc[pos]) - 3 * _mad(logc[pos]))) if pos.any() else 0.0
    min_counts = max(float(floors["min_counts"]), mad_low)
    min_genes = float(floors["min_genes"])
    # a shallow sample (e.g. a gene subset) would be emptied by a floor meant for full depth:
    # fall back to the robust rule alone, and say so.
    if pos.any() and np.mean(total >= min_counts) < 0.5:
        min_counts = max(1.0, mad_low)
        min_genes = 1.0
        notes.append("sample is shallow for its layout: count floors relaxed to the MAD rule")
    mito_cut = float(floors["max_mito"])
    if np.any(mito > 0):
        mito_cut = max(mito_cut, float(np.median(mito) + 5 * _mad(mito)))
    low_counts = total < min_counts
    low_genes = (ngenes < min_genes) & ~low_counts
    high_mito = (mito > mito_cut) & ~low_counts & ~low_genes
    keep_spots = ~(low_counts | low_genes | high_mito)
    n_keep = int(keep_spots.sum())
    if n_keep == 0:
        raise EmptyAfterQC(
            f"no spots left after QC (min {min_counts:.0f} UMIs, min {min_genes:.0f} genes, "
            f"max {mito_cut:.0%} mitochondrial): the sample holds no usable spots"
        )
    min_spots = max(3, int(np.ceil(0.0005 * n_keep))) if n_keep >= 100 else 1
    detected = _detected_in(X, keep_spots)
    keep_genes = detected >= min_spots
    if not keep_genes.any():
        raise EmptyAfterQC("no genes left after QC: no gene is detected in enough spots")
    result = QCResult(
        n_spots_in=n,
        n_genes_in=g,
        n_spots_kept=n_keep,
        n_genes_kept=int(keep_genes.sum()),
        removed_spots={
            "low_counts": int(low_counts.sum()),
            "low_genes": int(low_genes.sum()),
            "high_mito": int(high_mito.sum()),
        },
        removed_genes={"detected_in_too_few_spots": int((~keep_genes).sum())},
        thresholds={
            "min_counts": round(min_counts, 2),
            "min_genes": min_genes,
            "max_mito_fraction": round(mito_cut, 4),
            "min_spots_per_gene": float(min_spots),
        },
        notes=notes,
    )
    return keep_spots, keep_genes, result
