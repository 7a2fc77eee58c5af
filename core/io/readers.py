"""read_sample(): one entry point for every input a lab sends.

- an AnnData ``.h5ad`` with raw counts (``X``, ``layers['counts']`` or ``.raw``),
  ``obsm['spatial']`` and optionally the H&E in ``uns['spatial'][lib]['images']``;
- a Space Ranger ``outs/`` folder: Visium v1/v2 or Visium HD (``binned_outputs/square_XXXum``);
- a ``.zip`` / ``.tar.gz`` / ``.tar`` of such a folder (extracted safely).

Every path goes through :mod:`core.io.preflight` first.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from core.config import Settings, get_settings
from core.errors import (
    BadCoordinates,
    CorruptFile,
    InputError,
    MissingCoordinates,
    UnsupportedFormat,
)
from core.io.archive import extract_archive, is_archive, unpack_once
from core.io.preflight import PreflightReport, preflight_10x_h5, preflight_h5ad

LAYOUTS = ("visium", "visium_hd", "generic")
HD_BIN_RE = re.compile(r"^s_(\d{3})um_")


@dataclass
class Sample:
    """A loaded sample: raw counts, coordinates, image and what we know of its layout.

    ``adata.X`` holds raw counts as CSR float32; ``adata.var_names`` are gene
    symbols (made unique); ``adata.obsm['spatial']`` is (x, y) in full-resolution
    image pixels.
    """

    adata: Any  # anndata.AnnData
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
    bin_choice: dict[str, Any] | None = None  # Visium HD: bin size picked and per-size estimates


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a folder's files (sorted relative names and contents)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode() + b"\0")
        with open(p, "rb") as fh:
            for buf in iter(lambda: fh.read(1 << 22), b""):
                h.update(buf)
    return h.hexdigest()


def read_sample(path: str | Path, settings: Settings | None = None, bin_size_um: int | None = None,
                unpack_dir: str | Path | None = None) -> Sample:
    """Read and check a sample; raises an :class:`~core.errors.InputError` on bad input.

    An archive's member list is checked before anything is unpacked, and only the files the
    readers open are extracted (:mod:`core.io.archive`). With ``unpack_dir`` the archive is
    unpacked there once and reused by later calls (a job's validation and analysis share it;
    the caller removes it); without, into a temporary folder removed on return.
    """
    settings = settings or get_settings()
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist", code="not_found")
    if path.is_file() and is_archive(path):
        limits = (settings.max_extract_bytes, settings.max_extract_members, settings.max_extract_ratio)
        if unpack_dir is not None:
            inner, digest = unpack_once(path, unpack_dir, *limits)
            return _from_archive(read_sample(inner, settings, bin_size_um), digest)
        digest = sha256_path(path)
        tmp = Path(tempfile.mkdtemp(prefix="mgs-extract-"))
        try:
            inner = extract_archive(path, tmp / "files", *limits)
            return _from_archive(read_sample(inner, settings, bin_size_um), digest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if path.is_dir():
        return _read_spaceranger(path, settings, bin_size_um)
    if path.suffix.lower() in (".h5ad", ".h5", ".hdf5"):
        return _read_h5ad(path, settings)
    raise UnsupportedFormat(
        f"{path.name}: expected an .h5ad file, a Space Ranger outs/ folder, or a .zip/.tar.gz of one"
    )


def _from_archive(s: Sample, digest: str) -> Sample:
    s.sha256 = digest
    s.source_format = f"archive:{s.source_format}"
    return s


# --------------------------------------------------------------------------- h5ad
def _collect_strings(obj: Any, out: set[str], limit: int = 5000) -> None:
    """Every short string in uns/obs metadata (for the leakage gate)."""
    if len(out) >= limit:
        return
    if isinstance(obj, str):
        if 2 < len(obj) < 200:
            out.add(obj)
    elif isinstance(obj, bytes):
        _collect_strings(obj.decode(errors="ignore"), out, limit)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _collect_strings(k, out, limit)
            _collect_strings(v, out, limit)
    elif isinstance(obj, (list, tuple)):
        for v in obj[:200]:
            _collect_strings(v, out, limit)
    elif isinstance(obj, np.ndarray) and obj.dtype.kind in "OUS" and obj.size <= 1000:
        for v in obj.ravel()[:200]:
            _collect_strings(v, out, limit)


def _read_h5ad(path: Path, settings: Settings) -> Sample:
    import anndata as ad

    report = preflight_h5ad(path, settings.memory_budget_mb, settings.max_image_pixels)
    try:
        a = ad.read_h5ad(path)
    except Exception as e:  # anndata raises many types on damaged files
        raise CorruptFile(f"{path.name} could not be read as AnnData: {type(e).__name__}: {e}") from e
    if report.counts_location == "layers/counts":
        X = a.layers["counts"]
    elif report.counts_location == "raw/X":
        X = a.raw.X
        a = ad.AnnData(X=X, obs=a.obs, var=a.raw.var, obsm=a.obsm, uns=a.uns)
    else:
        X = a.X
    if not sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float32)
    else:
        X = X.tocsr()
        if X.dtype != np.float32:  # new values, shared index arrays: no second copy of the indices
            X = sp.csr_matrix((X.data.astype(np.float32), X.indices, X.indptr), shape=X.shape)
    a.X = None  # the input's own matrices (e.g. int32 counts) are not needed any more
    uns = dict(a.uns)
    meta: set[str] = set()
    _collect_strings(uns, meta)
    for col in a.obs.columns:
        s = a.obs[col]
        if s.dtype == object or str(s.dtype) == "category" or str(s.dtype).startswith("str"):
            for v in s.astype(str).unique()[:50]:
                _collect_strings(v, meta)
    meta.update(str(k) for k in uns.get("spatial", {}) if isinstance(uns.get("spatial"), dict))
    xy = np.asarray(a.obsm["spatial"], dtype=np.float64)[:, :2]
    var = a.var.copy()
    symbols = var.index.astype(str)
    b = ad.AnnData(X=X, obs=a.obs.copy(), var=var)
    b.var_names = symbols
    b.var_names_make_unique()
    b.obsm["spatial"] = xy
    sample = Sample(adata=b, layout="generic", source_format="h5ad", sha256=sha256_path(path),
                    preflight=report, metadata_strings=meta)
    spatial = uns.get("spatial")
    if isinstance(spatial, dict) and spatial:
        lib = next(iter(spatial))
        entry = spatial[lib] if isinstance(spatial[lib], dict) else {}
        sf = entry.get("scalefactors", {}) or {}
        imgs = entry.get("images", {}) or {}
        for name in ("hires", "lowres"):
            if name in imgs:
                img = np.asarray(imgs[name])
                if is_blank(img):
                    sample.notes.append(f"the {name} image is blank (a single colour); not used")
                    continue
                sample.image = img
                sample.image_name = name
                sample.image_scalef = float(sf.get(f"tissue_{name}_scalef", 1.0))
                break
        if "spot_diameter_fullres" in sf:
            sample.spot_diameter_px = float(sf["spot_diameter_fullres"])
        if "bin_size_um" in sf:
            sample.bin_size_um = float(sf["bin_size_um"])
    sample.layout = detect_layout(b.obs_names, b.obs, xy)
    if sample.layout == "visium_hd" and sample.bin_size_um is None:
        m = HD_BIN_RE.match(str(b.obs_names[0]))
        sample.bin_size_um = float(m.group(1)) if m else None
    return sample


def is_blank(image: np.ndarray) -> bool:
    """True for an image whose colour channels hold a single value (a placeholder, not an H&E)."""
    im = np.asarray(image)
    if im.size == 0:
        return True
    rgb = im[..., :3] if im.ndim == 3 else im
    step = max(1, rgb.shape[0] // 256)
    sub = rgb[::step, ::step]
    return bool(np.ptp(sub) == 0)


def detect_layout(obs_names: Any, obs: Any, xy: np.ndarray) -> str:
    """``visium`` (hexagonal spots), ``visium_hd`` (square bins) or ``generic``."""
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


# --------------------------------------------------------------------------- Space Ranger
def read_10x_h5(path: Path, settings: Settings) -> tuple[Any, PreflightReport]:
    """A 10x ``filtered_feature_bc_matrix.h5`` as AnnData (barcodes x genes, Gene Expression only)."""
    import anndata as ad
    import pandas as pd

    from core.io.hdf5_safety import open_checked

    report = preflight_10x_h5(path, settings.memory_budget_mb)
    with open_checked(path) as f:
        g = f["matrix"]
        n_feat, n_bc = (int(v) for v in g["shape"][:])
        X = sp.csr_matrix(
            (np.asarray(g["data"][:], dtype=np.float32), np.asarray(g["indices"][:], dtype=np.int32),
             np.asarray(g["indptr"][:], dtype=np.int64)),
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


def _read_positions(spatial: Path) -> Any:
    import pandas as pd

    cols = ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]
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


def _load_png(p: Path, max_pixels: int) -> np.ndarray:
    from PIL import Image

    from core.errors import ImageTooLarge

    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(p) as im:
            if im.width * im.height > max_pixels:
                raise ImageTooLarge(f"{p.name} is {im.width} x {im.height} pixels, over the cap of {max_pixels:,}")
            return np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"{p.name}: {e}") from e
    except OSError as e:
        raise CorruptFile(f"{p.name} is not a readable image: {e}") from e


def _read_spaceranger(path: Path, settings: Settings, bin_size_um: int | None) -> Sample:
    root = path
    layout = "visium"
    bin_um: float | None = None
    hd_root = root / "binned_outputs" if (root / "binned_outputs").is_dir() else None
    if hd_root is None and root.name == "binned_outputs":
        hd_root = root
    choice = None
    if hd_root is not None:
        from core.io.hd import choose_bin_size

        choice = choose_bin_size(hd_root, settings.memory_budget_mb, bin_size_um)
        if choice.source_um != choice.bin_size_um:
            return _read_hd_aggregated(path, hd_root, choice, settings)
        root = hd_root / f"square_{choice.bin_size_um:03d}um"
        layout, bin_um = "visium_hd", float(choice.bin_size_um)
    elif bin_size_um is not None:
        raise InputError(f"--bin-size applies to Visium HD samples only; {path.name} has no binned_outputs/",
                         code="invalid_option")
    h5 = root / "filtered_feature_bc_matrix.h5"
    if not h5.is_file():
        raise UnsupportedFormat(f"{path} is a folder without filtered_feature_bc_matrix.h5 (not Space Ranger outs/)")
    spatial = root / "spatial"
    if not spatial.is_dir():
        raise MissingCoordinates(f"{root} has no spatial/ folder (tissue positions and images)")
    a, report = read_10x_h5(h5, settings)
    pos = _read_positions(spatial)
    common = a.obs_names.intersection(pos.index)
    if len(common) == 0:
        raise BadCoordinates("no barcode of the matrix appears in the tissue positions")
    dropped = a.n_obs - len(common)
    a = a[common].copy()
    pos = pos.loc[common]
    xy = np.stack([pos["pxl_col_in_fullres"].to_numpy(np.float64),
                   pos["pxl_row_in_fullres"].to_numpy(np.float64)], 1)
    if not np.all(np.isfinite(xy)):
        raise BadCoordinates("tissue positions hold NaN or infinite coordinates")
    a.obsm["spatial"] = xy
    for c in ("in_tissue", "array_row", "array_col"):
        a.obs[c] = pos[c].to_numpy()
    sample = Sample(adata=a, layout=layout, source_format="spaceranger",
                    sha256=sha256_path(path if path.is_dir() else root), preflight=report,
                    bin_size_um=bin_um)
    if choice is not None:
        sample.bin_choice = choice.as_dict()
        sample.notes.append(choice.reason)
    if dropped:
        sample.notes.append(f"{dropped} barcodes without a tissue position were dropped")
    _attach_image(sample, spatial, settings)
    if layout == "visium":
        sample.layout = detect_layout(a.obs_names, a.obs, xy)
        if sample.layout == "generic":
            sample.layout = "visium"  # Space Ranger without HD bins is Visium by construction
    return sample


def _attach_image(sample: Sample, spatial: Path, settings: Settings) -> dict[str, Any]:
    """H&E (hires, else lowres) and spot diameter from a ``spatial/`` folder; returns the scalefactors."""
    from core.io.hd import read_scalefactors

    sf = read_scalefactors(spatial)
    for name in ("hires", "lowres"):
        p = spatial / f"tissue_{name}_image.png"
        if p.is_file():
            img = _load_png(p, settings.max_image_pixels)
            if is_blank(img):
                sample.notes.append(f"tissue_{name}_image.png is blank (a single colour); not used")
                continue
            sample.image = img
            sample.image_name = name
            sample.image_scalef = float(sf.get(f"tissue_{name}_scalef", 1.0))
            break
    if "spot_diameter_fullres" in sf:
        sample.spot_diameter_px = float(sf["spot_diameter_fullres"])
    return sf


def _read_hd_aggregated(path: Path, hd_root: Path, choice: Any, settings: Settings) -> Sample:
    """Visium HD bins summed from a finer bin folder, streamed (see :func:`core.io.hd.aggregate_bins`)."""
    import anndata as ad
    import pandas as pd

    from core.io.hd import aggregate_bins

    fine_dir = hd_root / f"square_{choice.source_um:03d}um"
    # validate the fine matrix (links, shape, indptr, indices, integer counts) without a budget:
    # it is never loaded whole; the budget applies to the aggregated bins (checked in choose_bin_size)
    fine = preflight_10x_h5(fine_dir / "filtered_feature_bc_matrix.h5", float("inf"))
    agg = aggregate_bins(fine_dir, choice.bin_size_um)
    var = pd.DataFrame({"gene_ids": agg.gene_ids}, index=pd.Index(agg.gene_names))
    obs = pd.DataFrame({"in_tissue": np.ones(len(agg.barcodes), dtype=np.int64),
                        "array_row": agg.array_row, "array_col": agg.array_col,
                        "n_fine_bins": agg.n_children}, index=pd.Index(agg.barcodes))
    a = ad.AnnData(X=agg.X, obs=obs, var=var)
    if agg.feature_types is not None:
        keep = np.array([t == "Gene Expression" for t in agg.feature_types])
        if keep.any() and not keep.all():
            a = a[:, keep].copy()
    a.var_names_make_unique()
    a.obsm["spatial"] = np.stack([agg.pxl_col, agg.pxl_row], 1)
    opt = next(o for o in choice.options if o.bin_size_um == choice.bin_size_um)
    report = PreflightReport(
        path=str(fine_dir / "filtered_feature_bc_matrix.h5"), kind="10x_h5", n_obs=a.n_obs, n_vars=a.n_vars,
        nnz=int(a.X.nnz), counts_location="matrix", estimated_memory_mb=round(opt.estimated_memory_mb, 1),
        warnings=[f"aggregated from {fine.n_obs:,} {choice.source_um} um bins ({fine.nnz:,} non-zeros), "
                  f"streamed from the h5"],
    )
    sample = Sample(adata=a, layout="visium_hd", source_format="spaceranger",
                    sha256=sha256_path(path), preflight=report, bin_size_um=float(choice.bin_size_um))
    sample.bin_choice = choice.as_dict()
    sample.notes.append(choice.reason)
    if agg.n_fine_unplaced:
        sample.notes.append(f"{agg.n_fine_unplaced} {choice.source_um} um barcodes without a tissue position "
                            f"were dropped")
    sf = _attach_image(sample, fine_dir / "spatial", settings)
    factor = choice.bin_size_um // choice.source_um
    if sf.get("microns_per_pixel"):
        sample.spot_diameter_px = float(choice.bin_size_um) / float(sf["microns_per_pixel"])
    elif sample.spot_diameter_px:
        sample.spot_diameter_px *= factor
    return sample
