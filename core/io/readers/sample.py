"""What every reader returns (:class:`Sample`), and what they share: the input's sha256 and the
layout (Visium spots, Visium HD bins or generic) told from names, array indices or geometry."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from core.io.preflight import PreflightReport
from core.jsonable import JSONObject

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData

LAYOUTS = ("visium", "visium_hd", "generic")
HD_BIN_RE = re.compile(r"^s_(\d{3})um_")


class CellsInfo(TypedDict):
    """Visium HD cells: how many, how they were made (see :mod:`core.io.hd_cells`)."""

    n: int
    method: str  # "spaceranger_segmentation" | "nuclei_watershed"
    description: str
    n_nuclei: int
    params: JSONObject
    px_per_um: float | None


@dataclass
class Sample:
    """A loaded sample: raw counts, coordinates, image and what we know of its layout.

    ``adata.X`` holds raw counts as CSR float32; ``adata.var_names`` are gene
    symbols (made unique); ``adata.obsm['spatial']`` is (x, y) in full-resolution
    image pixels.
    """

    adata: AnnData
    layout: str
    source_format: str
    sha256: str
    image: np.ndarray | None = None
    image_name: str | None = None
    image_scalef: float = 1.0  # image px = full-res px * image_scalef
    spot_diameter_px: float | None = None  # in full-res px
    bin_size_um: float | None = None
    preflight: PreflightReport | None = None
    metadata_strings: set[str] = field(default_factory=set)  # for the leakage gate
    notes: list[str] = field(default_factory=list)
    bin_choice: JSONObject | None = None  # Visium HD: bin size picked and per-size estimates
    unit: str | None = None  # Visium HD: "cell" or "bin"
    cells: CellsInfo | None = None  # cell level: how many, how made (see core.io.hd_cells)
    cell_polygons: Sequence[np.ndarray | None] | None = (
        None  # per obs, (k, 2) full-res px outlines (cells.geojson)
    )


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a folder's files (sorted relative names and contents).

    Parameters
    ----------
    path
        A file or a folder.

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode() + b"\0")
        with open(p, "rb") as fh:
            for buf in iter(lambda: fh.read(1 << 22), b""):
                h.update(buf)
    return h.hexdigest()


def is_blank(image: np.ndarray) -> bool:
    """True for an image whose colour channels hold a single value (a placeholder, not an H&E).

    Parameters
    ----------
    image
        ``(h, w)`` or ``(h, w, c)`` array.

    Returns
    -------
    bool
    """
    im = np.asarray(image)
    if im.size == 0:
        return True
    rgb = im[..., :3] if im.ndim == 3 else im
    step = max(1, rgb.shape[0] // 256)
    sub = rgb[::step, ::step]
    return bool(np.ptp(sub) == 0)


def detect_layout(obs_names: pd.Index, obs: pd.DataFrame, xy: np.ndarray) -> str:
    """``visium`` (hexagonal spots), ``visium_hd`` (square bins) or ``generic``.

    Parameters
    ----------
    obs_names
        Barcodes (Visium HD bins are named ``s_008um_...``).
    obs
        Observations table; ``array_row`` and ``array_col`` tell a hexagonal grid.
    xy
        ``(n, 2)`` coordinates; without names or indices, neighbour counts tell the grid.

    Returns
    -------
    str
        One of :data:`LAYOUTS`.
    """
    if len(obs_names) and HD_BIN_RE.match(str(obs_names[0])):
        return "visium_hd"
    if "array_row" in obs and "array_col" in obs:
        r = np.asarray(obs["array_row"], dtype=np.int64)
        c = np.asarray(obs["array_col"], dtype=np.int64)
        if len(r) > 3 and np.all((r + c) % 2 == 0):
            return "visium"
    # from geometry: neighbours within 1.2 x the nearest distance (6 on a hex grid, 4 on a square one)
    if len(xy) >= 20:
        from scipy.spatial import cKDTree

        idx = np.random.default_rng(0).choice(len(xy), size=min(500, len(xy)), replace=False)
        tree = cKDTree(xy)
        d, _ = tree.query(xy[idx], k=2)
        nn = np.median(d[:, 1])
        if nn > 0:
            counts = np.array([len(x) - 1 for x in tree.query_ball_point(xy[idx], nn * 1.2)])
            med = np.median(counts)
            if med == 6:
                return "visium"
            if med == 4:
                return "visium_hd"
    return "generic"
