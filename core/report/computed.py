"""The computed parts of the report: its sections, and tables from ``spots.csv``."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from statistics import median
from typing import Any

from core.jsonable import JSONObject, JSONValue
from core.report.prompts import QUESTIONS, SECTIONS, annotation_available, not_assessed_reasons


# --------------------------------------------------------------------------- sections
def split_sections(text: str) -> dict[str, str]:
    """The narrative under the report's section ids; text under no heading goes to ``unassigned``.

    Headings are the section titles (markdown or bold or "Title:") or question numbers Q1-Q6.
    """
    titles = {title.lower(): sid for sid, title in SECTIONS}
    qmap = {qid.lower(): sid for qid, sid, _ in QUESTIONS}
    title_alt = "|".join(re.escape(t) for t in sorted(titles, key=len, reverse=True))
    head = re.compile(
        rf"^[ \t]*(?:#+[ \t]*)?(?:\*\*)?[ \t]*(?:\d+[.)][ \t]*)?(?:(?P<title>{title_alt})|(?P<q>Q[1-6]))"
        r"\b[ \t]*(?:\*\*)?[ \t]*[:.\-]?[ \t]*(?:\*\*)?[ \t]*(?P<rest>.*)$",
        re.IGNORECASE | re.MULTILINE,
    )
    parts: dict[str, list[str]] = {}
    current = "unassigned"
    pos = 0
    for m in head.finditer(text):
        parts.setdefault(current, []).append(text[pos : m.start()])
        key = (m.group("title") or m.group("q") or "").lower()
        current = titles.get(key) or qmap.get(key, "unassigned")
        pos = m.start("rest")
    parts.setdefault(current, []).append(text[pos:])
    out = {k: "\n".join(s.strip() for s in v if s.strip()) for k, v in parts.items()}
    return {k: v for k, v in out.items() if v}


# --------------------------------------------------------------------------- tables
def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def cell_population_table(spots: list[dict[str, str]]) -> list[JSONObject]:
    """Per cell type: lineage, units, share and mean confidence (from ``spots.csv``)."""
    groups: dict[str, list[dict[str, str]]] = {}
    for r in spots:
        groups.setdefault(r.get("cell_type") or "unassigned", []).append(r)
    n = len(spots) or 1
    rows: list[tuple[int, str, JSONObject]] = []
    for t, rs in groups.items():
        conf = [c for c in (_f(r.get("confidence")) for r in rs) if c is not None]
        row: JSONObject = {
            "cell_type": t,
            "lineage": rs[0].get("lineage", ""),
            "units": len(rs),
            "fraction": round(len(rs) / n, 4),
            "mean_confidence": round(sum(conf) / len(conf), 4) if conf else None,
        }
        rows.append((len(rs), t, row))
    return [row for _, _, row in sorted(rows, key=lambda r: (-r[0], r[1]))]


def qc_summary(spots: list[dict[str, str]]) -> JSONObject:
    """Medians of the QC columns of ``spots.csv``."""
    out: JSONObject = {"units": len(spots)}
    for col in ("total_counts", "n_genes", "pct_mito", "pct_ribo"):
        vals = [v for v in (_f(r.get(col)) for r in spots) if v is not None]
        if vals:
            out[f"median_{col}"] = round(median(vals), 4)
    return out


_LINEAGE_STATS = ("heterogeneity", "lineage_colocalisation", "lineage_segregation")


def computed_sections(
    features: Mapping[str, JSONValue], spots: list[dict[str, str]], image_info: JSONObject
) -> dict[str, JSONObject]:
    """The computed tables of each section (never written by a model).

    ``features`` (a parsed ``features.json``) is read defensively: a block of another shape
    in an older file is taken as it comes.
    """
    doc: Mapping[str, Any] = features
    spatial = doc.get("spatial") or {}
    annotated = annotation_available(features)
    held = not_assessed_reasons(features)
    return {
        "specimen_and_qc": {
            "platform": doc.get("platform") or {},
            "qc": doc.get("qc") or {},
            "qc_medians": qc_summary(spots),
        },
        "tissue_architecture": {
            "n_clusters": (doc.get("clusters") or {}).get("n_clusters"),
            "domains": doc.get("domains") or [],
            **({"domain_count": doc["domain_count"]} if doc.get("domain_count") else {}),
            **({"domains_not_assessed": held["domains"]} if "domains" in held else {}),
        },
        "cell_populations": (
            {
                "annotation": doc.get("annotation") or {},
                "lineage_composition": doc.get("lineage_composition") or {},
                "populations": [*cell_population_table(spots)],
            }
            if annotated
            else {
                "annotation": {"available": False},
                "note": held.get("annotation")
                or "cell-type annotation was unavailable (too few marker "
                "genes of the marker table in this sample); no cell "
                "populations or lineage composition were computed",
            }
        ),
        "spatial_organisation": dict(spatial)
        if annotated
        else {k: v for k, v in spatial.items() if k not in _LINEAGE_STATS},
        "morphology": {"image": dict(image_info)},
        "uncertainty": {
            "fraction_low_confidence": (doc.get("annotation") or {}).get("fraction_low_confidence")
            if annotated
            else None,
            "limitations": [
                "Each measurement unit can hold several cells; cell populations are estimates.",
                "Annotation depends on the marker table; unlisted cell types are not found.",
                "The model saw only tissue-blind aggregates and the H&E image; it was not told "
                "the organ of origin.",
            ],
        },
        "follow_up": {},
    }
