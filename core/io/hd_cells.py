"""Visium HD at cell level: Space Ranger 4 segmented outputs, or our own cells from 2 um bins.

Space Ranger 4 writes ``segmented_outputs/`` (``filtered_feature_cell_matrix.h5`` or its MEX folder,
``cell_segmentations.geojson``, ``nucleus_segmentations.geojson``) and ``barcode_mappings.parquet``
(2 um bin -> 8/16 um bin, cell, in nucleus, in cell); :func:`read_segmented` reads them as cells.

Without a segmentation, :func:`cells_from_bins` makes cells from the 2 um bins:

1. nuclei from the H&E (:mod:`core.io.nuclei`: haematoxylin by colour deconvolution, seeded
   watershed, in tiles); each 2 um bin whose centre falls in a nucleus belongs to it;
2. nuclei grown on the bin grid by at most ``expand_bins`` bins (default 2, as bin2cell's
   ``expand_labels``): a bin joins the nearest nucleus; when two nuclei are about as near (within
   ``tie_margin_bins``), it joins the one whose nuclear expression its own counts resemble most
   (cosine similarity);
3. the 2 um matrix is streamed from the h5 in chunks and summed per cell (as
   :func:`core.io.hd.aggregate_bins` does for 8 um bins), never held whole; optionally each bin is
   first rescaled by row and column quantiles of bin totals (destriping, as bin2cell does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from core.errors import (
    BadCoordinates,
    BadOption,
    CorruptFile,
    MissingCoordinates,
    UnsupportedFormat,
)
from core.jsonable import JSONObject, JSONValue, as_number

if TYPE_CHECKING:
    from core.config import Settings
    from core.io.nuclei import NucleiParams

UNITS = ("cell", "bin")
SEG_DIR = "segmented_outputs"
CELL_H5 = "filtered_feature_cell_matrix.h5"
CELL_MEX = "filtered_feature_cell_matrix"
MAPPING = "barcode_mappings.parquet"
DEFAULT_EXPAND_BINS = 2.0
DEFAULT_TIE_MARGIN_BINS = 0.5


@dataclass
class CellSet:
    """Cells: summed counts, centroids, per-cell measures, outlines, and how they were made."""

    X: sp.csr_matrix  # cells x genes, float32
    cell_ids: np.ndarray  # str
    xy: np.ndarray  # (n, 2) full-resolution px (x, y)
    area_um2: np.ndarray
    n_bins: np.ndarray
    in_nucleus_frac: np.ndarray
    gene_names: list[str]
    gene_ids: list[str]
    polygons: list[np.ndarray]  # per cell, (k, 2) full-res px, closed ring not repeated
    method: str  # "spaceranger_segmentation" | "nuclei_watershed"
    description: str
    n_nuclei: int = 0
    bin_cell: np.ndarray | None = None  # own cells: cell index of each matrix barcode (-1: none)
    notes: list[str] = field(default_factory=list)
    params: JSONObject = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def obs_columns(self) -> dict[str, np.ndarray]:
        return {
            "area_um2": np.round(self.area_um2, 2),
            "n_bins": self.n_bins.astype(np.int64),
            "in_nucleus_frac": np.round(self.in_nucleus_frac, 4),
        }


def find_segmented(root: Path) -> Path | None:
    """``segmented_outputs/`` under a Space Ranger outs folder when it holds a cell matrix."""
    for d in (root / SEG_DIR, root if root.name == SEG_DIR else None):
        if (
            d is not None
            and d.is_dir()
            and ((d / CELL_H5).is_file() or (d / CELL_MEX / "matrix.mtx.gz").is_file())
        ):
            return d
    return None


# --------------------------------------------------------------------------- Space Ranger 4
def _read_mex(d: Path) -> tuple[sp.csr_matrix, list[str], list[str], list[str], list[str]]:
    import gzip

    import scipy.io

    try:
        with gzip.open(d / "matrix.mtx.gz", "rb") as fh:
            M = scipy.io.mmread(fh)
        with gzip.open(d / "barcodes.tsv.gz", "rt") as fh:
            bcs = [ln.strip() for ln in fh if ln.strip()]
        with gzip.open(d / "features.tsv.gz", "rt") as fh:
            rows = [ln.rstrip("\n").split("\t") for ln in fh if ln.strip()]
    except (OSError, ValueError, EOFError) as e:
        raise CorruptFile(f"{d.name}: unreadable MEX matrix: {e}") from e
    X = sp.csr_matrix(sp.coo_matrix(M).T, dtype=np.float32)
    ids = [r[0] for r in rows]
    names = [r[1] if len(r) > 1 else r[0] for r in rows]
    types = [r[2] if len(r) > 2 else "Gene Expression" for r in rows]
    if X.shape != (len(bcs), len(names)):
        raise CorruptFile(
            f"{d.name}: matrix {X.shape} does not match {len(bcs)} barcodes x {len(names)} features"
        )
    return X, bcs, names, ids, types


def _cell_key(v: Any) -> str:
    """A cell id from a geojson property or a mapping value, as the matrix names it (cellid_000000001-1)."""
    if isinstance(v, (int, np.integer)) or (isinstance(v, str) and v.isdigit()):
        return f"cellid_{int(v):09d}-1"
    return str(v)


def _ring_of(geom: dict[str, Any]) -> np.ndarray | None:
    if not isinstance(geom, dict):
        return None
    coords: Any = geom.get("coordinates")
    if not isinstance(coords, list) or not coords:
        return None
    try:
        if geom.get("type") == "Polygon":
            ring = coords[0]
        elif geom.get("type") == "MultiPolygon":
            ring = max((p[0] for p in coords), key=len)
        else:
            return None
        a = np.asarray(ring, dtype=np.float64)[:, :2]
    except (TypeError, ValueError, IndexError):
        return None
    if len(a) > 1 and np.allclose(a[0], a[-1]):
        a = a[:-1]
    return a if len(a) >= 3 and np.all(np.isfinite(a)) else None


def polygon_area_centroid(ring: np.ndarray) -> tuple[float, float, float]:
    """(area, cx, cy) of a simple polygon (shoelace)."""
    x, y = ring[:, 0], ring[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cr = x * y1 - x1 * y
    a = cr.sum() / 2
    if abs(a) < 1e-12:
        return 0.0, float(x.mean()), float(y.mean())
    return (
        float(abs(a)),
        float(((x + x1) * cr).sum() / (6 * a)),
        float(((y + y1) * cr).sum() / (6 * a)),
    )


def read_geojson_polygons(path: Path) -> dict[str, np.ndarray]:
    """``{cell id: ring}`` from a Space Ranger / QuPath GeoJSON FeatureCollection."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptFile(f"{path.name} is not valid GeoJSON: {e}") from e
    feats = doc.get("features") if isinstance(doc, dict) else doc if isinstance(doc, list) else None
    if not isinstance(feats, list):
        raise CorruptFile(f"{path.name} holds no GeoJSON features")
    out: dict[str, np.ndarray] = {}
    for i, f in enumerate(feats):
        if not isinstance(f, dict):
            continue
        props = f.get("properties") or {}
        cid = props.get("cell_id", props.get("id", f.get("id", i + 1)))
        ring = _ring_of(f.get("geometry") or {})
        if ring is not None:
            out[_cell_key(cid)] = ring
    return out


