"""Write a small, format-exact Space Ranger Visium HD folder from known counts (tests, benchmarks).

Layout written (as Space Ranger 3 does)::

    OUT/binned_outputs/square_002um/filtered_feature_bc_matrix.h5
    OUT/binned_outputs/square_002um/spatial/tissue_positions.parquet
    OUT/binned_outputs/square_002um/spatial/scalefactors_json.json
    OUT/binned_outputs/square_002um/spatial/tissue_hires_image.png

The h5 is the 10x feature-barcode matrix (CSC of features x barcodes, int32
data, int64 indices/indptr, fixed-width byte barcodes, ``features`` group);
the parquet lists every bin of the grid (``in_tissue`` 0 outside the tissue),
in row groups.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from core.arrays import unique_int_inverse

MICRONS_PER_PIXEL = 0.2737


def hd_barcode(bin_um: int, row: int, col: int) -> str:
    return f"s_{bin_um:03d}um_{row:05d}_{col:05d}-1"


def write_10x_h5(path: Path, X: sp.csr_matrix, barcodes: list[str], genes: list[str],
                 gene_ids: list[str] | None = None, chunk: int = 1 << 20) -> None:
    """A 10x ``filtered_feature_bc_matrix.h5`` from barcodes x genes counts (CSR)."""
    import h5py

    X = sp.csr_matrix(X)
    X.sum_duplicates()
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=np.array(barcodes, dtype="S"))
        g.create_dataset("data", data=X.data.astype(np.int32), chunks=(min(chunk, max(X.nnz, 1)),))
        g.create_dataset("indices", data=X.indices.astype(np.int64), chunks=(min(chunk, max(X.nnz, 1)),))
        g.create_dataset("indptr", data=X.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array([X.shape[1], X.shape[0]], dtype=np.int32))
        ft = g.create_group("features")
        ft.create_dataset("name", data=np.array(genes, dtype="S"))
        ft.create_dataset("id", data=np.array(gene_ids or [f"ENSG{i:011d}" for i in range(len(genes))], dtype="S"))
        ft.create_dataset("feature_type", data=np.array(["Gene Expression"] * len(genes), dtype="S"))
        ft.create_dataset("genome", data=np.array(["GRCh38"] * len(genes), dtype="S"))
        ft.create_dataset("_all_tag_keys", data=np.array([b"genome"]))


def write_hd_bins(bin_dir: Path, X: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, genes: list[str],
                  bin_um: int, grid_shape: tuple[int, int], image: np.ndarray | None = None,
                  row_group_size: int = 4096, shuffle_positions_seed: int | None = 0) -> None:
    """One ``square_XXXum`` folder: matrix rows are in-tissue bins at (rows, cols) of the grid.

    ``grid_shape`` is (n_rows, n_cols) of the whole capture grid; every grid bin gets a parquet
    row (in_tissue 1 for the matrix's bins). ``shuffle_positions_seed`` shuffles the parquet rows
    so that readers cannot rely on its order matching the matrix's.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    px_per_bin = bin_um / MICRONS_PER_PIXEL
    write_10x_h5(bin_dir / "filtered_feature_bc_matrix.h5", X,
                 [hd_barcode(bin_um, r, c) for r, c in zip(rows, cols, strict=True)], genes)
    H, W = grid_shape
    gr, gc = np.divmod(np.arange(H * W, dtype=np.int64), W)
    in_t = np.zeros(H * W, dtype=np.int32)
    in_t[rows * W + cols] = 1
    order = np.arange(H * W)
    if shuffle_positions_seed is not None:
        order = np.random.default_rng(shuffle_positions_seed).permutation(H * W)
    gr, gc, in_t = gr[order], gc[order], in_t[order]
    table = pa.table({
        "barcode": [hd_barcode(bin_um, r, c) for r, c in zip(gr, gc, strict=True)],
        "in_tissue": in_t,
        "array_row": gr.astype(np.int32),
        "array_col": gc.astype(np.int32),
        "pxl_row_in_fullres": (gr + 0.5) * px_per_bin,
        "pxl_col_in_fullres": (gc + 0.5) * px_per_bin,
    })
    spatial = bin_dir / "spatial"
    spatial.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, spatial / "tissue_positions.parquet", row_group_size=row_group_size)
    full_h, full_w = H * px_per_bin, W * px_per_bin
    hires_scalef = 0.0
    if image is not None:
        from PIL import Image

        hires_scalef = image.shape[1] / full_w
        Image.fromarray(image).save(spatial / "tissue_hires_image.png")
    sf = {
        "spot_diameter_fullres": px_per_bin,
        "bin_size_um": float(bin_um),
        "microns_per_pixel": MICRONS_PER_PIXEL,
        "tissue_hires_scalef": hires_scalef or 1.0,
        "tissue_lowres_scalef": (hires_scalef or 1.0) / 5,
        "fiducial_diameter_fullres": px_per_bin * 10,
        "regist_target_img_scalef": hires_scalef or 1.0,
    }
    (spatial / "scalefactors_json.json").write_text(json.dumps(sf, indent=2))
    del full_h


