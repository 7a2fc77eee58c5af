"""Visium HD: streaming aggregation of 2 um bins equals a dense reference sum, with bounded memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from core.config import Settings
from core.errors import BadOption, OverMemoryBudget
from core.io.hd import aggregate_bins, bin_options, choose_bin_size
from core.io.readers import read_sample
from tests.fixtures.hd import MICRONS_PER_PIXEL, make_fake_hd, write_hd_bins


def dense_reference(
    X: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, factor: int
) -> dict[tuple[int, int], np.ndarray]:
    D = X.toarray().astype(np.int64)
    ref: dict[tuple[int, int], np.ndarray] = {}
    for i, (r, c) in enumerate(zip(rows, cols, strict=True)):
        key = (int(r) // factor, int(c) // factor)
        ref[key] = ref.get(key, np.zeros(D.shape[1], dtype=np.int64)) + D[i]
    return ref


@pytest.fixture(scope="module")
def fake(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, sp.csr_matrix, np.ndarray, np.ndarray]:
    return make_fake_hd(
        tmp_path_factory.mktemp("hd") / "outs", n_rows=48, n_cols=40, n_genes=30, seed=3
    )


@pytest.mark.parametrize(("target", "chunk"), [(8, 97), (8, 10_000_000), (16, 301), (4, 1)])
def test_hd_aggregation_equals_dense_sum(fake: tuple, target: int, chunk: int) -> None:
    out, X, rows, cols = fake
    agg = aggregate_bins(out / "binned_outputs" / "square_002um", target, chunk_nnz=chunk)
    ref = dense_reference(X, rows, cols, target // 2)
    assert agg.X.shape == (len(ref), X.shape[1])
    assert agg.X.dtype == np.float32 and agg.X.has_canonical_format
    got = agg.X.toarray()
    for i, (r, c) in enumerate(zip(agg.array_row, agg.array_col, strict=True)):
        np.testing.assert_array_equal(got[i], ref[(int(r), int(c))])
        assert agg.barcodes[i] == f"s_{target:03d}um_{r:05d}_{c:05d}-1"
    # rows in row-major order; coordinates are the children's mean pixel position
    keys = agg.array_row * 10_000 + agg.array_col
    assert np.all(np.diff(keys) > 0)
    px = 2 / MICRONS_PER_PIXEL
    for i in range(0, len(agg.barcodes), 7):
        m = (rows // (target // 2) == agg.array_row[i]) & (
            cols // (target // 2) == agg.array_col[i]
        )
        assert agg.n_children[i] == m.sum()
        assert agg.pxl_row[i] == pytest.approx(np.mean((rows[m] + 0.5) * px))
        assert agg.pxl_col[i] == pytest.approx(np.mean((cols[m] + 0.5) * px))
    assert int(agg.X.sum()) == int(X.sum())


def test_hd_aggregation_memory_is_bounded_by_open_band(fake: tuple) -> None:
    out = fake[0]
    chunk = 200
    agg = aggregate_bins(out / "binned_outputs" / "square_002um", 8, chunk_nnz=chunk)
    # at most the values of one chunk plus the parent rows still open (row-major input: ~2 parent rows)
    per_parent_row = np.bincount(agg.array_row, weights=np.diff(agg.X.indptr))
    assert agg.peak_open_nnz <= chunk + 2 * per_parent_row.max()
    assert agg.peak_open_nnz < agg.X.nnz / 4


def test_hd_aggregation_any_barcode_order(tmp_path: Path) -> None:
    """Matrix barcodes in scrambled order (not row-major): still exact, rows still sorted."""
    rng = np.random.default_rng(1)
    n_r, n_c, g = 20, 24, 12
    r, c = np.divmod(np.arange(n_r * n_c), n_c)
    perm = rng.permutation(len(r))
    r, c = r[perm], c[perm]
    X = sp.csr_matrix(rng.poisson(0.4, size=(len(r), g)).astype(np.int32))
    write_hd_bins(tmp_path / "square_002um", X, r, c, [f"G{i}" for i in range(g)], 2, (n_r, n_c))
    agg = aggregate_bins(tmp_path / "square_002um", 8, chunk_nnz=50)
    ref = dense_reference(X, r, c, 4)
    got = agg.X.toarray()
    for i, (pr, pc) in enumerate(zip(agg.array_row, agg.array_col, strict=True)):
        np.testing.assert_array_equal(got[i], ref[(int(pr), int(pc))])
    assert np.all(np.diff(agg.array_row * 1000 + agg.array_col) > 0)


def test_hd_bin_options_and_choice(fake: tuple) -> None:
    out, X, rows, cols = fake
    hd_root = out / "binned_outputs"
    opts = {o.bin_size_um: o for o in bin_options(hd_root, 1e9)}
    assert set(opts) == {2, 8, 16}
    assert not opts[2].aggregated and opts[8].aggregated and opts[16].aggregated
    assert opts[2].n_bins == X.shape[0] and opts[2].nnz == X.nnz
    assert opts[8].n_bins == len(dense_reference(X, rows, cols, 4))
    assert opts[8].nnz <= X.nnz
    assert opts[2].estimated_memory_mb > opts[8].estimated_memory_mb > opts[16].estimated_memory_mb
    # no --bin-size: the finest that fits
    assert choose_bin_size(hd_root, 1e9, None).bin_size_um == 2
    budget = (opts[8].estimated_memory_mb + opts[2].estimated_memory_mb) / 2
    ch = choose_bin_size(hd_root, budget, None)
    assert ch.bin_size_um == 8 and ch.source_um == 2 and "finest" in ch.reason
    with pytest.raises(OverMemoryBudget):
        choose_bin_size(hd_root, 1.0, None)
    with pytest.raises(OverMemoryBudget):
        choose_bin_size(hd_root, budget, 2)
    with pytest.raises(BadOption):
        choose_bin_size(hd_root, 1e9, 5)
    json.dumps(ch.as_dict())


def test_hd_read_sample_aggregated_and_direct(fake: tuple, tmp_path: Path) -> None:
    out, X, rows, cols = fake
    s = read_sample(out, Settings(memory_budget_mb=100_000), bin_size_um=8)
    assert s.layout == "visium_hd" and s.bin_size_um == 8.0
    assert s.adata.n_obs == len(dense_reference(X, rows, cols, 4))
    assert (
        s.bin_choice is not None
        and s.bin_choice["bin_size_um"] == 8
        and s.bin_choice["source_um"] == 2
    )
    assert any("aggregated from 2 um" in n for n in s.notes)
    assert s.spot_diameter_px == pytest.approx(8 / MICRONS_PER_PIXEL)
    assert s.image is not None and s.adata.obsm["spatial"].shape == (s.adata.n_obs, 2)
    assert str(s.adata.obs_names[0]).startswith("s_008um_")
    s2 = read_sample(out, Settings(memory_budget_mb=100_000))
    assert s2.bin_size_um == 2.0 and s2.adata.n_obs == X.shape[0]
    # when 8 um exists it is read as is, not aggregated
    a8 = aggregate_bins(out / "binned_outputs" / "square_002um", 8)
    both = tmp_path / "both"
    import shutil

    shutil.copytree(out, both)
    write_hd_bins(
        both / "binned_outputs" / "square_008um",
        a8.X,
        a8.array_row,
        a8.array_col,
        a8.gene_names,
        8,
        (int(a8.array_row.max()) + 1, int(a8.array_col.max()) + 1),
    )
    s3 = read_sample(both, Settings(memory_budget_mb=100_000), bin_size_um=8)
    assert s3.bin_choice is not None and s3.bin_choice["source_um"] == 8
    assert s3.adata.n_obs == a8.X.shape[0]
    assert abs(s3.adata.X - s.adata[s3.adata.obs_names].X).max() == 0
