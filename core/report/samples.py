"""Small synthetic analysis output folders: for tests, the leakage evaluation and demos.

They follow the contract of the analysis stage (``features.json``, ``analysis.json``,
``spots.csv``, ``figures/``, ``he_image.png``, ``leakage_context.json``) and are made
from a seed, so the report stage can run without the analysis.
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.results import AnalysisRecord

LINEAGES = ("epithelial", "stromal", "endothelial", "lymphoid", "myeloid", "neural/glial", "other")
_CELL_TYPES = {
    "epithelial": "Epithelial cells", "stromal": "Fibroblasts", "endothelial": "Endothelial cells",
    "lymphoid": "T cells", "myeloid": "Macrophages",
}


def example_features(n_units: int = 4900, n_domains: int = 4,
                     annotated: bool = True) -> dict[str, Any]:
    """A clean, tissue-blind ``features.json`` document of the agreed shape.

    ``annotated=False`` gives the shape the analysis writes when cell-type annotation was
    unavailable: empty lineage compositions, no lineage statistics.
    """
    comps = [
        {"epithelial": 0.6, "stromal": 0.2, "lymphoid": 0.1, "myeloid": 0.06, "endothelial": 0.04},
        {"stromal": 0.55, "endothelial": 0.15, "myeloid": 0.15, "lymphoid": 0.1, "other": 0.05},
        {"lymphoid": 0.5, "myeloid": 0.2, "stromal": 0.2, "epithelial": 0.1},
        {"epithelial": 0.3, "stromal": 0.3, "endothelial": 0.2, "myeloid": 0.2},
    ]
    fractions = [0.35, 0.3, 0.2, 0.15]
    domains = []
    for i in range(n_domains):
        comp = comps[i % len(comps)] if annotated else {}
        domains.append({
            "id": f"D{i + 1}", "fraction_of_units": fractions[i % len(fractions)],
            "dominant_lineage": max(comp, key=lambda k: comp[k]) if comp else "unknown",
            "lineage_composition": comp,
            "mean_confidence": round(0.6 + 0.05 * i, 2) if annotated else 0.0,
            "mean_neighbourhood_entropy": round(0.7 + 0.1 * i, 2),
            "adjacent_domains": [f"D{j + 1}" for j in range(n_domains) if abs(j - i) == 1],
        })
    return {
        "schema": "mgs.features/1",
        "platform": {"layout": "visium", "unit": "spot",
                     "unit_description": "55 um spots, each holding several cells",
                     "bin_size_um": None},
        "qc": {"units_analysed": n_units, "fraction_removed_by_qc": 0.02,
               "median_genes_per_unit": 2300, "median_mito_fraction": 0.04},
        "lineage_composition": {"epithelial": 0.31, "stromal": 0.24, "endothelial": 0.08,
                                "lymphoid": 0.2, "myeloid": 0.12, "neural/glial": 0.0,
                                "other": 0.05} if annotated else {},
        "annotation": ({"available": True, "n_cell_populations": 8, "median_confidence": 0.72,
                        "fraction_low_confidence": 0.12, "mean_normalised_entropy": 0.35}
                       if annotated else
                       {"available": False, "n_cell_populations": 1, "median_confidence": 0.0,
                        "fraction_low_confidence": 1.0, "mean_normalised_entropy": 1.0}),
        "clusters": {"n_clusters": 11},
        "domains": domains,
        "spatial": {
            "heterogeneity": {"mean_neighbourhood_entropy": 1.1 if annotated else 0.0,
                              "simpson_index": 0.6 if annotated else 0.0},
            "lineage_colocalisation": [{"a": "epithelial", "b": "lymphoid", "z": 3.2}]
            if annotated else [],
            "lineage_segregation": [{"a": "epithelial", "b": "stromal", "z": -8.1}]
            if annotated else [],
            "spatially_variable_genes": {"n_tested": 2000, "n_significant_fdr05": 310,
                                         "fraction_significant": 0.155,
                                         "top_morans_i": [0.62, 0.55, 0.41]},
        },
        "image": {"available": True},
    }


def example_analysis(features: dict[str, Any] | None = None, seed: int = 0, n_spots: int = 120,
                     scalef: float = 0.1, image_file: str | None = None) -> AnalysisRecord:
    """A minimal :class:`~core.results.AnalysisRecord` agreeing with ``features``.

    Its per-unit sections are empty (no markers, no Moran's I genes, no claims), so a report
    built from it states what ``features`` holds; the cell types called are those
    :func:`write_output_dir` writes to ``spots.csv``.
    """
    feats = features if features is not None else example_features()
    fq = feats.get("qc") or {}
    n_kept = int(fq.get("units_analysed") or n_spots)
    removed = float(fq.get("fraction_removed_by_qc") or 0.0)
    annotated = bool((feats.get("annotation") or {}).get("available", True))
    platform = feats.get("platform") or {}
    domains = [{"id": str(d["id"]), "n": 0, "cell_types": {}, "markers": []}
               for d in feats.get("domains") or []]
    counts = {name: 1 for name in _CELL_TYPES.values()} if annotated else {}
    return AnalysisRecord.model_validate({
        "layout": platform.get("layout") or "visium",
        "n_spots": n_kept, "n_genes": 2000,
        "qc": {"n_spots_in": round(n_kept / (1 - removed)), "n_genes_in": 2000,
               "n_spots_kept": n_kept, "n_genes_kept": 2000, "removed_spots": {},
               "removed_genes": {}, "thresholds": {}, "notes": []},
        "qc_summary": {}, "hvg": {"n": 2000}, "pca": {"n_comps": 0, "variance_ratio": []},
        "clusters": {"n": 0, "sizes": [], "markers": {}, "majority_cell_type": {}},
        "annotation": {"marker_table": "default", "cell_types_scored": list(counts),
                       "types_skipped_few_markers": {}, "types_merged_into": {},
                       "markers_used": {}, "cell_type_counts": counts, "lineage_counts": {},
                       "median_confidence": 0.0, "confidence_meaning": "",
                       "calibration": {"method": "none", "feature": "", "a": 0.0, "b": 0.0,
                                       "fitted_on": "synthetic report fixture"},
                       "n_unassigned": 0, "mean_entropy": 0.0,
                       "composition_estimated": annotated, "available": annotated,
                       "unavailable_reason": None if annotated else "synthetic report fixture"},
        "domains": {"k": len(domains), "silhouette_by_k": {}, "smoothing_sigma_um": None,
                    "choice": {"method": "fixed", "stability": None, "close_alternative": None,
                               "candidates": []},
                    "domains": domains},
        "spatial": {"graph": {"n_edges": 0, "mean_degree": 0.0},
                    "morans_i": {"n_tested": 0, "n_significant_fdr05": 0, "top": []},
                    "nhood_enrichment_celltype": {"names": [], "z": []},
                    "nhood_enrichment_lineage": {"names": [], "z": []},
                    "neighbourhood_entropy": {"mean": 0.0, "median": 0.0}},
        "image": {"file": image_file, "scalef": scalef, "spot_diameter_px": 200.0,
                  "source": None},
        "figures": [],
        "provenance": {"input_sha256": "0" * 64, "input_format": "synthetic", "preflight": None,
                       "notes": [], "bin_size": None, "parameters": {}, "options": {},
                       "seed": seed, "versions": {}, "timings_s": {},
                       "command": "synthetic report fixture"},
        "claims": [],
    })


def write_output_dir(out_dir: Path, seed: int = 0, features: dict[str, Any] | None = None,
                     image: str | None = "uint8", context: dict[str, Any] | None = None,
                     n_spots: int = 120) -> Path:
    """Write a synthetic analysis output folder; return it.

    Parameters
    ----------
    image
        ``"uint8"`` (RGB), ``"rgba"``, ``"grey"`` or ``None`` (no image).
    context
        ``leakage_context.json`` content; none is written when ``None``.
    """
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    feats = copy.deepcopy(features) if features is not None else example_features()
    domain_ids = [d["id"] for d in feats.get("domains") or []] or ["D1"]
    side = int(np.ceil(np.sqrt(n_spots)))
    r, c = np.divmod(np.arange(n_spots), side)
    # Full-resolution pixels; the tissue sits off-centre so cropping matters.
    x = 2000 + c * 365.0 + (r % 2) * 182.0
    y = 1500 + r * 316.0
    dom = np.minimum((c * len(domain_ids)) // side, len(domain_ids) - 1)
    lineages = list(_CELL_TYPES)
    with (out_dir / "spots.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["barcode", "x", "y", "cluster", "domain", "cell_type", "lineage", "confidence",
                    "entropy", "total_counts", "n_genes", "pct_mito", "pct_ribo"])
        for i in range(n_spots):
            lin = lineages[(int(dom[i]) + int(rng.integers(0, 2))) % len(lineages)]
            w.writerow([f"BC{i:05d}", f"{x[i]:.1f}", f"{y[i]:.1f}", int(dom[i]) % 3,
                        domain_ids[int(dom[i])], _CELL_TYPES[lin], lin,
                        f"{rng.uniform(0.4, 0.95):.3f}", f"{rng.uniform(0.1, 0.6):.3f}",
                        int(rng.integers(3000, 9000)), int(rng.integers(1500, 3500)),
                        f"{rng.uniform(1, 8):.2f}", f"{rng.uniform(5, 20):.2f}"])
    scalef = 0.1
    image_file = "he_image.png" if image is not None else None
    if image is not None:
        h, w_ = int((y.max() + 2500) * scalef), int((x.max() + 3000) * scalef)
        arr = np.full((h, w_, 3), 245, dtype=np.uint8)
        for xi, yi, d in zip(x * scalef, y * scalef, dom, strict=True):
            tint = np.array([200 - 30 * d, 80 + 20 * d, 170], dtype=np.uint8)
            arr[int(yi) - 8:int(yi) + 8, int(xi) - 8:int(xi) + 8] = tint
        if image == "rgba":
            pil = Image.fromarray(np.dstack([arr, np.full(arr.shape[:2], 255, np.uint8)]), "RGBA")
        elif image == "grey":
            pil = Image.fromarray(arr.mean(2).astype(np.uint8), "L")
        else:
            pil = Image.fromarray(arr, "RGB")
        pil.save(out_dir / "he_image.png")
    feats.setdefault("image", {})["available"] = image is not None
    fig = Image.fromarray(rng.integers(0, 255, size=(40, 60, 3), dtype=np.uint8))
    fig.save(out_dir / "figures" / "domains.png")
    (out_dir / "features.json").write_text(json.dumps(feats, indent=2))
    example_analysis(feats, seed=seed, n_spots=n_spots, scalef=scalef,
                     image_file=image_file).write(out_dir / "analysis.json")
    if context is not None:
        (out_dir / "leakage_context.json").write_text(json.dumps(context, indent=2))
    return out_dir
