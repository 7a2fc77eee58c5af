"""The files of a 10x ``spatial/`` output: the feature-barcode matrix (``.h5``), the tissue
positions (parquet or csv) and the H&E images with their scale factors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from core.config import Settings
from core.errors import BadCoordinates, CorruptFile, MissingCoordinates
from core.io.preflight import PreflightReport, preflight_10x_h5
from core.io.readers.sample import Sample, is_blank
from core.jsonable import JSONObject, as_number

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData


def read_10x_h5(path: Path, settings: Settings) -> tuple[AnnData, PreflightReport]:
    """A 10x ``filtered_feature_bc_matrix.h5`` as AnnData (barcodes x genes, Gene Expression only).

    Parameters
    ----------
    path
        The ``.h5`` file; checked by :func:`~core.io.preflight.preflight_10x_h5` and opened
        through :func:`~core.io.hdf5_safety.open_checked`.
    settings
        Memory budget.

    Returns
    -------
    tuple of (anndata.AnnData, PreflightReport)
    """
    import anndata as ad
    import pandas as pd

    from core.io.hdf5_safety import open_checked

    report = preflight_10x_h5(path, settings.memory_budget_mb)
    with open_checked(path) as f:
        g = f["matrix"]
        n_feat, n_bc = (int(v) for v in g["shape"][:])
        X = sp.csr_matrix(
            (
                np.asarray(g["data"][:], dtype=np.float32),
                np.asarray(g["indices"][:], dtype=np.int32),
                np.asarray(g["indptr"][:], dtype=np.int64),
            ),
            shape=(n_bc, n_feat),
        )
        barcodes = [b.decode() for b in g["barcodes"][:]]
        feats = g["features"]
        names = [b.decode() for b in feats["name"][:]]
        ids = [b.decode() for b in feats["id"][:]] if "id" in feats else names
        ftype = [b.decode() for b in feats["feature_type"][:]] if "feature_type" in feats else None
    if len(barcodes) != n_bc or len(names) != n_feat:
        raise CorruptFile(f"{path.name}: barcodes/features do not match the matrix shape")
    var = pd.DataFrame({"gene_ids": ids}, index=pd.Index(names))
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=pd.Index(barcodes)), var=var)
    if ftype is not None:
        keep = np.array([t == "Gene Expression" for t in ftype])
        if keep.any() and not keep.all():
            a = a[:, keep].copy()
    a.var_names_make_unique()
    return a, report


def read_positions(spatial: Path) -> pd.DataFrame:
    """Tissue positions of a ``spatial/`` folder (parquet, csv with header, or headerless v1 csv).

    Parameters
    ----------
    spatial
        The ``spatial/`` folder.

    Returns
    -------
    pandas.DataFrame
        Indexed by barcode: ``in_tissue``, ``array_row``, ``array_col``, ``pxl_row_in_fullres``,
        ``pxl_col_in_fullres``.
    """
    import pandas as pd

    cols = [
        "barcode",
        "in_tissue",
        "array_row",
        "array_col",
        "pxl_row_in_fullres",
        "pxl_col_in_fullres",
    ]
    if (spatial / "tissue_positions.parquet").is_file():
        pos = pd.read_parquet(spatial / "tissue_positions.parquet")
    elif (spatial / "tissue_positions.csv").is_file():
        pos = pd.read_csv(spatial / "tissue_positions.csv")
    elif (spatial / "tissue_positions_list.csv").is_file():
        pos = pd.read_csv(spatial / "tissue_positions_list.csv", header=None)
        if pos.shape[1] != 6:
            raise BadCoordinates("tissue_positions_list.csv must have 6 columns")
        pos.columns = cols
    else:
        raise MissingCoordinates(
            f"{spatial} has no tissue_positions.parquet, tissue_positions.csv or tissue_positions_list.csv"
        )
    missing = [c for c in cols if c not in pos.columns]
    if missing:
        raise BadCoordinates(f"tissue positions lack columns {missing}")
    return pos.set_index("barcode")


def load_png(p: Path, max_pixels: int) -> np.ndarray:
    """An RGB image, refused above ``max_pixels`` before it is decoded.

    Parameters
    ----------
    p
        The PNG file.
    max_pixels
        Largest width x height accepted (``MGS_MAX_IMAGE_PIXELS``).

    Returns
    -------
    numpy.ndarray
        ``(h, w, 3)`` uint8.
    """
    from PIL import Image

    from core.errors import ImageTooLarge

    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(p) as im:
            if im.width * im.height > max_pixels:
                raise ImageTooLarge(
                    f"{p.name} is {im.width} x {im.height} pixels, over the cap of {max_pixels:,}"
                )
            return np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"{p.name}: {e}") from e
    except OSError as e:
        raise CorruptFile(f"{p.name} is not a readable image: {e}") from e


def attach_image(sample: Sample, spatial: Path, settings: Settings) -> JSONObject:
    """H&E (hires, else lowres) and spot diameter from a ``spatial/`` folder, set on ``sample``.

    Parameters
    ----------
    sample
        The sample to complete (``image``, ``image_name``, ``image_scalef``,
        ``spot_diameter_px``; a note for a blank image).
    spatial
        The ``spatial/`` folder.
    settings
        Image pixel cap.

    Returns
    -------
    dict
        The scale factors (``scalefactors_json.json``).
    """
    from core.io.hd import read_scalefactors

    sf = read_scalefactors(spatial)
    for name in ("hires", "lowres"):
        p = spatial / f"tissue_{name}_image.png"
        if p.is_file():
            img = load_png(p, settings.max_image_pixels)
            if is_blank(img):
                sample.notes.append(f"tissue_{name}_image.png is blank (a single colour); not used")
                continue
            sample.image = img
            sample.image_name = name
            sample.image_scalef = as_number(sf.get(f"tissue_{name}_scalef", 1.0))
            break
    if "spot_diameter_fullres" in sf:
        sample.spot_diameter_px = as_number(sf["spot_diameter_fullres"])
    return sf
