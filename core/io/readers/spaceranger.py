"""A Space Ranger ``outs/`` folder: Visium v1/v2, Visium HD bins (``binned_outputs/square_XXXum``,
summed from finer bins when the size asked for is not there) and, where Space Ranger segmented
them or asked to, Visium HD cells (:mod:`core.io.readers.cells`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.config import Settings
from core.errors import BadCoordinates, InputError, MissingCoordinates, UnsupportedFormat
from core.io.preflight import PreflightReport, preflight_10x_h5
from core.io.readers import cells
from core.io.readers.sample import Sample, detect_layout, sha256_path
from core.io.readers.tenx import attach_image, read_10x_h5, read_positions
from core.jsonable import as_number

if TYPE_CHECKING:
    from core.io.hd import BinChoice


def read_spaceranger(
    path: Path, settings: Settings, bin_size_um: int | None, unit: str | None = None
) -> Sample:
    """Read a Space Ranger ``outs/`` folder: Visium, Visium HD bins or Visium HD cells.

    Parameters
    ----------
    path
        ``outs/`` (or its ``binned_outputs/``).
    settings
        Memory budget and image limits.
    bin_size_um
        Visium HD bin size asked for; ``None``: chosen from the memory budget.
    unit
        ``"cell"``, ``"bin"`` or ``None`` (see :func:`core.io.readers.read_sample`).

    Returns
    -------
    Sample
    """
    root = path
    layout = "visium"
    bin_um: float | None = None
    hd_root = root / "binned_outputs" if (root / "binned_outputs").is_dir() else None
    if hd_root is None and root.name == "binned_outputs":
        hd_root = root
    choice = None
    cell_note = None
    if unit != "bin" and bin_size_um is None:
        from core.io.hd_cells import find_segmented

        seg = find_segmented(root)
        if seg is not None:
            est = cells.segmented_estimate_mb(seg)
            if est <= settings.memory_budget_mb:
                return cells.read_cells(path, seg, hd_root, settings)
            if unit == "cell":
                from core.errors import OverMemoryBudget

                raise OverMemoryBudget(
                    f"the Space Ranger cells need about {est:,.0f} MiB, over the memory budget "
                    f"of {settings.memory_budget_mb:,.0f} MiB (MGS_MEMORY_BUDGET_MB)"
                )
            cell_note = (
                f"Space Ranger cells need about {est:,.0f} MiB, over the memory budget of "
                f"{settings.memory_budget_mb:,.0f} MiB: analysed at bin level"
            )
        elif unit == "cell":
            if (
                hd_root is None
                or not (hd_root / "square_002um" / "filtered_feature_bc_matrix.h5").is_file()
            ):
                raise InputError(
                    "--unit cell needs Space Ranger segmented_outputs/ or 2 um bins "
                    "(binned_outputs/square_002um) with an H&E image",
                    code="invalid_option",
                )
            return cells.read_cells(path, None, hd_root, settings)
    elif unit == "cell":
        raise InputError("--bin-size applies to --unit bin only", code="invalid_option")
    if hd_root is None and unit is not None:
        raise InputError(
            f"--unit applies to Visium HD samples only; {path.name} has no binned_outputs/",
            code="invalid_option",
        )
    if hd_root is not None:
        from core.io.hd import choose_bin_size

        choice = choose_bin_size(hd_root, settings.memory_budget_mb, bin_size_um)
        if choice.source_um != choice.bin_size_um:
            agg = read_hd_aggregated(path, hd_root, choice, settings)
            agg.unit = "bin"
            if cell_note:
                agg.notes.append(cell_note)
            return agg
        root = hd_root / f"square_{choice.bin_size_um:03d}um"
        layout, bin_um = "visium_hd", float(choice.bin_size_um)
    elif bin_size_um is not None:
        raise InputError(
            f"--bin-size applies to Visium HD samples only; {path.name} has no binned_outputs/",
            code="invalid_option",
        )
    h5 = root / "filtered_feature_bc_matrix.h5"
    if not h5.is_file():
        raise UnsupportedFormat(
            f"{path} is a folder without filtered_feature_bc_matrix.h5 (not Space Ranger outs/)"
        )
    spatial = root / "spatial"
    if not spatial.is_dir():
        raise MissingCoordinates(f"{root} has no spatial/ folder (tissue positions and images)")
    a, report = read_10x_h5(h5, settings)
    pos = read_positions(spatial)
    common = a.obs_names.intersection(pos.index)
    if len(common) == 0:
        raise BadCoordinates("no barcode of the matrix appears in the tissue positions")
    dropped = a.n_obs - len(common)
    a = a[common].copy()
    pos = pos.loc[common]
    xy = np.stack(
        [
            pos["pxl_col_in_fullres"].to_numpy(np.float64),
            pos["pxl_row_in_fullres"].to_numpy(np.float64),
        ],
        1,
    )
    if not np.all(np.isfinite(xy)):
        raise BadCoordinates("tissue positions hold NaN or infinite coordinates")
    a.obsm["spatial"] = xy
    for c in ("in_tissue", "array_row", "array_col"):
        a.obs[c] = pos[c].to_numpy()
    sample = Sample(
        adata=a,
        layout=layout,
        source_format="spaceranger",
        sha256=sha256_path(path if path.is_dir() else root),
        preflight=report,
        bin_size_um=bin_um,
    )
    if choice is not None:
        sample.bin_choice = choice.as_dict()
        sample.notes.append(choice.reason)
        sample.unit = "bin"
        if cell_note:
            sample.notes.append(cell_note)
    if dropped:
        sample.notes.append(f"{dropped} barcodes without a tissue position were dropped")
    attach_image(sample, spatial, settings)
    if layout == "visium":
        sample.layout = detect_layout(a.obs_names, a.obs, xy)
        if sample.layout == "generic":
            sample.layout = "visium"  # Space Ranger without HD bins is Visium by construction
    return sample


def read_hd_aggregated(path: Path, hd_root: Path, choice: BinChoice, settings: Settings) -> Sample:
    """Visium HD bins summed from a finer bin folder, streamed (see :func:`core.io.hd.aggregate_bins`).

    Parameters
    ----------
    path
        The ``outs/`` folder (for the digest).
    hd_root
        Its ``binned_outputs/``.
    choice
        The bin size chosen (:func:`core.io.hd.choose_bin_size`): ``source_um`` is summed into
        ``bin_size_um``.
    settings
        Image limits.

    Returns
    -------
    Sample
    """
    import anndata as ad
    import pandas as pd

    from core.io.hd import aggregate_bins

    fine_dir = hd_root / f"square_{choice.source_um:03d}um"
    # validate the fine matrix (links, shape, indptr, indices, integer counts) without a budget:
    # it is never loaded whole; the budget applies to the aggregated bins (checked in choose_bin_size)
    fine = preflight_10x_h5(fine_dir / "filtered_feature_bc_matrix.h5", float("inf"))
    agg = aggregate_bins(fine_dir, choice.bin_size_um)
    var = pd.DataFrame({"gene_ids": agg.gene_ids}, index=pd.Index(agg.gene_names))
    obs = pd.DataFrame(
        {
            "in_tissue": np.ones(len(agg.barcodes), dtype=np.int64),
            "array_row": agg.array_row,
            "array_col": agg.array_col,
            "n_fine_bins": agg.n_children,
        },
        index=pd.Index(agg.barcodes),
    )
    a = ad.AnnData(X=agg.X, obs=obs, var=var)
    if agg.feature_types is not None:
        keep = np.array([t == "Gene Expression" for t in agg.feature_types])
        if keep.any() and not keep.all():
            a = a[:, keep].copy()
    a.var_names_make_unique()
    a.obsm["spatial"] = np.stack([agg.pxl_col, agg.pxl_row], 1)
    opt = next(o for o in choice.options if o.bin_size_um == choice.bin_size_um)
    report = PreflightReport(
        path=str(fine_dir / "filtered_feature_bc_matrix.h5"),
        kind="10x_h5",
        n_obs=a.n_obs,
        n_vars=a.n_vars,
        nnz=int(a.X.nnz),
        counts_location="matrix",
        estimated_memory_mb=round(opt.estimated_memory_mb, 1),
        warnings=[
            f"aggregated from {fine.n_obs:,} {choice.source_um} um bins ({fine.nnz:,} non-zeros), "
            f"streamed from the h5"
        ],
    )
    sample = Sample(
        adata=a,
        layout="visium_hd",
        source_format="spaceranger",
        sha256=sha256_path(path),
        preflight=report,
        bin_size_um=float(choice.bin_size_um),
    )
    sample.bin_choice = choice.as_dict()
    sample.notes.append(choice.reason)
    if agg.n_fine_unplaced:
        sample.notes.append(
            f"{agg.n_fine_unplaced} {choice.source_um} um barcodes without a tissue position "
            f"were dropped"
        )
    sf = attach_image(sample, fine_dir / "spatial", settings)
    factor = choice.bin_size_um // choice.source_um
    if sf.get("microns_per_pixel"):
        sample.spot_diameter_px = float(choice.bin_size_um) / as_number(sf["microns_per_pixel"])
    elif sample.spot_diameter_px:
        sample.spot_diameter_px *= factor
    return sample
