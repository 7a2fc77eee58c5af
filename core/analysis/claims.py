"""Reliability checks: which claims the data can carry.

Every statement the analysis makes (spatial domains, cell populations, neighbourhood
enrichment, spatially variable genes) rests on the data being deep enough, wide enough and
spatially connected enough, and on the result itself being clear. :func:`assess_claims`
checks each of these against a stated threshold; a claim that fails is withheld from
``features.json``, the report and the figures, and its reason is said instead.

Each check is a :class:`Claim` (``name``, ``passed``, ``value``, ``threshold``, ``reason``),
recorded in ``analysis.json`` under ``claims``. Thresholds are documented in docs/analysis.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.enums import Layout, Unit
from core.jsonable import JSONObject

if TYPE_CHECKING:
    from core.analysis.pipeline import AnalysisResult

# data checks: per layout, the least a unit (spot or bin) must carry
MIN_MEDIAN_UMIS: dict[str, float] = {
    Layout.VISIUM: 250.0,
    Layout.VISIUM_HD: 20.0,
    Layout.GENERIC: 100.0,
}
MIN_MEDIAN_GENES: dict[str, float] = {
    Layout.VISIUM: 100.0,
    Layout.VISIUM_HD: 15.0,
    Layout.GENERIC: 50.0,
}
MIN_GENES_KEPT = 200
MIN_GRAPH_DEGREE = 2.0
# result checks
MIN_DOMAIN_SILHOUETTE = 0.15
MIN_DOMAIN_STABILITY = 0.6
MIN_ANNOTATION_COVERAGE = 0.5
MIN_SIGNIFICANT_SVGS = 1

UNIT: dict[str, Unit] = {
    Layout.VISIUM: Unit.SPOT,
    Layout.VISIUM_HD: Unit.BIN,
    Layout.GENERIC: Unit.CAPTURE_UNIT,
}

# claims that withhold a part of the output, and the checks each one rests on
DEPENDS = {
    "domains": ("depth_per_unit", "genes_kept", "spatial_graph_degree"),
    "annotation": ("depth_per_unit", "genes_per_unit"),
    "neighbourhood_enrichment": ("spatial_graph_degree", "annotation"),
    "spatially_variable_genes": ("spatial_graph_degree",),
}
WITHHOLDABLE = tuple(DEPENDS)


@dataclass
class Claim:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    reason: str

    def as_dict(self) -> JSONObject:
        return asdict(self)


def _check(
    name: str,
    value: float | None,
    threshold: float,
    ok_text: str,
    fail_text: str,
    at_least: bool = True,
) -> Claim:
    passed = (
        value is not None
        and np.isfinite(value)
        and (value >= threshold if at_least else value <= threshold)
    )
    return Claim(
        name,
        bool(passed),
        None if value is None else round(float(value), 4),
        threshold,
        ok_text if passed else fail_text,
    )


def assess_claims(res: AnalysisResult) -> list[Claim]:
    """Every reliability check of an :class:`~core.analysis.pipeline.AnalysisResult`."""
    layout = res.layout if res.layout in MIN_MEDIAN_UMIS else Layout.GENERIC
    unit = UNIT[layout]
    n = len(res.obs_names)
    umis = float(np.median(res.qc_metrics["total_counts"])) if n else 0.0
    genes = float(np.median(res.qc_metrics["n_genes"])) if n else 0.0
    n_kept = len(res.gene_names)
    degree = float(res.spatial_graph.nnz / max(n, 1))
    out = [
        _check(
            "depth_per_unit",
            umis,
            MIN_MEDIAN_UMIS[layout],
            f"median {umis:.0f} UMIs per {unit}",
            f"median {umis:.0f} UMIs per {unit}, below the {MIN_MEDIAN_UMIS[layout]:.0f} "
            f"needed to tell cell populations and regions apart",
        ),
        _check(
            "genes_per_unit",
            genes,
            MIN_MEDIAN_GENES[layout],
            f"median {genes:.0f} genes per {unit}",
            f"median {genes:.0f} genes detected per {unit}, below the "
            f"{MIN_MEDIAN_GENES[layout]:.0f} needed to score marker genes",
        ),
        _check(
            "genes_kept",
            float(n_kept),
            MIN_GENES_KEPT,
            f"{n_kept} genes kept after QC",
            f"only {n_kept} genes kept after QC (at least {MIN_GENES_KEPT} needed for an "
            f"expression embedding)",
        ),
        _check(
            "spatial_graph_degree",
            degree,
            MIN_GRAPH_DEGREE,
            f"mean {degree:.2f} spatial neighbours per {unit}",
            f"mean {degree:.2f} spatial neighbours per {unit} (at least "
            f"{MIN_GRAPH_DEGREE:.0f} needed): the {unit}s are too scattered for "
            f"neighbourhood statistics",
        ),
    ]
    by = {c.name: c for c in out}

    def blocked(name: str) -> list[str]:
        failed = [d.replace("_", " ") for d in DEPENDS[name] if d in by and not by[d].passed]
        return [f"it rests on checks that failed ({', '.join(failed)})"] if failed else []

    # domains: separation (silhouette) and stability of the chosen count
    dom = res.domains
    chosen = next((c for c in dom.candidates if c.get("chosen")), None)
    sil = chosen.get("silhouette") if chosen else None
    stab = chosen.get("stability") if chosen else None
    pre = blocked("domains")
    if pre:
        c = Claim(
            "domains",
            False,
            sil,
            MIN_DOMAIN_SILHOUETTE,
            "spatial domains not assessed: " + "; ".join(pre),
        )
    elif sil is None:
        c = Claim(
            "domains",
            True,
            None,
            MIN_DOMAIN_SILHOUETTE,
            f"{dom.k} domains, count fixed by the user",
        )
    elif sil < MIN_DOMAIN_SILHOUETTE:
        c = Claim(
            "domains",
            False,
            sil,
            MIN_DOMAIN_SILHOUETTE,
            f"the {dom.k} candidate domains are not separated (silhouette {sil:.2f}, "
            f"at least {MIN_DOMAIN_SILHOUETTE} needed)",
        )
    elif stab is not None and stab < MIN_DOMAIN_STABILITY:
        c = Claim(
            "domains",
            False,
            sil,
            MIN_DOMAIN_SILHOUETTE,
            f"the {dom.k} candidate domains are not reproducible (stability {stab:.2f} "
            f"across subsamples, at least {MIN_DOMAIN_STABILITY} needed)",
        )
    else:
        c = Claim(
            "domains",
            True,
            sil,
            MIN_DOMAIN_SILHOUETTE,
            f"{dom.k} domains, silhouette {sil:.2f}"
            + (f", stability {stab:.2f}" if stab is not None else ""),
        )
    out.append(c)

    a = res.annotation
    coverage = float(np.mean(a.cell_type.astype(str) != "unassigned")) if n else 0.0
    pre = blocked("annotation")
    if not a.available:
        c = Claim(
            "annotation",
            False,
            0.0,
            MIN_ANNOTATION_COVERAGE,
            f"cell types not assessed: {a.unavailable_reason or 'annotation unavailable'}",
        )
    elif pre:
        c = Claim(
            "annotation",
            False,
            coverage,
            MIN_ANNOTATION_COVERAGE,
            "cell types not assessed: " + "; ".join(pre),
        )
    else:
        c = _check(
            "annotation",
            coverage,
            MIN_ANNOTATION_COVERAGE,
            f"{coverage:.0%} of {unit}s assigned a cell type",
            f"only {coverage:.0%} of {unit}s could be assigned a cell type (at least "
            f"{MIN_ANNOTATION_COVERAGE:.0%} needed)",
        )
    out.append(c)
    by = {c.name: c for c in out}

    z, names = res.nhood_celltype
    pre = blocked("neighbourhood_enrichment")
    if pre:
        c = Claim(
            "neighbourhood_enrichment",
            False,
            float(len(names)),
            2.0,
            "neighbourhood enrichment not assessed: " + "; ".join(pre),
        )
    else:
        finite = bool(np.isfinite(np.asarray(z, dtype=float)).any()) if np.size(z) else False
        c = Claim(
            "neighbourhood_enrichment",
            len(names) >= 2 and finite,
            float(len(names)),
            2.0,
            f"{len(names)} cell populations compared"
            if len(names) >= 2 and finite
            else "fewer than 2 cell populations: nothing to compare",
        )
    out.append(c)

    fdr = np.asarray(res.moran["pval_norm_fdr_bh"], dtype=float)
    n_sig = int(np.sum(fdr[np.isfinite(fdr)] < 0.05))
    pre = blocked("spatially_variable_genes")
    if pre:
        c = Claim(
            "spatially_variable_genes",
            False,
            float(n_sig),
            MIN_SIGNIFICANT_SVGS,
            "spatially variable genes not assessed: " + "; ".join(pre),
        )
    else:
        c = _check(
            "spatially_variable_genes",
            float(n_sig),
            MIN_SIGNIFICANT_SVGS,
            f"{n_sig} of {len(fdr)} genes significant (FDR 0.05)",
            f"none of the {len(fdr)} tested genes is spatially variable at FDR 0.05",
        )
    out.append(c)
    return out


def withheld(claims: list[Claim]) -> dict[str, str]:
    """Name -> reason of each withholdable claim that failed."""
    return {c.name: c.reason for c in claims if c.name in WITHHOLDABLE and not c.passed}
