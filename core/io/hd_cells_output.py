"""Cell-level outputs of a Visium HD analysis: ``cells.geojson`` (QuPath) and the report's platform line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.enums import Layout, Unit
from core.jsonable import JSONObject, as_number

if TYPE_CHECKING:
    from core.analysis.pipeline import AnalysisResult
    from core.io.readers.sample import CellsInfo, Sample

HOW = {
    "spaceranger_segmentation": "Space Ranger's own segmentation (nuclei on the H&E grown into cells)",
    "nuclei_watershed": "nuclei found here on the H&E (haematoxylin colour deconvolution and a seeded "
    "watershed), each grown by up to {expand:g} bins of 2 um",
}


def cells_how(cells: CellsInfo) -> str:
    """How the cells were made, in words."""
    expand = as_number(cells["params"].get("expand_bins", 2.0))
    return HOW.get(str(cells.get("method")), str(cells.get("method"))).format(expand=expand)


def cell_platform(cells: CellsInfo) -> JSONObject:
    """``features.json``'s platform entry at cell level: unit, how many cells, how they were made."""
    n = int(cells["n"])
    how = cells_how(cells)
    return {
        "layout": Layout.VISIUM_HD.value,
        "unit": Unit.CELL.value,
        "bin_size_um": None,
        "n_cells": n,
        "cells_made_by": how,
        "unit_description": f"cells assembled from Visium HD 2 um bins ({n:,} cells; {how})",
    }


def write_cell_outputs(out: Path, sample: Sample, res: AnalysisResult) -> list[str]:
    """``cells.geojson``: every analysed cell's outline with its cell type and measurements."""
    from core.io.hd_cells import cells_geojson

    polys = getattr(sample, "cell_polygons", None)
    if not polys:
        return []
    index = {str(n): i for i, n in enumerate(sample.adata.obs_names)}
    names = [str(n) for n in res.obs_names]
    rows = [index.get(n, -1) for n in names]
    ok = [i for i, r in enumerate(rows) if r >= 0]
    obs = sample.adata.obs
    extra = {
        c: np.asarray(obs[c], dtype=np.float64)[[rows[i] for i in ok]]
        for c in ("area_um2", "n_bins", "in_nucleus_frac")
        if c in obs
    }
    ct = np.asarray(res.annotation.cell_type).astype(str)
    doc = cells_geojson(
        [names[i] for i in ok], [polys[rows[i]] for i in ok], [ct[i] for i in ok], extra
    )
    (out / "cells.geojson").write_text(json.dumps(doc))
    return ["cells.geojson"]
