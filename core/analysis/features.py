"""Tissue-blind features: the only input a report prompt is ever built from.

Aggregated, rounded statistics only. Cell populations are named by lineage
(epithelial, stromal, ...), never by tissue-specific cell type; no gene
names, no sample or library ids, barcodes or paths, no raw counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from core.analysis.pipeline import AnalysisResult
from core.enums import Layout, Unit
from core.jsonable import JSONObject
from core.markers import LINEAGES

if TYPE_CHECKING:
    from core.analysis.claims import Claim

SCHEMA = "mgs.features/1"

UNIT_DESCRIPTION: dict[str, str] = {
    Layout.VISIUM: "55 um spots, each holding several cells",
    Layout.VISIUM_HD: "square bins of {b} um, most holding one cell or part of one",
    Layout.GENERIC: "capture units of unknown size",
}


def _r(x: Any, nd: int = 2) -> float:
    return float(round(float(x), nd))


def _sig(x: float, digits: int = 2) -> int:
    """Round a count to ``digits`` significant figures (no exact counts leave the analysis)."""
    if x <= 0:
        return 0
    mag = int(np.floor(np.log10(x))) - digits + 1
    return int(round(x / 10**mag) * 10**mag) if mag > 0 else round(x)


def lineage_fractions(comp: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    c = comp if mask is None else comp[mask]
    mean = c.mean(axis=0) if len(c) else np.zeros(len(LINEAGES))
    return {lin: _r(v) for lin, v in zip(LINEAGES, mean, strict=True) if v >= 0.005}


def not_assessed(claims: list[Claim], annotation_available: bool = True) -> list[JSONObject]:
    """The failed reliability checks, as features carry them (claim, reason, value, threshold).

    The reason of an unavailable annotation is said generically (the analysis.json reason names
    the marker table's file).
    """
    out: list[JSONObject] = []
    for c in claims:
        if c.passed:
            continue
        reason = c.reason
        if c.name == "annotation" and not annotation_available:
            reason = (
                "cell-type annotation was unavailable for this sample (too few marker "
                "genes of the marker table were found)"
            )
        out.append({"claim": c.name, "reason": reason, "value": c.value, "threshold": c.threshold})
    return out


def tissue_blind_features(
    res: AnalysisResult,
    image_available: bool,
    bin_size_um: float | None = None,
    claims: list[Claim] | None = None,
) -> JSONObject:
    """Build the features dictionary (schema ``mgs.features/1``) from an analysis result.

    ``claims`` (from :func:`core.analysis.claims.assess_claims`): a failed claim's features are
    withheld (domains, cell populations, neighbourhood statistics, spatially variable genes)
    and listed under ``not_assessed`` with the reason.
    """
    from core.analysis.claims import withheld

    held = withheld(claims or [])
    a = res.annotation
    lin_comp = a.lineage_composition
    n = len(res.obs_names)
    bin_um = None
    unit = (
        Unit.SPOT
        if res.layout == Layout.VISIUM
        else Unit.BIN
        if res.layout == Layout.VISIUM_HD
        else Unit.CAPTURE_UNIT
    )
    desc = UNIT_DESCRIPTION[res.layout]
    if res.layout == Layout.VISIUM_HD:
        bin_um = int(bin_size_um) if bin_size_um else None
        desc = desc.format(b=bin_um if bin_um else "several")
    qc = res.qc
    dom = res.domains.labels
    A = res.spatial_graph
    domains: list[dict[str, Any]] = []
    for d in range(res.domains.k):
        m = dom == d
        if not m.any():
            continue
        comp = lineage_fractions(lin_comp, m) if a.available else {}
        # neighbouring domains: share of graph edges leaving d that land in each other domain
        rows = np.flatnonzero(m)
        sub = A[rows]
        nb = dom[sub.indices]
        counts = np.bincount(nb[nb != d], minlength=res.domains.k)
        adjacent = [f"D{j + 1}" for j in np.argsort(-counts, kind="stable") if counts[j] >= 3][:4]
        domains.append(
            {
                "id": f"D{d + 1}",
                "fraction_of_units": _r(m.mean(), 3),
                "dominant_lineage": max(comp, key=lambda k: comp[k]) if comp else "unknown",
                "lineage_composition": comp,
                "mean_confidence": _r(a.confidence[m].mean()),
                "mean_neighbourhood_entropy": _r(res.diversity[m].mean()),
                "adjacent_domains": adjacent,
            }
        )
    z_lin, names = res.nhood_lineage
    pairs: list[tuple[float, str, str]] = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            pairs.append((_r(z_lin[i, j], 1), names[i], names[j]))
    coloc = [
        {"a": a_, "b": b_, "z": z_}
        for z_, a_, b_ in sorted([p for p in pairs if p[0] > 2], key=lambda p: -p[0])[:5]
    ]
    segr = [
        {"a": a_, "b": b_, "z": z_}
        for z_, a_, b_ in sorted([p for p in pairs if p[0] < -2], key=lambda p: p[0])[:5]
    ]
    fdr = res.moran["pval_norm_fdr_bh"]
    I_vals = res.moran["I"]
    finite = np.isfinite(I_vals)
    top_I = np.sort(I_vals[finite])[::-1][:5]
    lin_codes = np.array([LINEAGES.index(x) for x in a.lineage])
    from core.analysis.spatial import simpson_index

    annotated = a.available and "annotation" not in held
    nhood_ok = annotated and "neighbourhood_enrichment" not in held
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "platform": {
            "layout": res.layout,
            "unit": unit,
            "unit_description": desc,
            "bin_size_um": bin_um,
        },
        "qc": {
            "units_analysed": _sig(n),
            "fraction_removed_by_qc": _r(1 - qc.n_spots_kept / max(qc.n_spots_in, 1), 3),
            "median_genes_per_unit": _sig(float(np.median(res.qc_metrics["n_genes"]))),
            "median_mito_fraction": _r(float(np.median(res.qc_metrics["pct_mito"])), 3),
        },
        "lineage_composition": lineage_fractions(lin_comp) if annotated else {},
        "annotation": {
            "available": annotated,
            "n_cell_populations": len(np.unique(a.cell_type)),
            "median_confidence": _r(np.median(a.confidence)),
            "fraction_low_confidence": _r(np.mean(a.confidence < 0.5)),
            "mean_normalised_entropy": _r(np.mean(a.entropy)),
        },
        "clusters": {"n_clusters": int(res.clusters.max() + 1) if n else 0},
        "domains": domains if "domains" not in held else [],
        "domain_count": (
            {"chosen": len(domains), "close_alternative": res.domains.close_alternative}
            if "domains" not in held
            else {}
        ),
        "spatial": {
            "heterogeneity": {
                "mean_neighbourhood_entropy": _r(float(res.diversity.mean())),
                "simpson_index": _r(simpson_index(lin_codes)),
            },
            "lineage_colocalisation": coloc if nhood_ok else [],
            "lineage_segregation": segr if nhood_ok else [],
            "spatially_variable_genes": {
                "n_tested": int(finite.sum()),
                "n_significant_fdr05": int(np.sum(fdr[finite] < 0.05)),
                "fraction_significant": _r(np.mean(fdr[finite] < 0.05) if finite.any() else 0.0),
                "top_morans_i": [_r(v) for v in top_I],
            },
        },
        "image": {"available": bool(image_available)},
    }
    if "annotation" in held:
        out["annotation"] = {"available": False}
        for d in out["domains"]:
            d.update({"dominant_lineage": "unknown", "lineage_composition": {}})
            d.pop("mean_confidence", None)
        out["spatial"].pop("heterogeneity", None)
    if "spatially_variable_genes" in held:
        out["spatial"].pop("spatially_variable_genes", None)
    if claims is not None:
        out["not_assessed"] = not_assessed(claims, a.available)
    return out
