"""A Visium HD sample whose cells are known: nuclei painted into a synthetic H&E at known places,
each cell's 2 um bins carrying its cell's expression (tests, benchmarks, accuracy).

Writes (as Space Ranger does)::

    OUT/binned_outputs/square_002um/{filtered_feature_bc_matrix.h5, spatial/...}
    OUT/segmented_outputs/...            (only with ``segmented=True``: the Space Ranger 4 layout)
    OUT/barcode_mappings.parquet          (with ``segmented=True``)

The H&E is written at full resolution (``tissue_hires_scalef`` 1.0, 0.2737 um per pixel), so that
nuclei 6-10 um across are 20-35 pixels wide. Cells: a nucleus (an ellipse) plus the bins within a
per-cell distance of 1-2 bins of it, nearest nucleus first; a cell's type sets its expression
(marker genes of the shipped marker table raised). Bins in tissue outside every cell carry a little
ambient expression and belong to no cell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from core.io.hd_fixture import MICRONS_PER_PIXEL, hd_barcode, write_10x_h5, write_hd_bins

BIN_UM = 2
PX_PER_BIN = BIN_UM / MICRONS_PER_PIXEL
DEFAULT_TYPES = ("Epithelial cells", "Fibroblasts", "T cells", "Macrophages", "Endothelial cells", "B cells")


@dataclass
class KnownCells:
    """Ground truth of a fixture: per nucleus and per 2 um bin."""

    out: Path
    genes: list[str]
    cell_type: np.ndarray  # per cell (str)
    nucleus_xy: np.ndarray  # (n, 2) full-res px (x, y)
    nucleus_axes_px: np.ndarray  # (n, 2) semi-axes
    nucleus_angle: np.ndarray
    bin_row: np.ndarray  # in-tissue bins (the matrix's rows, in order)
    bin_col: np.ndarray
    bin_cell: np.ndarray  # true cell of each bin (-1: none)
    bin_in_nucleus: np.ndarray
    X: sp.csr_matrix  # 2 um counts
    labels: np.ndarray  # true nucleus label image (id + 1), full-res px
    image: np.ndarray

    @property
    def n_cells(self) -> int:
        return len(self.cell_type)


def _markers(types: tuple[str, ...]) -> dict[str, list[str]]:
    from core.markers import load_markers

    table = load_markers(None)
    return {t: list(table.genes[t])[:8] for t in types}


def paint_he(labels: np.ndarray, cell_px: np.ndarray | None, rng: np.random.Generator, stain: float = 1.0,
             tissue: np.ndarray | None = None) -> np.ndarray:
    """An H&E-like RGB image: pink eosin background, darker cytoplasm, purple haematoxylin nuclei.

    ``stain`` scales the haematoxylin optical density (0.3: a weakly stained slide).
    """
    from core.io.nuclei import RGB_FROM_HED

    H, W = labels.shape
    od = np.zeros((H, W, 3), dtype=np.float32)  # optical density per stain (H, E, D)
    od[..., 1] = 0.12
    if tissue is not None:
        od[..., 1] += 0.10 * tissue
    if cell_px is not None:
        od[..., 1] += 0.12 * cell_px
    nuc = labels > 0
    od[..., 0] += np.where(nuc, 0.55 * stain, 0.0)
    od[..., 0] += 0.03 * stain * (tissue if tissue is not None else 1)
    od += rng.normal(0, 0.03, size=od.shape).astype(np.float32) * (1 + nuc[..., None])
    od = np.maximum(od, 0)
    rgb = np.exp(-(od.reshape(-1, 3) @ RGB_FROM_HED.astype(np.float32)) * np.log(10)).reshape(H, W, 3)
    out: np.ndarray = np.clip(rgb * 255, 0, 255).astype(np.uint8)
    return out


def make_hd_cells(out: Path, n_rows: int = 120, n_cols: int = 120, seed: int = 0, spacing_bins: float = 6.5,
                  types: tuple[str, ...] = DEFAULT_TYPES, n_genes: int = 300, umis_per_bin: float = 12.0,
                  segmented: bool = False, mex: bool = False, stain: float = 1.0,
                  tissue_frac: float = 0.9) -> KnownCells:
    """Write a 2 um Visium HD folder (and, with ``segmented``, Space Ranger 4 segmented outputs).

    Nuclei sit on a jittered lattice ``spacing_bins`` apart (semi-axes 1.5-2.4 bins, some touching);
    each cell reaches 1-2 bins beyond its nucleus. Cell types are in spatial patches (domains).
    """
    rng = np.random.default_rng(seed)
    marker = _markers(types)
    genes = list(dict.fromkeys(g for t in types for g in marker[t]))
    genes += [f"GENE{i:04d}" for i in range(max(0, n_genes - len(genes)))]
    G = len(genes)
    gidx = {g: i for i, g in enumerate(genes)}
    # type profiles: shared background + markers
    base = rng.gamma(0.6, 1.0, size=G)
    prof = np.tile(base, (len(types), 1))
    for k, t in enumerate(types):
        for g in marker[t]:
            prof[k, gidx[g]] += 12.0
    prof /= prof.sum(1, keepdims=True)
    ambient = base / base.sum()
    # nuclei on a jittered lattice inside a tissue disc
    cy0, cx0 = (n_rows - 1) / 2, (n_cols - 1) / 2
    rad = np.sqrt(tissue_frac * n_rows * n_cols / np.pi)
    ys = np.arange(spacing_bins / 2, n_rows, spacing_bins)
    xs = np.arange(spacing_bins / 2, n_cols, spacing_bins)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    c = np.stack([gx.ravel(), gy.ravel()], 1) + rng.uniform(-1.2, 1.2, size=(gx.size, 2))
    keep = ((c[:, 0] - cx0) ** 2 + (c[:, 1] - cy0) ** 2) <= (rad - 3) ** 2
    c = c[keep]
    n = len(c)
    axes = np.stack([rng.uniform(1.6, 2.4, n), rng.uniform(1.5, 2.1, n)], 1)  # in bins
    ang = rng.uniform(0, np.pi, n)
    reach = rng.uniform(1.0, 2.0, n)  # cytoplasm beyond the nucleus, in bins
    # cell types in patches: the type of the nearest of a few patch centres
    centres = rng.uniform([0, 0], [n_cols, n_rows], size=(len(types) * 2, 2))
    patch_type = np.arange(len(centres)) % len(types)
    near = np.argmin(((c[:, None, :] - centres[None]) ** 2).sum(-1), 1)
    ctype_idx = patch_type[near]
    flip = rng.random(n) < 0.15
    ctype_idx[flip] = rng.integers(0, len(types), flip.sum())
    # the bin grid: distance of every bin centre to every nearby nucleus (ellipse-scaled)
    R, C = np.mgrid[0:n_rows, 0:n_cols]
    in_tissue = (R - cy0) ** 2 + (C - cx0) ** 2 <= rad**2
    best = np.full((n_rows, n_cols), np.inf)
    owner = np.full((n_rows, n_cols), -1, dtype=np.int64)
    for i in range(n):
        x, y = c[i]
        r0, r1 = int(max(0, y - 6)), int(min(n_rows, y + 7))
        c0, c1 = int(max(0, x - 6)), int(min(n_cols, x + 7))
        yy, xx = R[r0:r1, c0:c1] + 0.5 - y, C[r0:r1, c0:c1] + 0.5 - x
        ca, sa = np.cos(ang[i]), np.sin(ang[i])
        u, v = xx * ca + yy * sa, -xx * sa + yy * ca
        rho = np.sqrt((u / axes[i, 0]) ** 2 + (v / axes[i, 1]) ** 2)  # 1 on the nucleus edge
        d_edge = (rho - 1) * np.minimum(axes[i, 0], axes[i, 1])  # approx. bins beyond the edge
        ok = d_edge <= reach[i]
        sub_b = best[r0:r1, c0:c1]
        sub_o = owner[r0:r1, c0:c1]
        better = ok & (d_edge < sub_b)
        sub_b[better] = d_edge[better]
        sub_o[better] = i
    owner[~in_tissue] = -1
    in_nuc = (best <= 0) & (owner >= 0)
    rows, cols = np.nonzero(in_tissue)
    bin_cell = owner[rows, cols]
    bin_nuc = in_nuc[rows, cols]
    # counts
    lam = np.where(bin_cell[:, None] >= 0, prof[ctype_idx[np.maximum(bin_cell, 0)]] * umis_per_bin,
                   ambient[None] * umis_per_bin * 0.15)
    X = sp.csr_matrix(rng.poisson(lam).astype(np.int32))
    # the image at full resolution: nucleus label image (exact ellipses in px) and cytoplasm mask
    Hp, Wp = int(np.ceil(n_rows * PX_PER_BIN)), int(np.ceil(n_cols * PX_PER_BIN))
    labels = np.zeros((Hp, Wp), dtype=np.int32)
    for i in range(n):
        x, y = c[i] * PX_PER_BIN
        a, b = axes[i] * PX_PER_BIN
        r = int(np.ceil(max(a, b))) + 1
        y0, y1 = max(0, int(y) - r), min(Hp, int(y) + r + 1)
        x0, x1 = max(0, int(x) - r), min(Wp, int(x) + r + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        yy = yy + 0.5 - y
        xx = xx + 0.5 - x
        ca, sa = np.cos(ang[i]), np.sin(ang[i])
        u, v = xx * ca + yy * sa, -xx * sa + yy * ca
        inside = (u / a) ** 2 + (v / b) ** 2 <= 1
        sub = labels[y0:y1, x0:x1]
        sub[inside & (sub == 0)] = i + 1
    ry = (np.arange(Hp) / PX_PER_BIN).astype(np.int64).clip(0, n_rows - 1)
    rx = (np.arange(Wp) / PX_PER_BIN).astype(np.int64).clip(0, n_cols - 1)
    cell_px = (owner[ry][:, rx] >= 0).astype(np.float32)
    tissue_px = in_tissue[ry][:, rx].astype(np.float32)
    img = paint_he(labels, cell_px, rng, stain=stain, tissue=tissue_px)
    del cell_px, tissue_px
    fine = out / "binned_outputs" / "square_002um"
    write_hd_bins(fine, X, rows, cols, genes, BIN_UM, (n_rows, n_cols), image=img)
    ctype = np.array([types[k] for k in ctype_idx])
    truth = KnownCells(out=out, genes=genes, cell_type=ctype, nucleus_xy=c * PX_PER_BIN,
                       nucleus_axes_px=axes * PX_PER_BIN, nucleus_angle=ang, bin_row=rows, bin_col=cols,
                       bin_cell=bin_cell, bin_in_nucleus=bin_nuc, X=X, labels=labels, image=img)
    if segmented:
        write_segmented_outputs(truth, mex=mex)
    return truth


def cell_barcode(i: int) -> str:
    return f"cellid_{i + 1:09d}-1"


def _ring(points: np.ndarray) -> list[list[float]]:
    from scipy.spatial import ConvexHull

    h = ConvexHull(points)
    ring = points[h.vertices]
    ring = np.vstack([ring, ring[:1]])
    return [[round(float(x), 2), round(float(y), 2)] for x, y in ring]


def write_segmented_outputs(t: KnownCells, mex: bool = False) -> Path:
    """The Space Ranger 4 ``segmented_outputs/`` of the true cells, and ``barcode_mappings.parquet``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    seg = t.out / "segmented_outputs"
    seg.mkdir(parents=True, exist_ok=True)
    n = t.n_cells
    assigned = t.bin_cell >= 0
    M = sp.csr_matrix((np.ones(int(assigned.sum()), dtype=np.int32),
                       (t.bin_cell[assigned], np.flatnonzero(assigned))), shape=(n, len(t.bin_cell)))
    Xc = sp.csr_matrix(M @ t.X)
    has = np.diff(M.indptr) > 0
    ids = np.flatnonzero(has)
    Xc = Xc[ids]
    bcs = [cell_barcode(int(i)) for i in ids]
    write_10x_h5(seg / "filtered_feature_cell_matrix.h5", Xc, bcs, t.genes)
    if mex:
        import gzip

        import scipy.io

        d = seg / "filtered_feature_cell_matrix"
        d.mkdir(exist_ok=True)
        with gzip.open(d / "matrix.mtx.gz", "wb") as fh:
            scipy.io.mmwrite(fh, sp.csc_matrix(Xc.T.astype(np.int64)), field="integer")
        with gzip.open(d / "barcodes.tsv.gz", "wt") as fh:
            fh.write("\n".join(bcs) + "\n")
        with gzip.open(d / "features.tsv.gz", "wt") as fh:
            fh.write("".join(f"ENSG{i:011d}\t{g}\tGene Expression\n" for i, g in enumerate(t.genes)))
    # polygons: cells from their bins' corners, nuclei from their ellipses (full-res px)
    feats_c, feats_n = [], []
    order = np.argsort(t.bin_cell, kind="stable")
    bc_sorted = t.bin_cell[order]
    for i in ids:
        a, b = np.searchsorted(bc_sorted, [i, i + 1])
        sel = order[a:b]
        r, cc = t.bin_row[sel], t.bin_col[sel]
        corners = np.concatenate([np.stack([cc + dx, r + dy], 1) for dx in (0, 1) for dy in (0, 1)]) * PX_PER_BIN
        feats_c.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [_ring(corners)]},
                        "properties": {"cell_id": int(i + 1)}})
        th = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        a_, b_ = t.nucleus_axes_px[i]
        ca, sa = np.cos(t.nucleus_angle[i]), np.sin(t.nucleus_angle[i])
        u, v = a_ * np.cos(th), b_ * np.sin(th)
        pts = np.stack([t.nucleus_xy[i, 0] + u * ca - v * sa, t.nucleus_xy[i, 1] + u * sa + v * ca], 1)
        ring = [[round(float(x), 2), round(float(y), 2)] for x, y in np.vstack([pts, pts[:1]])]
        feats_n.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                        "properties": {"cell_id": int(i + 1)}})
    (seg / "cell_segmentations.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats_c}))
    (seg / "nucleus_segmentations.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                                    "features": feats_n}))
    spatial = seg / "spatial"
    spatial.mkdir(exist_ok=True)
    src = t.out / "binned_outputs" / "square_002um" / "spatial"
    for f in ("scalefactors_json.json", "tissue_hires_image.png"):
        if (src / f).is_file():
            (spatial / f).write_bytes((src / f).read_bytes())
    r, cc = t.bin_row, t.bin_col
    cell_col = [cell_barcode(int(i)) if i >= 0 else None for i in t.bin_cell]
    table = pa.table({
        "square_002um": [hd_barcode(2, int(a), int(b)) for a, b in zip(r, cc, strict=True)],
        "square_008um": [hd_barcode(8, int(a) // 4, int(b) // 4) for a, b in zip(r, cc, strict=True)],
        "square_016um": [hd_barcode(16, int(a) // 8, int(b) // 8) for a, b in zip(r, cc, strict=True)],
        "cell_id": pa.array(cell_col, type=pa.string()),
        "in_nucleus": t.bin_in_nucleus & (t.bin_cell >= 0),
        "in_cell": t.bin_cell >= 0,
    })
    pq.write_table(table, t.out / "barcode_mappings.parquet")
    return seg
