"""An example ``features.json`` document of the agreed, tissue-blind shape.

``medgemma-spatial eval leakage`` (core/report/evaluation.py) plants tissue words in it to test
the leakage gate, and bench/gpu_report.py prompts a model with it, so it ships with the
package. The test helper that writes a whole synthetic analysis output folder around it is
tests/fixtures/report_outputs.py.
"""

from __future__ import annotations

from typing import cast

from core.jsonable import JSONObject, JSONValue


def example_features(n_units: int = 4900, n_domains: int = 4, annotated: bool = True) -> JSONObject:
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
    domains: list[JSONValue] = []
    for i in range(n_domains):
        comp = comps[i % len(comps)] if annotated else {}
        domains.append(
            {
                "id": f"D{i + 1}",
                "fraction_of_units": fractions[i % len(fractions)],
                "dominant_lineage": max(comp, key=lambda k: comp[k]) if comp else "unknown",
                "lineage_composition": cast(JSONValue, comp),  # dict invariance: it is JSON
                "mean_confidence": round(0.6 + 0.05 * i, 2) if annotated else 0.0,
                "mean_neighbourhood_entropy": round(0.7 + 0.1 * i, 2),
                "adjacent_domains": [f"D{j + 1}" for j in range(n_domains) if abs(j - i) == 1],
            }
        )
    return {
        "schema": "mgs.features/1",
        "platform": {
            "layout": "visium",
            "unit": "spot",
            "unit_description": "55 um spots, each holding several cells",
            "bin_size_um": None,
        },
        "qc": {
            "units_analysed": n_units,
            "fraction_removed_by_qc": 0.02,
            "median_genes_per_unit": 2300,
            "median_mito_fraction": 0.04,
        },
        "lineage_composition": {
            "epithelial": 0.31,
            "stromal": 0.24,
            "endothelial": 0.08,
            "lymphoid": 0.2,
            "myeloid": 0.12,
            "neural/glial": 0.0,
            "other": 0.05,
        }
        if annotated
        else {},
        "annotation": (
            {
                "available": True,
                "n_cell_populations": 8,
                "median_confidence": 0.72,
                "fraction_low_confidence": 0.12,
                "mean_normalised_entropy": 0.35,
            }
            if annotated
            else {
                "available": False,
                "n_cell_populations": 1,
                "median_confidence": 0.0,
                "fraction_low_confidence": 1.0,
                "mean_normalised_entropy": 1.0,
            }
        ),
        "clusters": {"n_clusters": 11},
        "domains": domains,
        "spatial": {
            "heterogeneity": {
                "mean_neighbourhood_entropy": 1.1 if annotated else 0.0,
                "simpson_index": 0.6 if annotated else 0.0,
            },
            "lineage_colocalisation": [{"a": "epithelial", "b": "lymphoid", "z": 3.2}]
            if annotated
            else [],
            "lineage_segregation": [{"a": "epithelial", "b": "stromal", "z": -8.1}]
            if annotated
            else [],
            "spatially_variable_genes": {
                "n_tested": 2000,
                "n_significant_fdr05": 310,
                "fraction_significant": 0.155,
                "top_morans_i": [0.62, 0.55, 0.41],
            },
        },
        "image": {"available": True},
    }
