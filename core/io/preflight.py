"""Checks made with h5py before anything is loaded.

A hostile or broken file must be refused here, cheaply and precisely: nothing
that reads outside the file (external links, virtual datasets, external storage,
plugin filters: :mod:`core.io.hdf5_safety`), declared shapes that agree with the data
actually stored, monotone ``indptr``, indices within range, finite spatial
coordinates, images within a pixel cap, and a memory estimate under budget.
Nothing here reads more than O(n_obs) values plus bounded chunks of the matrix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import (
    BadCoordinates,
    CorruptFile,
    ImageTooLarge,
    InputError,
    MissingCoordinates,
    MissingCounts,
    OverMemoryBudget,
    UnsupportedFormat,
)
from core.io.hdf5_safety import check_hdf5_tree, harden_hdf5
from core.jsonable import JSONObject

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_CHUNK = 4_000_000  # values read per chunk when scanning indices / data


@dataclass
class MatrixInfo:
    """What preflight learned about one count matrix."""

    location: str  # "X", "layers/counts", "raw/X", "matrix" (10x)
    n_obs: int
    n_vars: int
    nnz: int
    dtype: str
    sparse: bool
    integer_valued: bool


@dataclass
class PreflightReport:
    """Result of :func:`preflight_h5ad` / :func:`preflight_10x_h5`."""

    path: str
    kind: str  # "h5ad" | "10x_h5"
    n_obs: int
    n_vars: int
    nnz: int
    counts_location: str
    estimated_memory_mb: float
    images: dict[str, list[int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> JSONObject:
        return asdict(self)


def is_hdf5(path: str | Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == HDF5_MAGIC


def estimate_memory_mb(n_obs: int, n_vars: int, nnz: int) -> float:
    """Peak memory the analysis needs, in MiB.

    Counts (CSR float32 + int32 indices, 8 bytes per non-zero) are held once; the normalised
    values (4 bytes per non-zero) exist only while the highly variable genes are chosen and
    subset, and PCA and Moran's I take float64 copies of the HVG matrix; plus per-spot dense
    work (50 PCs, 15-NN graph, neighbour graph, scores) and per-gene statistics. Calibrated on
    synthetic samples (bench/): at 650,000 HD bins x 18,000 genes (129 M non-zeros) it says
    4.1 GB against 2.6-2.7 GB measured; dense Visium-like samples (a third of all values
    non-zero) come closer to it. Deliberately conservative.
    """
    sparse_bytes = nnz * 8 * 2.2
    per_obs = n_obs * (50 * 4 * 3 + 15 * 12 * 4 + 40 * 8 + 1024)
    per_var = n_vars * 200
    return (sparse_bytes + per_obs + per_var) / 2**20 + 250.0


def _open(path: Path) -> Any:
    import h5py

    if not path.is_file():
        raise UnsupportedFormat(f"{path.name}: no such file")
    if not is_hdf5(path):
        raise UnsupportedFormat(
            f"{path.name} is not an HDF5 file (AnnData .h5ad or 10x .h5 expected)"
        )
    harden_hdf5()
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise CorruptFile(
            f"{path.name} cannot be opened as HDF5 (truncated or damaged): {e}"
        ) from e


def _check_links(f: Any) -> None:
    """Refuse everything that makes HDF5 read outside the file (see :mod:`core.io.hdf5_safety`)."""
    check_hdf5_tree(f)


def _attr_str(obj: Any, key: str) -> str | None:
    v = obj.attrs.get(key)
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.ravel()[0]
        return v.decode() if isinstance(v, bytes) else str(v)
    return str(v)


def _scan_sparse(g: Any, loc: str, shape: tuple[int, int], fmt: str) -> MatrixInfo:
    """Validate a CSR/CSC group without loading it whole."""
    for k in ("data", "indices", "indptr"):
        if k not in g:
            raise CorruptFile(f"{loc} is a sparse matrix without '{k}'")
    data, indices, indptr = g["data"], g["indices"], g["indptr"]
    n_major, n_minor = (shape[0], shape[1]) if fmt == "csr" else (shape[1], shape[0])
    if indptr.ndim != 1 or indptr.shape[0] != n_major + 1:
        raise CorruptFile(
            f"{loc}: declared shape {shape[0]} x {shape[1]} needs indptr of length {n_major + 1}, "
            f"file holds {indptr.shape[0]}"
        )
    nnz = int(data.shape[0])
    if indices.shape[0] != nnz:
        raise CorruptFile(f"{loc}: {nnz} values but {indices.shape[0]} indices")
    ip = np.asarray(indptr[:], dtype=np.int64)
    if ip[0] != 0 or ip[-1] != nnz:
        raise CorruptFile(f"{loc}: indptr runs {ip[0]}..{ip[-1]}, expected 0..{nnz}")
    if np.any(np.diff(ip) < 0):
        raise CorruptFile(f"{loc}: indptr is not monotone")
    integer = True
    for s in range(0, nnz, _CHUNK):
        idx = np.asarray(indices[s : s + _CHUNK])
        if idx.size and (idx.min() < 0 or idx.max() >= n_minor):
            raise CorruptFile(f"{loc}: indices out of range [0, {n_minor})")
    if nnz:
        sample = np.asarray(data[: min(nnz, _CHUNK)], dtype=np.float64)
        if not np.all(np.isfinite(sample)):
            raise CorruptFile(f"{loc}: values are not finite")
        integer = bool(np.all(sample >= 0) and np.all(sample == np.round(sample)))
    return MatrixInfo(loc, shape[0], shape[1], nnz, str(data.dtype), True, integer)


def _matrix_info(f: Any, loc: str) -> MatrixInfo | None:
    import h5py

    if loc not in f:
        return None
    obj = f[loc]
    if isinstance(obj, h5py.Dataset):
        if obj.ndim != 2:
            raise CorruptFile(f"{loc} is not a 2-D matrix (shape {obj.shape})")
        n_obs, n_vars = int(obj.shape[0]), int(obj.shape[1])
        integer = True
        if n_obs and n_vars:
            rows = min(n_obs, max(1, 2_000_000 // max(n_vars, 1)))
            sample = np.asarray(obj[:rows], dtype=np.float64)
            if not np.all(np.isfinite(sample)):
                raise CorruptFile(f"{loc}: values are not finite")
            integer = bool(np.all(sample >= 0) and np.all(sample == np.round(sample)))
        return MatrixInfo(loc, n_obs, n_vars, n_obs * n_vars, str(obj.dtype), False, integer)
    enc = _attr_str(obj, "encoding-type") or _attr_str(obj, "h5sparse_format")
    shape_attr = obj.attrs.get("shape", obj.attrs.get("h5sparse_shape"))
    if enc is None or shape_attr is None:
        raise CorruptFile(f"{loc} is a group but not an AnnData sparse matrix")
    fmt = "csr" if "csr" in enc else "csc" if "csc" in enc else None
    if fmt is None:
        raise CorruptFile(f"{loc}: unknown sparse encoding {enc!r}")
    shape = (int(shape_attr[0]), int(shape_attr[1]))
    return _scan_sparse(obj, loc, shape, fmt)


def _check_budget(n_obs: int, n_vars: int, nnz: int, budget_mb: float, what: str) -> float:
    est = estimate_memory_mb(n_obs, n_vars, nnz)
    if est > budget_mb:
        raise OverMemoryBudget(
            f"{what}: {n_obs:,} spots x {n_vars:,} genes ({nnz:,} non-zeros) needs about "
            f"{est:,.0f} MiB, over the memory budget of {budget_mb:,.0f} MiB; raise "
            f"MGS_MEMORY_BUDGET_MB (and MGS_ANALYSIS_MEMORY_MB on an analysis worker), or for Visium HD "
            f"analyse a coarser bin size"
        )
    return est


def _check_image(name: str, shape: tuple[int, ...], max_pixels: int) -> None:
    if len(shape) not in (2, 3):
        raise CorruptFile(f"image {name} has {len(shape)} dimensions")
    if int(shape[0]) * int(shape[1]) > max_pixels:
        raise ImageTooLarge(
            f"image {name} is {shape[1]} x {shape[0]} pixels, over the cap of {max_pixels:,} "
            f"pixels (MGS_MAX_IMAGE_PIXELS)"
        )


def _guard(fn: Any) -> Any:
    """Turn any low-level failure while reading a damaged file into ``CorruptFile``.

    h5py raises OSError, KeyError, ValueError, TypeError... on damaged blocks or odd
    structures; a user must see one precise error, and a worker must not crash.
    """
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError:
            raise
        except (
            OSError,
            KeyError,
            ValueError,
            TypeError,
            IndexError,
            AttributeError,
            RuntimeError,
            OverflowError,
            MemoryError,
            UnicodeDecodeError,
        ) as e:
            name = Path(args[0]).name if args else "file"
            raise CorruptFile(
                f"{name} is damaged or not a valid file of its kind: "
                f"{type(e).__name__}: {str(e)[:200]}"
            ) from e

    return wrapper


@_guard
def preflight_h5ad(path: str | Path, budget_mb: float, max_image_pixels: int) -> PreflightReport:
    """Check an AnnData ``.h5ad`` before it is loaded.

    Parameters
    ----------
    path
        The file.
    budget_mb
        Memory budget: a sample whose analysis would need more is refused.
    max_image_pixels
        Largest H&E image accepted.

    Returns
    -------
    PreflightReport

    Raises
    ------
    core.errors.InputError
        A subclass naming what is wrong.
    """
    import h5py

    path = Path(path)
    with _open(path) as f:
        _check_links(f)
        enc = _attr_str(f, "encoding-type")
        if enc is not None and enc != "anndata":
            raise UnsupportedFormat(f"{path.name} is HDF5 but not AnnData (encoding-type {enc!r})")
        if "X" not in f or "obs" not in f or "var" not in f:
            if "matrix" in f:
                raise UnsupportedFormat(
                    f"{path.name} is a 10x feature-barcode matrix; pass the Space Ranger outs/ folder"
                )
            raise UnsupportedFormat(f"{path.name} is HDF5 but not AnnData (no X/obs/var)")
        x = _matrix_info(f, "X")
        assert x is not None
        candidates = [x, _matrix_info(f, "layers/counts"), _matrix_info(f, "raw/X")]
        counts = next((m for m in candidates[1:] if m is not None and m.integer_valued), None)
        if x.integer_valued:
            counts = x
        if counts is None:
            raise MissingCounts(
                f"{path.name} holds log-normalised (non-integer) values in X and no raw counts in "
                f"layers['counts'] or .raw; export the sample with its raw counts"
            )
        if counts.location == "raw/X" and counts.n_obs != x.n_obs:
            raise CorruptFile("raw/X has a different number of spots than X")
        n_obs, n_vars = counts.n_obs, counts.n_vars
        if n_obs == 0 or n_vars == 0:
            raise CorruptFile(f"{path.name} holds an empty matrix ({n_obs} x {n_vars})")
        if "obsm" not in f or "spatial" not in f["obsm"]:
            raise MissingCoordinates(f"{path.name} has no obsm['spatial'] (spot coordinates)")
        sp = f["obsm"]["spatial"]
        if (
            not isinstance(sp, h5py.Dataset)
            or sp.ndim != 2
            or sp.shape[0] != n_obs
            or sp.shape[1] < 2
        ):
            raise BadCoordinates(
                f"obsm['spatial'] must be ({n_obs}, 2); found {getattr(sp, 'shape', 'a group')}"
            )
        xy = np.asarray(sp[:, :2], dtype=np.float64)
        if not np.all(np.isfinite(xy)):
            raise BadCoordinates(
                f"obsm['spatial'] holds {int((~np.isfinite(xy)).any(1).sum())} spots with NaN or infinite coordinates"
            )
        images: dict[str, list[int]] = {}
        if "uns" in f and "spatial" in f["uns"] and isinstance(f["uns"]["spatial"], h5py.Group):
            for lib, g in f["uns"]["spatial"].items():
                if isinstance(g, h5py.Group) and "images" in g:
                    for name, ds in g["images"].items():
                        if isinstance(ds, h5py.Dataset):
                            _check_image(f"{lib}/{name}", ds.shape, max_image_pixels)
                            images[name] = [int(s) for s in ds.shape]
        est = _check_budget(n_obs, n_vars, counts.nnz, budget_mb, path.name)
        return PreflightReport(
            str(path), "h5ad", n_obs, n_vars, counts.nnz, counts.location, est, images
        )


@_guard
def preflight_10x_h5(path: str | Path, budget_mb: float) -> PreflightReport:
    """Check a 10x ``filtered_feature_bc_matrix.h5`` (features x barcodes, CSC).

    Parameters
    ----------
    path
        The file.
    budget_mb
        Memory budget (``inf`` for a matrix streamed, never loaded whole).

    Returns
    -------
    PreflightReport

    Raises
    ------
    core.errors.InputError
        A subclass naming what is wrong.
    """
    path = Path(path)
    with _open(path) as f:
        _check_links(f)
        if "matrix" not in f:
            raise UnsupportedFormat(
                f"{path.name} is not a 10x feature-barcode matrix (no 'matrix' group)"
            )
        g = f["matrix"]
        if "shape" not in g:
            raise CorruptFile(f"{path.name}: matrix has no shape")
        shp = np.asarray(g["shape"][:], dtype=np.int64)
        if shp.shape != (2,) or np.any(shp < 0):
            raise CorruptFile(f"{path.name}: bad matrix shape {shp.tolist()}")
        n_feat, n_bc = int(shp[0]), int(shp[1])
        # stored as CSC of (features x barcodes) == CSR of (barcodes x features)
        info = _scan_sparse(g, "matrix", (n_bc, n_feat), "csr")
        if not info.integer_valued:
            raise MissingCounts(f"{path.name} does not hold integer UMI counts")
        if n_bc == 0 or n_feat == 0:
            raise CorruptFile(f"{path.name} holds an empty matrix")
        for k in ("barcodes", "features"):
            if k not in g:
                raise CorruptFile(f"{path.name}: matrix has no '{k}'")
        est = _check_budget(n_bc, n_feat, info.nnz, budget_mb, path.name)
        return PreflightReport(str(path), "10x_h5", n_bc, n_feat, info.nnz, "matrix", est)