def _mapping_stats(path: Path) -> dict[str, tuple[int, int]]:
    """``{cell id: (2 um bins in the cell, of which in its nucleus)}`` from barcode_mappings.parquet."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError on damaged files
        raise CorruptFile(f"{path.name} is not a readable parquet file: {e}") from e
    names = {n.lower(): n for n in pf.schema_arrow.names}
    need = ["cell_id", "in_nucleus", "in_cell"]
    if any(n not in names for n in need):
        raise BadCoordinates(f"{path.name} lacks columns {[n for n in need if n not in names]}")
    counts: dict[str, list[int]] = {}
    for i in range(pf.num_row_groups):
        t = pf.read_row_group(i, columns=[names[n] for n in need])
        cid = t.column(names["cell_id"])
        in_cell = pc.fill_null(t.column(names["in_cell"]).cast("bool"), False)
        in_nuc = pc.fill_null(t.column(names["in_nucleus"]).cast("bool"), False)
        keep = pc.and_(in_cell, pc.is_valid(cid))
        cid_k = pc.filter(cid, keep)
        nuc_k = pc.filter(in_nuc, keep).to_numpy(zero_copy_only=False)
        enc = pc.dictionary_encode(cid_k.cast("string")).combine_chunks()
        codes = enc.indices.to_numpy(zero_copy_only=False)
        labels = enc.dictionary.to_pylist()
        nb = np.bincount(codes, minlength=len(labels))
        nn = np.bincount(codes, weights=nuc_k.astype(np.float64), minlength=len(labels))
        for lab, a, b in zip(labels, nb, nn, strict=True):
            c = counts.setdefault(_cell_key(lab), [0, 0])
            c[0] += int(a)
            c[1] += int(b)
    return {k: (v[0], v[1]) for k, v in counts.items()}


def segmented_dims(seg: Path) -> tuple[int, int, int]:
    """(cells, genes, nnz) of a segmented_outputs folder without reading its matrix."""
    if (seg / CELL_H5).is_file():
        from core.io.hd import _h5_dims

        return _h5_dims(seg / CELL_H5)
    with open(seg / CELL_MEX / "matrix.mtx.gz", "rb") as fh:
        import gzip

        with gzip.open(fh, "rt") as g:
            for line in g:
                if not line.startswith("%"):
                    n_feat, n_bc, nnz = (int(v) for v in line.split()[:3])
                    return n_bc, n_feat, nnz
    raise CorruptFile(f"{seg.name}: MEX matrix has no size line")


def read_segmented(seg: Path, settings: Settings, microns_per_px: float | None) -> CellSet:
    """Space Ranger 4 cells: the cell matrix, outlines (cell_segmentations.geojson), per-cell bins."""
    from core.io.readers.tenx import read_10x_h5

    if (seg / CELL_H5).is_file():
        a, _ = read_10x_h5(seg / CELL_H5, settings)
        X = sp.csr_matrix(a.X, dtype=np.float32)
        bcs = [str(b) for b in a.obs_names]
        names = [str(g) for g in a.var_names]
        ids = [str(v) for v in a.var["gene_ids"]]
    else:
        X, bcs, names, ids, types = _read_mex(seg / CELL_MEX)
        keep = np.array([t == "Gene Expression" for t in types])
        if keep.any() and not keep.all():
            X = X[:, keep]
            names = [n for n, k in zip(names, keep, strict=True) if k]
            ids = [n for n, k in zip(ids, keep, strict=True) if k]
    gj = seg / "cell_segmentations.geojson"
    if not gj.is_file():
        raise MissingCoordinates(
            f"{seg} has no cell_segmentations.geojson (cell outlines and positions)"
        )
    polys = read_geojson_polygons(gj)
    nuc = (
        read_geojson_polygons(seg / "nucleus_segmentations.geojson")
        if (seg / "nucleus_segmentations.geojson").is_file()
        else {}
    )
    has = np.array([b in polys for b in bcs])
    notes: list[str] = []
    if not has.any():
        raise BadCoordinates(
            "no cell of the cell matrix has an outline in cell_segmentations.geojson"
        )
    if not has.all():
        notes.append(
            f"{int((~has).sum())} cells without an outline in cell_segmentations.geojson were dropped"
        )
        X = X[has]
        bcs = [b for b, k in zip(bcs, has, strict=True) if k]
    n = len(bcs)
    xy = np.zeros((n, 2))
    area_px = np.zeros(n)
    rings = []
    for i, b in enumerate(bcs):
        ring = polys[b]
        ar, cx, cy = polygon_area_centroid(ring)
        area_px[i], xy[i] = ar, (cx, cy)
        rings.append(ring.astype(np.float32))
    mpp = microns_per_px or 0.0
    area_um2 = area_px * mpp * mpp if mpp else np.full(n, np.nan)
    mp = next((p for p in (seg.parent / MAPPING, seg / MAPPING) if p.is_file()), None)
    n_bins = np.zeros(n, dtype=np.int64)
    frac = np.full(n, np.nan)
    if mp is not None:
        stats = _mapping_stats(mp)
        for i, b in enumerate(bcs):
            nb, nn = stats.get(b, (0, 0))
            n_bins[i] = nb
            frac[i] = nn / nb if nb else np.nan
    else:
        notes.append("no barcode_mappings.parquet: bins per cell and in-nucleus fraction unknown")
        if nuc:
            for i, b in enumerate(bcs):
                if b in nuc and area_px[i] > 0:
                    frac[i] = min(1.0, polygon_area_centroid(nuc[b])[0] / area_px[i])
    desc = f"{n:,} cells from the Space Ranger segmentation (segmented_outputs)"
    return CellSet(
        X=X,
        cell_ids=np.asarray(bcs),
        xy=xy,
        area_um2=area_um2,
        n_bins=n_bins,
        in_nucleus_frac=frac,
        gene_names=names,
        gene_ids=ids,
        polygons=rings,
        method="spaceranger_segmentation",
        description=desc,
        n_nuclei=len(nuc),
        notes=notes,
    )


# --------------------------------------------------------------------------- our own cells
def expand_nuclei(
    grid_nuc: np.ndarray, present: np.ndarray, expand_bins: float, tie_margin_bins: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grow nuclei on the bin grid by at most ``expand_bins`` (Euclidean, in bins).

    Returns (nearest label, second nearest label or -1 when not within the tie margin, and a mask of
    contested bins). Nuclear bins keep their nucleus. Only ``present`` bins (the matrix's) are grown into.
    """
    H, W = grid_nuc.shape
    r = int(np.floor(expand_bins))
    d1 = np.full((H, W), np.inf, dtype=np.float32)
    l1 = np.full((H, W), -1, dtype=np.int64)
    d2 = np.full((H, W), np.inf, dtype=np.float32)
    l2 = np.full((H, W), -1, dtype=np.int64)
    nuc = grid_nuc >= 0
    d1[nuc] = 0
    l1[nuc] = grid_nuc[nuc]
    offs = [
        (dy, dx)
        for dy in range(-r, r + 1)
        for dx in range(-r, r + 1)
        if 0 < dy * dy + dx * dx <= expand_bins * expand_bins
    ]
    offs.sort(key=lambda o: o[0] ** 2 + o[1] ** 2)
    for dy, dx in offs:
        d = np.float32(np.hypot(dy, dx))
        # source: grid_nuc[y + dy, x + dx] seen from bin (y, x)
        ys, yd = (slice(dy, H), slice(0, H - dy)) if dy >= 0 else (slice(0, H + dy), slice(-dy, H))
        xs, xd = (slice(dx, W), slice(0, W - dx)) if dx >= 0 else (slice(0, W + dx), slice(-dx, W))
        src = grid_nuc[ys, xs]
        tgt_free = ~nuc[yd, xd]
        has = (src >= 0) & tgt_free
        if not has.any():
            continue
        L1, D1, L2, D2 = l1[yd, xd], d1[yd, xd], l2[yd, xd], d2[yd, xd]
        new_first = has & (d < D1) & (src != L1)
        # old first becomes second
        move = new_first & (L1 >= 0)
        L2[move], D2[move] = L1[move], D1[move]
        L1[new_first], D1[new_first] = src[new_first], d
        second = has & ~new_first & (src != L1) & (d < D2)
        L2[second], D2[second] = src[second], d
    keep = present & (d1 <= expand_bins)
    l1 = np.where(keep, l1, -1)
    with np.errstate(invalid="ignore"):
        contested = keep & ~nuc & (l2 >= 0) & (d2 - d1 <= tie_margin_bins)
    l2 = np.where(contested, l2, -1)
    return l1, l2, contested


