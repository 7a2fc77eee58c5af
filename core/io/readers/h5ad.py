"""AnnData ``.h5ad``: raw counts (``X``, ``layers['counts']`` or ``.raw``), ``obsm['spatial']`` and
the H&E in ``uns['spatial'][lib]['images']``; metadata strings kept for the leakage gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from core.config import Settings
from core.errors import CorruptFile
from core.io.preflight import preflight_h5ad
from core.io.readers.sample import HD_BIN_RE, Sample, detect_layout, is_blank, sha256_path


def collect_strings(obj: object, out: set[str], limit: int = 5000) -> None:
    """Every short string in uns/obs metadata (for the leakage gate).

    Parameters
    ----------
    obj
        Nested dicts, lists, tuples, byte strings and small string arrays.
    out
        Where the strings (3 to 199 characters) are added.
    limit
        Stop once ``out`` holds this many.
    """
    if len(out) >= limit:
        return
    if isinstance(obj, str):
        if 2 < len(obj) < 200:
            out.add(obj)
    elif isinstance(obj, bytes):
        collect_strings(obj.decode(errors="ignore"), out, limit)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            collect_strings(k, out, limit)
            collect_strings(v, out, limit)
    elif isinstance(obj, (list, tuple)):
        for v in obj[:200]:
            collect_strings(v, out, limit)
    elif isinstance(obj, np.ndarray) and obj.dtype.kind in "OUS" and obj.size <= 1000:
        for v in obj.ravel()[:200]:
            collect_strings(v, out, limit)


def read_h5ad(path: Path, settings: Settings) -> Sample:
    """Read an AnnData ``.h5ad`` after :func:`~core.io.preflight.preflight_h5ad`.

    Parameters
    ----------
    path
        The file.
    settings
        Memory budget and image pixel cap.

    Returns
    -------
    Sample
        Raw counts from ``layers['counts']``, ``.raw`` or ``X`` (as preflight found them), the
        H&E from ``uns['spatial']`` (hires, else lowres) and its scale factors.
    """
    import anndata as ad

    report = preflight_h5ad(path, settings.memory_budget_mb, settings.max_image_pixels)
    try:
        a = ad.read_h5ad(path)
    except Exception as e:  # anndata raises many types on damaged files
        raise CorruptFile(
            f"{path.name} could not be read as AnnData: {type(e).__name__}: {e}"
        ) from e
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
    collect_strings(uns, meta)
    for col in a.obs.columns:
        s = a.obs[col]
        if s.dtype == object or str(s.dtype) == "category" or str(s.dtype).startswith("str"):
            for v in s.astype(str).unique()[:50]:
                collect_strings(v, meta)
    meta.update(str(k) for k in uns.get("spatial", {}) if isinstance(uns.get("spatial"), dict))
    xy = np.asarray(a.obsm["spatial"], dtype=np.float64)[:, :2]
    var = a.var.copy()
    symbols = var.index.astype(str)
    b = ad.AnnData(X=X, obs=a.obs.copy(), var=var)
    b.var_names = symbols
    b.var_names_make_unique()
    b.obsm["spatial"] = xy
    sample = Sample(
        adata=b,
        layout="generic",
        source_format="h5ad",
        sha256=sha256_path(path),
        preflight=report,
        metadata_strings=meta,
    )
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
