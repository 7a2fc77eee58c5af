"""Visium HD cells at scale: a full 6.5 mm capture area of 2 um bins to cells and analysed; nuclei on a
20,000 x 20,000 px H&E with bounded memory.

    # a capture area (3,250 x 3,250 bins of 2 um, ~9 million in tissue), its H&E as a .npy memmap,
    # then cells + analysis in a fresh process (peak RSS of that process, wall time per step):
    python bench/hd_cells.py capture --rows 3250 --cols 3250 --work /tmp/hdcap
    # nuclei on a 20,000 x 20,000 px H&E (0.2737 um/px), read one tile at a time from a memmap:
    python bench/hd_cells.py nuclei --px 20000 --work /tmp/hdnuc

Each measured step runs in its own subprocess; its peak RSS is that child's ``ru_maxrss``. The
sample is synthetic with known cells (as tests/fixtures/hd_cells.py, vectorised by bands of rows),
so the run also reports nuclei recall and the share of bins assigned to their true cell.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.hd import MICRONS_PER_PIXEL, hd_barcode  # noqa: E402

BIN_UM = 2


def _types() -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    from tests.fixtures.hd_cells import DEFAULT_TYPES, _markers

    marker = _markers(DEFAULT_TYPES)
    genes = list(dict.fromkeys(g for t in DEFAULT_TYPES for g in marker[t]))
    genes += [f"GENE{i:04d}" for i in range(300 - len(genes))]
    rng = np.random.default_rng(0)
    base = rng.gamma(0.6, 1.0, size=len(genes))
    prof = np.tile(base, (len(DEFAULT_TYPES), 1))
    gi = {g: i for i, g in enumerate(genes)}
    for k, t in enumerate(DEFAULT_TYPES):
        for g in marker[t]:
            prof[k, gi[g]] += 12.0
    prof /= prof.sum(1, keepdims=True)
    return genes, np.cumsum(prof, 1), np.cumsum(base / base.sum()), list(DEFAULT_TYPES)


def make_capture(
    work: Path,
    rows: int,
    cols: int,
    image_um_per_px: float,
    seed: int = 0,
    spacing: float = 5.2,
    band: int = 128,
) -> dict[str, float]:
    """Write OUT/binned_outputs/square_002um (h5 + parquet) and he.npy (memmap); truth in truth.npz."""
    import h5py
    import pyarrow as pa
    import pyarrow.parquet as pq
    from scipy.spatial import cKDTree

    from core.io.nuclei import RGB_FROM_HED

    rng = np.random.default_rng(seed)
    genes, cdf_type, cdf_amb, types = _types()
    cy0, cx0 = (rows - 1) / 2, (cols - 1) / 2
    rad = np.sqrt(0.85 * rows * cols / np.pi)
    ys, xs = np.arange(spacing / 2, rows, spacing), np.arange(spacing / 2, cols, spacing)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    c = np.stack([gx.ravel(), gy.ravel()], 1) + rng.uniform(-1.0, 1.0, size=(gx.size, 2))
    c = c[((c[:, 0] - cx0) ** 2 + (c[:, 1] - cy0) ** 2) <= (rad - 3) ** 2]
    c = c[np.lexsort((c[:, 0], c[:, 1]))]
    n = len(c)
    axes = np.stack([rng.uniform(1.3, 1.9, n), rng.uniform(1.2, 1.6, n)], 1)
    ang = rng.uniform(0, np.pi, n)
    reach = rng.uniform(0.8, 1.5, n)
    centres = rng.uniform([0, 0], [cols, rows], size=(200, 2))
    ctype = (cKDTree(centres).query(c)[1] % len(types)).astype(np.int64)
    fine = work / "outs" / "binned_outputs" / "square_002um"
    spatial = fine / "spatial"
    spatial.mkdir(parents=True, exist_ok=True)
    px_full = BIN_UM / MICRONS_PER_PIXEL
    win = np.arange(-4, 5)
    oy, ox = (a.ravel() for a in np.meshgrid(win, win, indexing="ij"))
    truth_cell = []
    writer = None
    n_bc = nnz = 0
    with h5py.File(fine / "filtered_feature_bc_matrix.h5", "w") as f:
        g = f.create_group("matrix")
        ds_bc = g.create_dataset(
            "barcodes", shape=(0,), maxshape=(None,), dtype="S22", chunks=(1 << 16,)
        )
        ds_d = g.create_dataset(
            "data", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(1 << 20,)
        )
        ds_i = g.create_dataset(
            "indices", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1 << 20,)
        )
        ds_p = g.create_dataset(
            "indptr", shape=(1,), maxshape=(None,), dtype=np.int64, chunks=(1 << 16,)
        )
        ds_p[0] = 0
        for r0 in range(0, rows, band):
            r1 = min(rows, r0 + band)
            sel = np.flatnonzero((c[:, 1] >= r0 - 6) & (c[:, 1] < r1 + 6))
            # candidate (bin, nucleus) pairs in a 9 x 9 window around each nucleus
            br = (np.floor(c[sel, 1])[:, None] + oy[None]).astype(np.int64)
            bcn = (np.floor(c[sel, 0])[:, None] + ox[None]).astype(np.int64)
            yy, xx = br + 0.5 - c[sel, 1:2], bcn + 0.5 - c[sel, 0:1]
            ca, sa = np.cos(ang[sel])[:, None], np.sin(ang[sel])[:, None]
            u, v = xx * ca + yy * sa, -xx * sa + yy * ca
            rho = np.sqrt((u / axes[sel, 0:1]) ** 2 + (v / axes[sel, 1:2]) ** 2)
            d = (rho - 1) * np.minimum(axes[sel, 0:1], axes[sel, 1:2])
            ok = (d <= reach[sel, None]) & (br >= r0) & (br < r1) & (bcn >= 0) & (bcn < cols)
            key = (br * cols + bcn)[ok]
            dd, nn = d[ok], np.broadcast_to(sel[:, None], ok.shape)[ok]
            o = np.lexsort((dd, key))
            key, dd, nn = key[o], dd[o], nn[o]
            first = np.r_[True, key[1:] != key[:-1]]
            okey, onuc, onucd = key[first], nn[first], dd[first]
            # in-tissue bins of the band
            R, C = np.mgrid[r0:r1, 0:cols]
            it = (R - cy0) ** 2 + (C - cx0) ** 2 <= rad**2
            bins = (R * cols + C)[it]
            pos = np.searchsorted(okey, bins)
            pos_c = np.minimum(pos, max(len(okey) - 1, 0))
            hit = (okey[pos_c] == bins) if len(okey) else np.zeros(len(bins), bool)
            cell = np.where(hit, onuc[pos_c] if len(okey) else -1, -1)
            truth_cell.append(np.stack([bins, cell, np.where(hit, onucd[pos_c] <= 0, False)], 1))
            k = len(bins)
            umis = np.where(cell >= 0, rng.poisson(6.0, k), rng.poisson(0.8, k))
            b_of = np.repeat(np.arange(k), umis)
            uu = rng.random(len(b_of))
            gi = np.empty(len(b_of), dtype=np.int64)
            inc = cell[b_of] >= 0
            t_of = ctype[np.maximum(cell[b_of], 0)]
            for t in range(len(types)):
                m = inc & (t_of == t)
                gi[m] = np.searchsorted(cdf_type[t], uu[m])
            gi[~inc] = np.searchsorted(cdf_amb, uu[~inc])
            gi = np.minimum(gi, len(genes) - 1)
            X = sp.csr_matrix(
                (np.ones(len(b_of), dtype=np.int32), (b_of, gi)), shape=(k, len(genes))
            )
            X.sum_duplicates()
            rr, cc = bins // cols, bins % cols
            bcs = np.array(
                [hd_barcode(2, int(a), int(b)) for a, b in zip(rr, cc, strict=True)], dtype="S22"
            )
            ds_bc.resize((n_bc + k,))
            ds_bc[n_bc:] = bcs
            ds_d.resize((nnz + X.nnz,))
            ds_d[nnz:] = X.data
            ds_i.resize((nnz + X.nnz,))
            ds_i[nnz:] = X.indices
            ds_p.resize((n_bc + k + 1,))
            ds_p[n_bc + 1 :] = X.indptr[1:] + nnz
            n_bc += k
            nnz += X.nnz
            t = pa.table(
                {
                    "barcode": bcs.astype(str),
                    "in_tissue": np.ones(k, dtype=np.int32),
                    "array_row": rr.astype(np.int32),
                    "array_col": cc.astype(np.int32),
                    "pxl_row_in_fullres": (rr + 0.5) * px_full,
                    "pxl_col_in_fullres": (cc + 0.5) * px_full,
                }
            )
            if writer is None:
                writer = pq.ParquetWriter(spatial / "tissue_positions.parquet", t.schema)
            writer.write_table(t, row_group_size=1 << 20)
        g.create_dataset("shape", data=np.array([len(genes), n_bc], dtype=np.int32))
        ft = g.create_group("features")
        ft.create_dataset("name", data=np.array(genes, dtype="S"))
        ft.create_dataset(
            "id", data=np.array([f"ENSG{i:011d}" for i in range(len(genes))], dtype="S")
        )
        ft.create_dataset(
            "feature_type", data=np.array(["Gene Expression"] * len(genes), dtype="S")
        )
    assert writer is not None
    writer.close()
    (spatial / "scalefactors_json.json").write_text(
        json.dumps(
            {
                "spot_diameter_fullres": px_full,
                "bin_size_um": 2.0,
                "microns_per_pixel": MICRONS_PER_PIXEL,
                "tissue_hires_scalef": MICRONS_PER_PIXEL / image_um_per_px,
            }
        )
    )
    tc = np.concatenate(truth_cell)
    # the H&E at image_um_per_px, painted band by band into a memmap
    ppb = BIN_UM / image_um_per_px  # image px per bin
    Hp, Wp = int(rows * ppb), int(cols * ppb)
    img = np.lib.format.open_memmap(work / "he.npy", mode="w+", dtype=np.uint8, shape=(Hp, Wp, 3))
    rfh = RGB_FROM_HED.astype(np.float32)
    pb = 1024
    ext = int(np.ceil(1.9 * ppb)) + 2
    wy, wx = (
        a.ravel()
        for a in np.meshgrid(np.arange(-ext, ext + 1), np.arange(-ext, ext + 1), indexing="ij")
    )
    for y0 in range(0, Hp, pb):
        y1 = min(Hp, y0 + pb)
        od = np.zeros((y1 - y0, Wp, 3), dtype=np.float32)
        yy_b = (np.arange(y0, y1)[:, None] + 0.5) / ppb
        xx_b = (np.arange(Wp)[None, :] + 0.5) / ppb
        tissue = ((yy_b - cy0 - 0.5) ** 2 + (xx_b - cx0 - 0.5) ** 2) <= rad**2
        od[..., 1] = 0.12 + 0.15 * tissue
        od[..., 0] = 0.03 * tissue
        sel = np.flatnonzero((c[:, 1] * ppb >= y0 - ext) & (c[:, 1] * ppb < y1 + ext))
        py = (np.floor(c[sel, 1] * ppb)[:, None] + wy[None]).astype(np.int64)
        px = (np.floor(c[sel, 0] * ppb)[:, None] + wx[None]).astype(np.int64)
        dy, dx = py + 0.5 - c[sel, 1:2] * ppb, px + 0.5 - c[sel, 0:1] * ppb
        ca, sa = np.cos(ang[sel])[:, None], np.sin(ang[sel])[:, None]
        u, v = dx * ca + dy * sa, -dx * sa + dy * ca
        inside = (u / (axes[sel, 0:1] * ppb)) ** 2 + (v / (axes[sel, 1:2] * ppb)) ** 2 <= 1
        inside &= (py >= y0) & (py < y1) & (px >= 0) & (px < Wp)
        od[py[inside] - y0, px[inside], 0] = 0.55
        od += rng.normal(0, 0.03, size=od.shape).astype(np.float32)
        np.maximum(od, 0, out=od)
        rgb = np.exp(-(od.reshape(-1, 3) @ rfh) * np.float32(np.log(10))).reshape(od.shape)
        img[y0:y1] = np.clip(rgb * 255, 0, 255).astype(np.uint8)
        del od, rgb
    img.flush()
    np.savez(
        work / "truth.npz",
        bins=tc[:, 0],
        cell=tc[:, 1],
        in_nuc=tc[:, 2],
        nuclei=c,
        axes=axes,
        ang=ang,
        ctype=ctype,
    )
    return {
        "n_bins": float(n_bc),
        "nnz": float(nnz),
        "n_nuclei": float(n),
        "image_px": float(Hp * Wp),
    }


def run_cells(work: Path, image_um_per_px: float, analyse: bool) -> dict[str, object]:
    """Cells from the 2 um bins and the memmapped H&E, then the analysis (this process is measured)."""
    import anndata as ad
    import pandas as pd

    from core.analysis.pipeline import AnalysisParams, run_analysis
    from core.io.hd_cells import cells_from_bins

    t0 = time.perf_counter()
    image = np.load(work / "he.npy", mmap_mode="r")
    fine = work / "outs" / "binned_outputs" / "square_002um"
    cs = cells_from_bins(fine, image=image, image_scalef=MICRONS_PER_PIXEL / image_um_per_px)
    t_cells = time.perf_counter() - t0
    out: dict[str, object] = {
        "n_cells": cs.n,
        "n_nuclei": cs.n_nuclei,
        "cells_s": round(t_cells, 1),
        "cells_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    # accuracy against the truth: bins of true cells in the predicted cell matched to theirs
    tr = np.load(work / "truth.npz")
    assert cs.bin_cell is not None
    pred = cs.bin_cell  # matrix order == truth order (both written band by band, row-major)
    true = tr["cell"]
    m = (pred >= 0) & (true >= 0)
    pair = pred[m].astype(np.int64) * (int(true.max()) + 1) + true[m]
    u, cnt = np.unique(pair, return_counts=True)
    pcell, tcell = u // (int(true.max()) + 1), u % (int(true.max()) + 1)
    o = np.lexsort((-cnt, pcell))
    firsts = np.r_[True, pcell[o][1:] != pcell[o][:-1]]
    best = np.full(cs.n, -2, dtype=np.int64)
    best[pcell[o][firsts]] = tcell[o][firsts]
    inc = true >= 0
    mapped = np.where(pred >= 0, best[np.maximum(pred, 0)], -3)
    out["bins_to_true_cell"] = round(float(np.mean(mapped[inc] == true[inc])), 4)
    out["nuclei_found_vs_true"] = round(cs.n_nuclei / len(tr["nuclei"]), 4)
    if analyse:
        t1 = time.perf_counter()
        a = ad.AnnData(
            X=cs.X,
            obs=pd.DataFrame(cs.obs_columns(), index=pd.Index(cs.cell_ids)),
            var=pd.DataFrame(index=pd.Index(cs.gene_names)),
        )
        a.obsm["spatial"] = cs.xy
        del cs
        res = run_analysis(
            a,
            "generic",
            AnalysisParams(seed=0),
            px_per_um=1 / MICRONS_PER_PIXEL,
            release_input=True,
        )
        out["analysis_s"] = round(time.perf_counter() - t1, 1)
        out["n_cells_analysed"] = len(res.obs_names)
    out["total_s"] = round(time.perf_counter() - t0, 1)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def make_he(work: Path, px: int, seed: int = 0) -> None:
    """A px x px full-resolution H&E (0.2737 um/px) of random nuclei, as a .npy memmap, band by band."""
    from core.io.nuclei import RGB_FROM_HED

    rng = np.random.default_rng(seed)
    img = np.lib.format.open_memmap(
        work / "he20k.npy", mode="w+", dtype=np.uint8, shape=(px, px, 3)
    )
    rfh = RGB_FROM_HED.astype(np.float32)
    r = 4.0 / MICRONS_PER_PIXEL  # 8 um nuclei
    step = int(12 / MICRONS_PER_PIXEL)
    cy, cx = np.meshgrid(
        np.arange(step // 2, px, step), np.arange(step // 2, px, step), indexing="ij"
    )
    cent = np.stack([cx.ravel(), cy.ravel()], 1) + rng.uniform(-8, 8, size=(cx.size, 2))
    ext = int(r) + 2
    wy, wx = (
        a.ravel()
        for a in np.meshgrid(np.arange(-ext, ext + 1), np.arange(-ext, ext + 1), indexing="ij")
    )
    keep = (wy**2 + wx**2) <= r * r
    wy, wx = wy[keep], wx[keep]
    for y0 in range(0, px, 1024):
        y1 = min(px, y0 + 1024)
        od = np.zeros((y1 - y0, px, 3), dtype=np.float32)
        od[..., 1] = 0.25
        od[..., 0] = 0.03
        sel = np.flatnonzero((cent[:, 1] >= y0 - ext) & (cent[:, 1] < y1 + ext))
        py = (np.floor(cent[sel, 1])[:, None] + wy[None]).astype(np.int64)
        pxx = (np.floor(cent[sel, 0])[:, None] + wx[None]).astype(np.int64)
        ok = (py >= y0) & (py < y1) & (pxx >= 0) & (pxx < px)
        od[py[ok] - y0, pxx[ok], 0] = 0.55
        od += rng.normal(0, 0.03, size=od.shape).astype(np.float32)
        np.maximum(od, 0, out=od)
        img[y0:y1] = np.clip(
            np.exp(-(od.reshape(-1, 3) @ rfh) * np.float32(np.log(10))).reshape(od.shape) * 255,
            0,
            255,
        ).astype(np.uint8)
    img.flush()
    np.save(work / "he20k_truth.npy", cent)


def run_nuclei(work: Path) -> dict[str, object]:
    from core.io.nuclei import segment_nuclei

    t0 = time.perf_counter()
    image = np.load(work / "he20k.npy", mmap_mode="r")
    nu = segment_nuclei(image, MICRONS_PER_PIXEL)
    truth = np.load(work / "he20k_truth.npy")
    from scipy.spatial import cKDTree

    d, _ = cKDTree(nu.centroid_xy).query(truth) if nu.n else (np.full(len(truth), np.inf), None)
    return {
        "image_px": int(image.shape[0] * image.shape[1]),
        "n_nuclei": nu.n,
        "n_true": len(truth),
        "true_nuclei_with_a_centroid_within_2um": round(
            float(np.mean(d <= 2 / MICRONS_PER_PIXEL)), 4
        ),
        "tiles": nu.n_tiles,
        "seconds": round(time.perf_counter() - t0, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "image_mib_if_whole": round(image.nbytes / 2**20),
    }


def _child(args: list[str]) -> dict[str, object]:
    p = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if p.returncode != 0:
        raise SystemExit(p.stderr[-4000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--rows", type=int, default=3250)
    c.add_argument("--cols", type=int, default=3250)
    c.add_argument("--work", type=Path, required=True)
    c.add_argument("--image-um-per-px", type=float, default=0.55)
    c.add_argument("--no-analysis", action="store_true")
    n = sub.add_parser("nuclei")
    n.add_argument("--px", type=int, default=20000)
    n.add_argument("--work", type=Path, required=True)
    for name in ("_make_capture", "_run_cells", "_make_he", "_run_nuclei"):
        s = sub.add_parser(name)
        s.add_argument("--work", type=Path, required=True)
        s.add_argument("--rows", type=int, default=0)
        s.add_argument("--cols", type=int, default=0)
        s.add_argument("--px", type=int, default=0)
        s.add_argument("--image-um-per-px", type=float, default=0.55)
        s.add_argument("--no-analysis", action="store_true")
    a = ap.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    if a.cmd == "_make_capture":
        print(json.dumps(make_capture(a.work, a.rows, a.cols, a.image_um_per_px)))
    elif a.cmd == "_run_cells":
        print(json.dumps(run_cells(a.work, a.image_um_per_px, not a.no_analysis)))
    elif a.cmd == "_make_he":
        make_he(a.work, a.px)
        print(json.dumps({"ok": True}))
    elif a.cmd == "_run_nuclei":
        print(json.dumps(run_nuclei(a.work)))
    elif a.cmd == "capture":
        t = time.perf_counter()
        made = _child(
            [
                "_make_capture",
                "--work",
                str(a.work),
                "--rows",
                str(a.rows),
                "--cols",
                str(a.cols),
                "--image-um-per-px",
                str(a.image_um_per_px),
            ]
        )
        print(
            json.dumps({"generated": made, "seconds": round(time.perf_counter() - t, 1)}),
            flush=True,
        )
        res = _child(
            ["_run_cells", "--work", str(a.work), "--image-um-per-px", str(a.image_um_per_px)]
            + (["--no-analysis"] if a.no_analysis else [])
        )
        print(json.dumps({"cells": res}), flush=True)
    else:
        _child(["_make_he", "--work", str(a.work), "--px", str(a.px)])
        print(json.dumps({"nuclei": _child(["_run_nuclei", "--work", str(a.work)])}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