def _destripe_factors(
    totals: np.ndarray, row: np.ndarray, col: np.ndarray, q: float = 0.99
) -> np.ndarray:
    """Per-bin scale so that every grid row and column has the same ``q`` quantile of bin totals."""
    import pandas as pd

    t = totals.astype(np.float64)
    ok = t > 0
    f = np.ones(len(t))
    rq = pd.Series(t[ok]).groupby(row[ok]).quantile(q)
    med = float(rq.median()) or 1.0
    rf = (med / rq.clip(lower=1e-9)).reindex(np.arange(row.max() + 1)).fillna(1.0).to_numpy()
    f *= rf[row]
    t2 = t * f
    cq = pd.Series(t2[ok]).groupby(col[ok]).quantile(q)
    medc = float(cq.median()) or 1.0
    cf = (medc / cq.clip(lower=1e-9)).reindex(np.arange(col.max() + 1)).fillna(1.0).to_numpy()
    f *= cf[col]
    return f


def span_polygons(
    bin_cell: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    prow: np.ndarray,
    pcol: np.ndarray,
    n_cells: int,
) -> list[np.ndarray]:
    """Each cell's outline from its bins, vectorised: per grid row the span of its bins' columns, down
    the left ends and up the right ends. Exact for cells whose rows are unbroken (grown nuclei are);
    grid corners go to pixels by the affine map fitted from the bins' (row, col) to their pixels, so a
    rotated or scaled registration is followed."""
    sel = np.flatnonzero(bin_cell >= 0)
    if sel.size == 0:
        return [np.zeros((0, 2), dtype=np.float32) for _ in range(n_cells)]
    # affine (row, col, 1) -> (x, y) pixels, least squares on a sample
    samp = sel[:: max(1, sel.size // 200_000)]
    A = np.stack([row[samp], col[samp], np.ones(samp.size)], 1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(A, np.stack([pcol[samp], prow[samp]], 1), rcond=None)
    cell, r, c = bin_cell[sel], row[sel].astype(np.int64), col[sel].astype(np.int64)
    o = np.lexsort((c, r, cell))
    cell, r, c = cell[o], r[o], c[o]
    start = np.r_[True, (cell[1:] != cell[:-1]) | (r[1:] != r[:-1])]
    si = np.flatnonzero(start)
    ei = np.r_[si[1:], len(cell)] - 1
    sc, sr, cmin, cmax = cell[si], r[si], c[si], c[ei]
    # vertices in bin-corner coordinates (row, col): down the left side, then up the right side
    n_sp = len(si)
    left = np.empty((n_sp, 2, 2))
    left[:, 0] = np.stack([sr - 0.5, cmin - 0.5], 1)
    left[:, 1] = np.stack([sr + 0.5, cmin - 0.5], 1)
    right = np.empty((n_sp, 2, 2))
    right[:, 0] = np.stack([sr + 0.5, cmax + 0.5], 1)
    right[:, 1] = np.stack([sr - 0.5, cmax + 0.5], 1)
    bounds = np.searchsorted(sc, np.arange(n_cells + 1))
    # per cell: its left vertices in row order, then its right vertices in reverse row order
    ln = left.reshape(-1, 2)
    rn = right[::-1].reshape(
        -1, 2
    )  # spans reversed globally: each cell's block reversed, cells reversed
    cnt = np.diff(bounds) * 2
    rstart = int(cnt.sum()) - np.cumsum(cnt)  # cell i's block in rn starts after those of cells > i
    ln_px = (ln[:, 0:1] * coef[0] + ln[:, 1:2] * coef[1] + coef[2]).astype(np.float32)
    rn_px = (rn[:, 0:1] * coef[0] + rn[:, 1:2] * coef[1] + coef[2]).astype(np.float32)
    return [
        np.concatenate(
            [ln_px[bounds[i] * 2 : bounds[i + 1] * 2], rn_px[rstart[i] : rstart[i] + cnt[i]]]
        )
        for i in range(n_cells)
    ]


def cells_from_bins(
    fine_dir: Path,
    image: np.ndarray | None = None,
    image_scalef: float | None = None,
    microns_per_px: float | None = None,
    expand_bins: float = DEFAULT_EXPAND_BINS,
    tie_margin_bins: float = DEFAULT_TIE_MARGIN_BINS,
    destripe: bool = False,
    chunk_nnz: int = 8_000_000,
    nuclei_params: NucleiParams | None = None,
    polygons: bool = True,
) -> CellSet:
    """Cells from a ``square_002um`` folder and its H&E (see the module docstring).

    Parameters
    ----------
    fine_dir
        The 2 um bin folder (``filtered_feature_bc_matrix.h5``, ``spatial/``).
    image
        ``(H, W, 3)`` uint8 H&E (a ``np.memmap`` for a huge one); default: ``spatial/``'s hires image.
    image_scalef
        Image px per full-resolution px (default: the scalefactors' ``tissue_hires_scalef``).
    microns_per_px
        Micrometres per full-resolution pixel (default: the scalefactors').
    """
    from core.io.hd import BIN_DIR_RE, _fine_positions, positions_file, read_scalefactors
    from core.io.hdf5_safety import open_checked
    from core.io.nuclei import segment_nuclei

    m = BIN_DIR_RE.match(fine_dir.name)
    if not m:
        raise UnsupportedFormat(f"{fine_dir} is not a square_XXXum bin folder")
    bin_um = int(m.group(1))
    if expand_bins < 0 or expand_bins > 10:
        raise BadOption("expand_bins must be within [0, 10]")
    spatial = fine_dir / "spatial"
    sf = read_scalefactors(spatial)
    mpp = as_number(microns_per_px or sf.get("microns_per_pixel") or 0)
    if mpp <= 0:
        raise MissingCoordinates(
            "microns_per_pixel is unknown (scalefactors_json.json): cannot size nuclei"
        )
    if image is None:
        p = spatial / "tissue_hires_image.png"
        if not p.is_file():
            raise MissingCoordinates(
                f"{spatial} has no H&E image to find nuclei in (tissue_hires_image.png)"
            )
        from core.config import get_settings
        from core.io.readers.tenx import load_png

        image = load_png(p, get_settings().max_image_pixels)
        image_scalef = as_number(sf.get("tissue_hires_scalef", 1.0))
    scalef = float(image_scalef if image_scalef is not None else 1.0)
    notes: list[str] = []
    if mpp / scalef > 1.0:
        notes.append(
            f"the H&E is coarse ({mpp / scalef:.2f} um per px): small nuclei may be missed; "
            "a full-resolution image gives better cells"
        )
    h5 = fine_dir / "filtered_feature_bc_matrix.h5"
    positions = positions_file(spatial)
    with open_checked(h5) as f:
        g = f["matrix"]
        n_feat, n_bc = (int(v) for v in g["shape"][:])
        bcs = np.asarray(g["barcodes"][:])
        if bcs.dtype.kind != "S":
            bcs = bcs.astype("S")
        feats = g["features"]
        names = [b.decode() for b in feats["name"][:]]
        ids = [b.decode() for b in feats["id"][:]] if "id" in feats else names
        ftypes = [b.decode() for b in feats["feature_type"][:]] if "feature_type" in feats else None
        order = np.argsort(bcs, kind="stable")
        sorted_bcs = bcs[order]
        del bcs
        row, col, prow, pcol = _fine_positions(positions, order, sorted_bcs, n_bc)
        del order, sorted_bcs
        placed = row >= 0
        if not placed.any():
            raise BadCoordinates(
                "no barcode of the 2 um matrix appears in tissue_positions.parquet"
            )
        # 1. nuclei at the bin centres
        pts = np.stack([pcol * scalef, prow * scalef], 1).astype(np.float32)
        nuclei = segment_nuclei(image, mpp / scalef, points_xy=pts, params=nuclei_params)
        del pts
        notes += nuclei.notes
        assert nuclei.point_label is not None
        bin_nuc = np.where(placed, nuclei.point_label, -1)
        # 2. grow on the grid
        Hn, Wn = int(row.max()) + 1, int(col.max()) + 1
        grid = np.full((Hn, Wn), -1, dtype=np.int64)
        present = np.zeros((Hn, Wn), dtype=bool)
        rp, cp = row[placed], col[placed]
        grid[rp, cp] = bin_nuc[placed]
        present[rp, cp] = True
        l1, l2, contested = expand_nuclei(grid, present, expand_bins, tie_margin_bins)
        del grid, present
        lab = np.full(n_bc, -1, dtype=np.int64)
        alt = np.full(n_bc, -1, dtype=np.int64)
        con = np.zeros(n_bc, dtype=bool)
        lab[placed] = l1[rp, cp]
        alt[placed] = l2[rp, cp]
        con[placed] = contested[rp, cp]
        del l1, l2, contested
        n_nuc = nuclei.n
        # 3. stream the matrix: cell sums of settled bins, nuclear sums (profiles), contested rows
        indptr = np.asarray(g["indptr"][:], dtype=np.int64)
        if len(indptr) != n_bc + 1 or int(indptr[-1]) != g["data"].shape[0]:
            raise CorruptFile(f"{h5.name}: indptr does not match the stored values")
        scale = None
        if destripe:
            totals = np.zeros(n_bc)
            b0 = 0
            while b0 < n_bc:
                b1 = min(
                    max(
                        int(np.searchsorted(indptr, indptr[b0] + chunk_nnz, side="right")) - 1,
                        b0 + 1,
                    ),
                    n_bc,
                )
                dat = np.asarray(g["data"][int(indptr[b0]) : int(indptr[b1])], dtype=np.float64)
                seg_ids = np.repeat(np.arange(b1 - b0), np.diff(indptr[b0 : b1 + 1]))
                totals[b0:b1] = np.bincount(seg_ids, weights=dat, minlength=b1 - b0)
                b0 = b1
            scale = np.ones(n_bc)
            scale[placed] = _destripe_factors(totals[placed], row[placed], col[placed])
            del totals
        settled = (lab >= 0) & ~con
        nuclear = bin_nuc >= 0
        parts_cell: list[sp.csr_matrix] = []
        parts_nuc: list[sp.csr_matrix] = []
        con_rows: list[sp.csr_matrix] = []
        con_idx: list[np.ndarray] = []
        b0 = 0
        while b0 < n_bc:
            b1 = min(
                max(int(np.searchsorted(indptr, indptr[b0] + chunk_nnz, side="right")) - 1, b0 + 1),
                n_bc,
            )
            s, e = int(indptr[b0]), int(indptr[b1])
            idx = np.asarray(g["indices"][s:e], dtype=np.int64)
            dat = np.asarray(g["data"][s:e], dtype=np.float32)
            if idx.size and (idx.min() < 0 or idx.max() >= n_feat):
                raise CorruptFile(f"{h5.name}: feature indices out of range [0, {n_feat})")
            ch = sp.csr_matrix((dat, idx, indptr[b0 : b1 + 1] - s), shape=(b1 - b0, n_feat))
            if scale is not None:
                ch = sp.csr_matrix(sp.diags(scale[b0:b1].astype(np.float32)) @ ch)
            loc = np.arange(b1 - b0)
            for mask_, labels_, out in (
                (settled[b0:b1], lab[b0:b1], parts_cell),
                (nuclear[b0:b1], bin_nuc[b0:b1], parts_nuc),
            ):
                if mask_.any():
                    P = sp.csr_matrix(
                        (np.ones(int(mask_.sum()), dtype=np.float32), (labels_[mask_], loc[mask_])),
                        shape=(n_nuc, b1 - b0),
                    )
                    out.append(sp.csr_matrix(P @ ch))
            cm = con[b0:b1]
            if cm.any():
                con_rows.append(ch[cm])
                con_idx.append(np.flatnonzero(cm) + b0)
            del idx, dat, ch
            b0 = b1
    Xc = _sum_parts(parts_cell, (n_nuc, n_feat))
    # ties: the candidate nucleus whose nuclear profile the bin's counts resemble most
    n_contested = 0
    if con_idx:
        Xn = _sum_parts(parts_nuc, (n_nuc, n_feat))
        rows_c = sp.vstack(con_rows).tocsr()
        cidx = np.concatenate(con_idx)
        n_contested = len(cidx)
        prof = _l2_rows(Xn)
        rb = _l2_rows(rows_c)
        s1 = np.asarray(rb.multiply(prof[lab[cidx]]).sum(1)).ravel()
        s2 = np.asarray(rb.multiply(prof[alt[cidx]]).sum(1)).ravel()
        pick = np.where(s2 > s1, alt[cidx], lab[cidx])
        lab[cidx] = pick
        P = sp.csr_matrix(
            (np.ones(n_contested, dtype=np.float32), (pick, np.arange(n_contested))),
            shape=(n_nuc, n_contested),
        )
        Xc = sp.csr_matrix(Xc + P @ rows_c)
        del Xn, rows_c, prof, rb
    # per cell
    assigned = lab >= 0
    n_bins = np.bincount(lab[assigned], minlength=n_nuc)
    n_in_nuc = np.bincount(lab[assigned & nuclear], minlength=n_nuc)
    sx = np.bincount(lab[assigned], weights=pcol[assigned], minlength=n_nuc)
    sy = np.bincount(lab[assigned], weights=prow[assigned], minlength=n_nuc)
    keep = n_bins > 0
    kept = np.flatnonzero(keep)
    remap = np.full(n_nuc, -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    bin_cell = np.where(assigned, remap[np.maximum(lab, 0)], -1)
    nb = n_bins[kept]
    xy = np.stack([sx[kept] / nb, sy[kept] / nb], 1)
    rings: list[np.ndarray] = []
    if polygons:
        rings = span_polygons(bin_cell, row, col, prow, pcol, len(kept))
    X = sp.csr_matrix(Xc[kept], dtype=np.float32)
    if ftypes is not None:
        ge = np.array([t == "Gene Expression" for t in ftypes])
        if ge.any() and not ge.all():
            X = X[:, ge]
            names = [n for n, k in zip(names, ge, strict=True) if k]
            ids = [n for n, k in zip(ids, ge, strict=True) if k]
    cell_ids = np.array([f"cell_{i + 1:07d}" for i in range(len(kept))])
    n_unassigned = int((placed & ~assigned).sum())
    desc = (
        f"{len(kept):,} cells made here from {int(placed.sum()):,} {bin_um} um bins: {n_nuc:,} nuclei found on "
        f"the H&E (haematoxylin colour deconvolution + seeded watershed, {nuclei.n_tiles} tiles), grown by up "
        f"to {expand_bins:g} bins ({n_contested:,} near-tied bins settled by expression similarity)"
        + ("; bins destriped" if destripe else "")
    )
    notes.append(
        f"{n_unassigned:,} of {int(placed.sum()):,} {bin_um} um bins lie in no cell (beyond "
        f"{expand_bins:g} bins of a nucleus) and are left out of the cell matrix"
    )
    return CellSet(
        X=X,
        cell_ids=cell_ids,
        xy=xy,
        area_um2=nb * float(bin_um) ** 2,
        n_bins=nb,
        in_nucleus_frac=n_in_nuc[kept] / nb,
        gene_names=names,
        gene_ids=ids,
        polygons=rings,
        method="nuclei_watershed",
        description=desc,
        n_nuclei=n_nuc,
        bin_cell=bin_cell,
        notes=notes,
        params={
            "expand_bins": expand_bins,
            "tie_margin_bins": tie_margin_bins,
            "destripe": destripe,
            "haematoxylin_threshold": round(nuclei.threshold, 4),
            "n_contested": n_contested,
        },
    )


def _sum_parts(parts: list[sp.csr_matrix], shape: tuple[int, int]) -> sp.csr_matrix:
    if not parts:
        return sp.csr_matrix(shape, dtype=np.float32)
    coo = [sp.coo_matrix(p) for p in parts]
    r = np.concatenate([c.row for c in coo])
    c_ = np.concatenate([c.col for c in coo])
    d = np.concatenate([c.data for c in coo]).astype(np.float32)
    del coo
    out = sp.csr_matrix((d, (r, c_)), shape=shape, dtype=np.float32)
    out.sum_duplicates()
    return out


def _l2_rows(X: sp.csr_matrix) -> sp.csr_matrix:
    n = np.sqrt(np.asarray(X.multiply(X).sum(1)).ravel())
    return sp.csr_matrix(sp.diags(1 / np.maximum(n, 1e-12)) @ X)


# --------------------------------------------------------------------------- outputs
def cells_geojson(
    ids: list[str],
    rings: list[np.ndarray],
    cell_types: list[str] | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> JSONObject:
    """A GeoJSON FeatureCollection QuPath imports as cells (``objectType: cell``, full-res px)."""
    feats: list[JSONValue] = []
    for i, (cid, ring) in enumerate(zip(ids, rings, strict=True)):
        if ring is None or len(ring) < 3:
            continue
        pts: list[JSONValue] = [[round(float(x), 2), round(float(y), 2)] for x, y in ring]
        pts.append(pts[0])
        props: JSONObject = {"objectType": "cell", "name": str(cid)}
        if cell_types is not None:
            props["classification"] = {"name": str(cell_types[i])}
        if extra:
            props["measurements"] = {
                k: (None if not np.isfinite(float(v[i])) else float(v[i])) for k, v in extra.items()
            }
        feats.append(
            {
                "type": "Feature",
                "id": str(cid),
                "geometry": {"type": "Polygon", "coordinates": [pts]},
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": feats}
