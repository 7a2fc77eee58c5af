"""The template writer: a deterministic narrative from the features, no language model.

Labelled as such in the report; used when no model is at hand, never as a silent
fallback for a model that failed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from core.jsonable import JSONValue
from core.report.backends import Generation, GenerationRequest
from core.report.prompts import SECTIONS, annotation_available, not_assessed_reasons

TEMPLATE_VERSION = "1"


def _pct(x: Any) -> str:
    try:
        return f"{float(x) * 100:.0f}%"
    except (TypeError, ValueError):
        return "an unknown share"


def _ranked(comp: Mapping[str, Any]) -> list[tuple[str, float]]:
    items = [
        (str(k), float(v))
        for k, v in comp.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return sorted(items, key=lambda kv: -kv[1])


def write_template_narrative(features: Mapping[str, JSONValue], has_image: bool) -> str:
    """A narrative under the report's section headings, written from ``features`` alone.

    ``features`` (a parsed ``features.json``) is read defensively: a block of another shape
    in an older file is taken as it comes.
    """
    doc: Mapping[str, Any] = features
    unit = str((doc.get("platform") or {}).get("unit") or "spot")
    qc = doc.get("qc") or {}
    comp = _ranked(doc.get("lineage_composition") or {})
    ann = doc.get("annotation") or {}
    annotated = annotation_available(features)
    domains = [d for d in doc.get("domains") or [] if isinstance(d, Mapping)]
    spatial = doc.get("spatial") or {}
    svg = spatial.get("spatially_variable_genes") or {}
    held = not_assessed_reasons(features)
    out: dict[str, str] = {}

    out["specimen_and_qc"] = (
        f"{qc.get('units_analysed', 'An unknown number of')} {unit}s passed quality control "
        f"({_pct(qc.get('fraction_removed_by_qc'))} were removed). The median {unit} detected "
        f"{qc.get('median_genes_per_unit', 'an unknown number of')} genes, with a median "
        f"mitochondrial fraction of {_pct(qc.get('median_mito_fraction'))}."
    )
    if domains:
        largest = max(domains, key=lambda d: float(d.get("fraction_of_units") or 0))
        parts = [
            f"{d.get('id')} ({_pct(d.get('fraction_of_units'))}, mostly "
            f"{d.get('dominant_lineage')})"
            if annotated and d.get("lineage_composition")
            else f"{d.get('id')} ({_pct(d.get('fraction_of_units'))})"
            for d in domains
        ]
        out["tissue_architecture"] = (
            f"The section divides into {len(domains)} spatial domains: {'; '.join(parts)}. "
            f"The largest is {largest.get('id')}."
        )
        alt = (doc.get("domain_count") or {}).get("close_alternative")
        if alt:
            out["tissue_architecture"] += (
                f" A division into {alt} domains fits the data nearly "
                "as well, so the count is uncertain."
            )
    elif "domains" in held:
        out["tissue_architecture"] = f"Spatial domains are not reported: {held['domains']}."
    else:
        out["tissue_architecture"] = "No spatial domains were computed."
    if not annotated and "annotation" in held and "marker" not in held["annotation"]:
        out["cell_populations"] = (
            f"Cell populations are not reported: {held['annotation']}; no lineage composition "
            "or annotation confidence is given."
        )
    elif not annotated:
        out["cell_populations"] = (
            "Cell-type annotation was unavailable for this sample: too few genes of the marker "
            "table were found, so no cell populations, lineage composition or annotation "
            "confidence were computed. Check that genes are named by symbol and that the "
            "marker table's species matches."
        )
    elif comp:
        top = ", ".join(f"{k} ({_pct(v)})" for k, v in comp[:3])
        sparse = [k for k, v in comp if v < 0.02]
        out["cell_populations"] = (
            f"The most abundant lineages are {top}. "
            + (f"Sparse or absent: {', '.join(sparse)}. " if sparse else "")
            + f"The annotation's median confidence is {ann.get('median_confidence', 'unknown')}, "
            f"with {_pct(ann.get('fraction_low_confidence'))} of {unit}s of low confidence."
        )
    else:
        out["cell_populations"] = "No lineage composition was computed."
    coloc = spatial.get("lineage_colocalisation") or []
    segr = spatial.get("lineage_segregation") or []
    together = (
        "; ".join(f"{r.get('a')} with {r.get('b')}" for r in coloc[:3] if isinstance(r, Mapping))
        or "no lineage pair"
    )
    apart = (
        "; ".join(f"{r.get('a')} from {r.get('b')}" for r in segr[:3] if isinstance(r, Mapping))
        or "no lineage pair"
    )
    lineage_stats = (
        f"Found together more than by chance: {together}. Kept apart: {apart}. "
        if annotated
        else "Lineage co-localisation was not computed because the annotation was unavailable. "
    )
    if "neighbourhood_enrichment" in held and annotated:
        lineage_stats = (
            f"Lineage co-localisation is not reported: {held['neighbourhood_enrichment']}. "
        )
    svg_text = (
        f"Spatially variable genes are not reported: {held['spatially_variable_genes']}."
        if "spatially_variable_genes" in held
        else f"{svg.get('n_significant_fdr05', 'An unknown number of')} of "
        f"{svg.get('n_tested', 'the tested')} genes vary spatially (FDR 0.05)."
    )
    out["spatial_organisation"] = lineage_stats + svg_text
    out["morphology"] = (
        "The template writer does not read the image; morphology was not assessed."
        if has_image
        else "No H&E image was available; morphology was not assessed."
    )
    data_checks = [
        r
        for c, r in held.items()
        if c
        not in ("domains", "annotation", "neighbourhood_enrichment", "spatially_variable_genes")
    ]
    out["uncertainty"] = (
        (
            f"The data are too thin for some claims: {'; '.join(data_checks)}. "
            if data_checks
            else ""
        )
        + f"Each {unit} can mix several cells, so lineage shares are estimates. This narrative "
        "was written by a deterministic template from the computed features, without a "
        "language model, and adds no interpretation beyond them."
    )
    out["follow_up"] = (
        "Review the H&E section directly; confirm the dominant lineages of each domain with "
        "immunohistochemistry for lineage markers."
    )
    return "\n\n".join(f"## {title}\n{out[sid]}" for sid, title in SECTIONS)


class TemplateBackend:
    """Deterministic narrative, written without a language model."""

    name = "template"

    def generate(self, request: GenerationRequest) -> Generation:
        """Write the template narrative (the prompt is gated but not otherwise used)."""
        t0 = time.perf_counter()
        text = write_template_narrative(request.features, has_image=bool(request.images))
        return Generation(
            text=text,
            backend=self.name,
            model=None,
            written_by_language_model=False,
            revision=f"template-v{TEMPLATE_VERSION}",
            decoding={"deterministic": True},
            timings={"generate_s": round(time.perf_counter() - t0, 4)},
        )
