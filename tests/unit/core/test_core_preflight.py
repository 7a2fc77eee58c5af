"""Preflight refuses broken and hostile files precisely, before anything is loaded."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

from core import errors
from core.config import Settings
from core.io.preflight import preflight_h5ad
from core.io.readers import read_sample
from core.synth import make_sample

BUDGET = 8192
MAXPIX = 50_000_000


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("pf") / "good.h5ad"
    make_sample(n_spots=200, n_genes=400, seed=2).adata.write_h5ad(p)  # type: ignore[attr-defined]
    return p


def _copy(good: Path, tmp: Path) -> Path:
    dst = tmp / "x.h5ad"
    dst.write_bytes(good.read_bytes())
    return dst


def test_good_file_passes(good: Path) -> None:
    rep = preflight_h5ad(good, BUDGET, MAXPIX)
    assert rep.n_obs == 200 and rep.n_vars == 400 and rep.counts_location == "X"
    assert rep.estimated_memory_mb > 0


def test_not_hdf5(tmp_path: Path) -> None:
    p = tmp_path / "a.h5ad"
    p.write_text("hello")
    with pytest.raises(errors.UnsupportedFormat, match="not an HDF5"):
        preflight_h5ad(p, BUDGET, MAXPIX)


def test_truncated(good: Path, tmp_path: Path) -> None:
    p = tmp_path / "t.h5ad"
    p.write_bytes(good.read_bytes()[:4096])
    with pytest.raises(errors.CorruptFile):
        preflight_h5ad(p, BUDGET, MAXPIX)


def test_hdf5_not_anndata(tmp_path: Path) -> None:
    p = tmp_path / "n.h5ad"
    with h5py.File(p, "w") as f:
        f["foo"] = np.arange(3)
    with pytest.raises(errors.UnsupportedFormat, match="not AnnData"):
        preflight_h5ad(p, BUDGET, MAXPIX)


def test_external_link_refused(good: Path, tmp_path: Path) -> None:
    p = _copy(good, tmp_path)
    with h5py.File(p, "a") as f:
        f["uns/evil"] = h5py.ExternalLink("/etc/passwd", "/")
    with pytest.raises(errors.UnsafeFile, match="external link"):
        preflight_h5ad(p, BUDGET, MAXPIX)


def test_virtual_dataset_refused(good: Path, tmp_path: Path) -> None:
    p = _copy(good, tmp_path)
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f["d"] = np.arange(10)
    with h5py.File(p, "a") as f:
        layout = h5py.VirtualLayout(shape=(10,), dtype="i8")
        layout[:] = h5py.VirtualSource(str(src), "d", shape=(10,))
        f["uns"].create_virtual_dataset("virt", layout)
    with pytest.raises(errors.UnsafeFile, match="virtual dataset"):
        preflight_h5ad(p, BUDGET, MAXPIX)


def test_declared_shape_backed_by_tiny_file(good: Path, tmp_path: Path) -> None:
    p = _copy(good, tmp_path)
    with h5py.File(p, "a") as f:
        f["X"].attrs["shape"] = np.array([1_000_000_000, 1_000_000])
    with pytest.raises(errors.CorruptFile, match="indptr of length"):
        preflight_h5ad(p, BUDGET, MAXPIX)


def test_indptr_not_monotone(good: Path, tmp_path: Path) -> None:
    p = _copy(good, tmp_path)
    with h5py.File(p, "a") as f:
        ip = f["X/indptr"][:]
        ip[5], ip[6] = ip[6], ip[5] - 1
        f["X/indptr"][:] = ip
    with pytest.raises(errors.CorruptFile, match="monotone"):
        preflight_h5ad(p, BUDGET, MAXPIX)


def test_indices_out_of_range(good: Path, tmp_path: Path) -> None:
    p = _copy(good, tmp_path)
    with h5py.File(p, "a") as f:
        idx = f["X/indices"][:]
        idx[0] = 10_000
        f["X/indices"][:] = idx
    with pytest.raises(errors.CorruptFile, match="out of range"):
        preflight_h5ad(p, BUDGET, MAXPIX)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_coordinates(good: Path, tmp_path: Path, bad: float) -> None:
    p = _copy(good, tmp_path)
    with h5py.File(p, "a") as f:
        xy = f["obsm/spatial"][:]
        xy[3, 0] = bad
        f["obsm/spatial"][:] = xy
    with pytest.raises(errors.BadCoordinates, match="NaN or infinite"):
        preflight_h5ad(p, BUDGET, MAXPIX)


def test_no_spatial(good: Path, tmp_path: Path) -> None:
    p = _copy(good, tmp_path)
    with h5py.File(p, "a") as f:
        del f["obsm/spatial"]
    with pytest.raises(errors.MissingCoordinates):
        preflight_h5ad(p, BUDGET, MAXPIX)


def test_huge_image_refused_without_reading_it(good: Path, tmp_path: Path) -> None:
    p = _copy(good, tmp_path)
    with h5py.File(p, "a") as f:
        g = f["uns/spatial"][next(iter(f["uns/spatial"]))]["images"]
        g.create_dataset(
            "huge", shape=(30_000, 30_000, 3), dtype="u1", chunks=(256, 256, 3)
        )  # never written
    with pytest.raises(errors.ImageTooLarge, match="30000 x 30000"):
        preflight_h5ad(p, BUDGET, 200_000_000)


def test_log_normalised_without_counts(tmp_path: Path) -> None:
    a = make_sample(n_spots=100, n_genes=200, seed=3).adata
    X = a.X.astype(np.float32)  # type: ignore[attr-defined]
    X.data = np.log1p(X.data * 1.37)
    a.X = X  # type: ignore[attr-defined]
    p = tmp_path / "log.h5ad"
    a.write_h5ad(p)  # type: ignore[attr-defined]
    with pytest.raises(errors.MissingCounts, match="log-normalised"):
        preflight_h5ad(p, BUDGET, MAXPIX)
    # ... but counts in layers['counts'] are found
    a.layers["counts"] = sp.csr_matrix(np.round(np.expm1(X.toarray()) / 1.37))  # type: ignore[attr-defined]
    a.write_h5ad(p)  # type: ignore[attr-defined]
    assert preflight_h5ad(p, BUDGET, MAXPIX).counts_location == "layers/counts"


def test_over_memory_budget_says_what_to_do(good: Path) -> None:
    with pytest.raises(errors.OverMemoryBudget, match="MGS_MEMORY_BUDGET_MB"):
        preflight_h5ad(good, 1.0, MAXPIX)


def test_read_sample_layouts(good: Path, tmp_path: Path) -> None:
    s = read_sample(good, Settings())
    assert s.layout == "visium" and s.image is not None and s.adata.n_obs == 200
    assert any("COLON" in m for m in s.metadata_strings)
    hd = tmp_path / "hd.h5ad"
    make_sample(layout="hd", n_spots=400, n_genes=300, seed=1).adata.write_h5ad(hd)  # type: ignore[attr-defined]
    s2 = read_sample(hd, Settings())
    assert s2.layout == "visium_hd" and s2.bin_size_um == 8.0


def test_worker_memory_cap_is_the_preflight_budget(good: Path, tmp_path: Path) -> None:
    from core.runner import run_analysis_stage

    with pytest.raises(errors.OverMemoryBudget, match="memory budget of 100 MiB"):
        run_analysis_stage(good, tmp_path / "o", settings=Settings(analysis_memory_mb=100))
    assert not (tmp_path / "o").exists()
