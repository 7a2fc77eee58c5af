"""Visium HD at cell level: Space Ranger 4's ``segmented_outputs/``, or cells made here from the
2 um bins and the H&E (:mod:`core.io.hd_cells`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.config import Settings
from core.errors import InputError
from core.io.preflight import PreflightReport, preflight_10x_h5
from core.io.readers.sample import Sample, sha256_path
from core.io.readers.tenx import attach_image


def segmented_estimate_mb(seg: Path) -> float:
    """Memory the analysis of Space Ranger's cells would need, in MiB.

    Parameters
    ----------
    seg
        The ``segmented_outputs/`` folder.

    Returns
    -------
    float
    """
    from core.io.hd_cells import segmented_dims
    from core.io.preflight import estimate_memory_mb

    n, g, nnz = segmented_dims(seg)
    return float(estimate_memory_mb(n, g, nnz))


def read_cells(path: Path, seg: Path | None, hd_root: Path | None, settings: Settings) -> Sample:
    """Cells: Space Ranger 4's (``seg``), else made here from the 2 um bins and the H&E.

    Parameters
    ----------
    path
        The ``outs/`` folder (for the digest).
    seg
        ``segmented_outputs/``; ``None``: cells are made from the bins (:mod:`core.io.hd_cells`).
    hd_root
        ``binned_outputs/`` (2 um bins and their ``spatial/``), if present.
    settings
        Memory budget and image limits.

    Returns
    -------
    Sample
        ``unit == "cell"``, with ``cells`` (how they were made) and ``cell_polygons``.
    """
    import anndata as ad
    import pandas as pd

    from core.io.hd import read_scalefactors
    from core.io.hd_cells import cells_from_bins, read_segmented

    spatial_dirs = [
        d
        for d in (
            (seg / "spatial") if seg else None,
            (hd_root / "square_002um" / "spatial") if hd_root else None,
        )
        if d and d.is_dir()
    ]
    sf: dict[str, Any] = {}
    for d in spatial_dirs:
        sf = read_scalefactors(d)
        if sf:
            break
    mpp = float(sf["microns_per_pixel"]) if sf.get("microns_per_pixel") else None
    if seg is not None:
        cs = read_segmented(seg, settings, mpp)
        report = PreflightReport(
            path=str(seg),
            kind="10x_h5",
            n_obs=cs.n,
            n_vars=len(cs.gene_names),
            nnz=int(cs.X.nnz),
            counts_location="matrix",
            estimated_memory_mb=round(segmented_estimate_mb(seg), 1),
        )
    else:
        assert hd_root is not None
        fine = hd_root / "square_002um"
        fine_report = preflight_10x_h5(fine / "filtered_feature_bc_matrix.h5", float("inf"))
        cs = cells_from_bins(fine)
        report = PreflightReport(
            path=str(fine / "filtered_feature_bc_matrix.h5"),
            kind="10x_h5",
            n_obs=cs.n,
            n_vars=len(cs.gene_names),
            nnz=int(cs.X.nnz),
            counts_location="matrix",
            estimated_memory_mb=0.0,
            warnings=[
                f"cells summed from {fine_report.n_obs:,} 2 um bins "
                f"({fine_report.nnz:,} non-zeros), streamed from the h5"
            ],
        )
    if cs.n == 0:
        raise InputError("no cells: no nucleus was found on the H&E")
    obs = pd.DataFrame(cs.obs_columns(), index=pd.Index(cs.cell_ids.astype(str)))
    var = pd.DataFrame({"gene_ids": cs.gene_ids}, index=pd.Index(cs.gene_names))
    a = ad.AnnData(X=cs.X, obs=obs, var=var)
    a.var_names_make_unique()
    a.obsm["spatial"] = np.asarray(cs.xy, dtype=np.float64)
    sample = Sample(
        adata=a,
        layout="visium_hd",
        source_format="spaceranger",
        sha256=sha256_path(path),
        preflight=report,
        unit="cell",
    )
    sample.cells = {
        "n": cs.n,
        "method": cs.method,
        "description": cs.description,
        "n_nuclei": cs.n_nuclei,
        "params": cs.params,
        "px_per_um": (1.0 / mpp) if mpp else None,
    }
    sample.cell_polygons = cs.polygons
    sample.notes.append(cs.description)
    sample.notes.extend(cs.notes)
    for d in spatial_dirs:
        attach_image(sample, d, settings)
        if sample.image is not None:
            break
    if mpp:
        sample.spot_diameter_px = float(np.sqrt(np.nanmedian(cs.area_um2))) / mpp if cs.n else None
    return sample