def he_like_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 235, dtype=np.float32)
    img[..., 0] -= 40
    img += rng.normal(0, 6, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_fake_hd(out: Path, n_rows: int = 64, n_cols: int = 64, n_genes: int = 60, seed: int = 0,
                 tissue_frac: float = 0.85, mean_umis: float = 6.0,
                 gene_names: list[str] | None = None) -> tuple[Path, sp.csr_matrix, np.ndarray, np.ndarray]:
    """A 2 um Space Ranger HD folder with random Poisson counts on a disc of tissue.

    Returns (outs folder, the 2 um counts CSR, array_row, array_col) so that tests can compare
    with a dense reference.
    """
    rng = np.random.default_rng(seed)
    r, c = np.divmod(np.arange(n_rows * n_cols), n_cols)
    cy, cx = (n_rows - 1) / 2, (n_cols - 1) / 2
    rad = np.sqrt(tissue_frac * n_rows * n_cols / np.pi)
    inside = (r - cy) ** 2 + (c - cx) ** 2 <= rad**2
    r, c = r[inside], c[inside]
    lam = rng.gamma(0.3, mean_umis / (0.3 * n_genes), size=(len(r), n_genes))
    dense = rng.poisson(lam).astype(np.int32)
    X = sp.csr_matrix(dense)
    genes = gene_names or [f"GENE{i:04d}" for i in range(n_genes)]
    img = he_like_image(max(32, n_rows * 2), max(32, n_cols * 2), seed)
    write_hd_bins(out / "binned_outputs" / "square_002um", X, r, c, genes, 2, (n_rows, n_cols), image=img)
    return out, X, r, c


def split_to_fine(X: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, factor: int,
                  seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Spread every UMI of each coarse bin over one of its ``factor`` x ``factor`` children at random.

    Summing the children again gives ``X`` exactly. Returns (fine counts, fine rows, fine cols),
    fine bins in row-major order, only those holding a UMI.
    """
    rng = np.random.default_rng(seed)
    coo = sp.coo_matrix(X)
    v = coo.data.astype(np.int64)
    bin_i = np.repeat(coo.row.astype(np.int64), v)
    gene = np.repeat(coo.col.astype(np.int32), v)
    child = rng.integers(0, factor * factor, size=len(bin_i))
    fr = np.asarray(rows, dtype=np.int64)[bin_i] * factor + child // factor
    fc = np.asarray(cols, dtype=np.int64)[bin_i] * factor + child % factor
    del bin_i, child
    key = fr * (1 << 24) + fc
    del fr, fc
    ukey, fine = unique_int_inverse(key)
    del key
    F = sp.csr_matrix((np.ones(len(fine), dtype=np.int32), (fine, gene)), shape=(len(ukey), X.shape[1]))
    F.sum_duplicates()
    return F, ukey >> 24, ukey & ((1 << 24) - 1)


def hd_folder_from_h5ad(h5ad: Path, out: Path, factor: int = 4, seed: int = 0, band_rows: int = 64) -> Path:
    """A 2 um Space Ranger HD folder whose 8 um aggregate is an 8 um ``.h5ad`` (e.g. from synth.py).

    Works one band of ``band_rows`` coarse rows at a time and appends to the h5, so that a
    650,000-bin sample becomes ~10 million 2 um bins without holding them all.
    """
    import anndata as ad
    import h5py
    import pyarrow as pa
    import pyarrow.parquet as pq

    a = ad.read_h5ad(h5ad)
    X = sp.csr_matrix(a.X)
    rows = np.asarray(a.obs["array_row"], dtype=np.int64)
    cols = np.asarray(a.obs["array_col"], dtype=np.int64)
    genes = [str(g) for g in a.var_names]
    coarse_um = 8
    fine_um = coarse_um // factor
    bin_dir = out / "binned_outputs" / f"square_{fine_um:03d}um"
    spatial = bin_dir / "spatial"
    spatial.mkdir(parents=True, exist_ok=True)
    px_fine = fine_um / MICRONS_PER_PIXEL
    order = np.lexsort((cols, rows))
    writer = None
    n_bc = 0
    nnz = 0
    with h5py.File(bin_dir / "filtered_feature_bc_matrix.h5", "w") as f:
        g = f.create_group("matrix")
        ds_bc = g.create_dataset("barcodes", shape=(0,), maxshape=(None,), dtype="S22", chunks=(1 << 16,))
        ds_d = g.create_dataset("data", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(1 << 20,))
        ds_i = g.create_dataset("indices", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1 << 20,))
        ds_p = g.create_dataset("indptr", shape=(1,), maxshape=(None,), dtype=np.int64, chunks=(1 << 16,))
        ds_p[0] = 0
        r_sorted = rows[order]
        starts = np.searchsorted(r_sorted, np.arange(r_sorted.min(), r_sorted.max() + band_rows, band_rows))
        for s, e in itertools.pairwise(starts):
            if e <= s:
                continue
            idx = order[s:e]
            F, fr, fc = split_to_fine(X[idx], rows[idx], cols[idx], factor, seed=seed + int(s))
            k = F.shape[0]
            bcs = np.array([hd_barcode(fine_um, int(r), int(c)) for r, c in zip(fr, fc, strict=True)], dtype="S22")
            ds_bc.resize((n_bc + k,))
            ds_bc[n_bc:] = bcs
            ds_d.resize((nnz + F.nnz,))
            ds_d[nnz:] = F.data
            ds_i.resize((nnz + F.nnz,))
            ds_i[nnz:] = F.indices
            ds_p.resize((n_bc + k + 1,))
            ds_p[n_bc + 1:] = F.indptr[1:] + nnz
            n_bc += k
            nnz += F.nnz
            t = pa.table({
                "barcode": bcs.astype(str), "in_tissue": np.ones(k, dtype=np.int32),
                "array_row": fr.astype(np.int32), "array_col": fc.astype(np.int32),
                "pxl_row_in_fullres": (fr + 0.5) * px_fine, "pxl_col_in_fullres": (fc + 0.5) * px_fine,
            })
            if writer is None:
                writer = pq.ParquetWriter(spatial / "tissue_positions.parquet", t.schema)
            writer.write_table(t, row_group_size=1 << 20)
        g.create_dataset("shape", data=np.array([len(genes), n_bc], dtype=np.int32))
        ft = g.create_group("features")
        ft.create_dataset("name", data=np.array(genes, dtype="S"))
        ft.create_dataset("id", data=np.array([f"ENSG{i:011d}" for i in range(len(genes))], dtype="S"))
        ft.create_dataset("feature_type", data=np.array(["Gene Expression"] * len(genes), dtype="S"))
        ft.create_dataset("genome", data=np.array(["GRCh38"] * len(genes), dtype="S"))
    if writer is not None:
        writer.close()
    sf = {"spot_diameter_fullres": px_fine, "bin_size_um": float(fine_um), "microns_per_pixel": MICRONS_PER_PIXEL,
          "tissue_hires_scalef": 1.0}
    spatial_uns = a.uns.get("spatial", {})
    if isinstance(spatial_uns, dict) and spatial_uns:
        entry = next(iter(spatial_uns.values()))
        img = entry.get("images", {}).get("hires")
        if img is not None:
            from PIL import Image

            Image.fromarray(np.asarray(img, dtype=np.uint8)).save(spatial / "tissue_hires_image.png")
            sf["tissue_hires_scalef"] = float(entry.get("scalefactors", {}).get("tissue_hires_scalef", 1.0))
    (spatial / "scalefactors_json.json").write_text(json.dumps(sf, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m core.io.hd_fixture SAMPLE_8UM.h5ad OUT``: a 2 um Space Ranger HD folder."""
    import argparse

    p = argparse.ArgumentParser(description="2 um Space Ranger HD folder from an 8 um .h5ad")
    p.add_argument("h5ad", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    hd_folder_from_h5ad(a.h5ad, a.out, seed=a.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
