"""Visium HD cells on a fixture whose cells are known: nuclei, bin assignment, Space Ranger 4 reading."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

from core.config import Settings
from core.io.hd_cells import cells_from_bins, expand_nuclei, find_segmented, read_segmented
from core.io.nuclei import NucleiParams, haematoxylin, match_labels, segment_nuclei
from tests.fixtures.hd import MICRONS_PER_PIXEL
from tests.fixtures.hd_cells import KnownCells, make_hd_cells


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> KnownCells:
    return make_hd_cells(
        tmp_path_factory.mktemp("hdcells") / "sample", seed=3, segmented=True, mex=True
    )


def test_haematoxylin_is_high_on_nuclei(known: KnownCells) -> None:
    h = haematoxylin(known.image)
    assert h[known.labels > 0].mean() > 3 * h[known.labels == 0].mean()


@pytest.mark.parametrize(("stain", "work_um"), [(1.0, 0.55), (0.35, 0.55), (1.0, 0.25)])
def test_nuclei_precision_recall_at_iou_half(tmp_path: Path, stain: float, work_um: float) -> None:
    """Weak haematoxylin (0.35) included; 0.55 um work resolution block-averages 2 x 2 pixels, 0.25 none."""
    k = make_hd_cells(tmp_path / "s", seed=4, stain=stain)
    lab = np.zeros(k.labels.shape, dtype=np.int32)
    # small tiles: many nuclei cross tile borders, each must still be found once
    nu = segment_nuclei(
        k.image,
        MICRONS_PER_PIXEL,
        labels_out=lab,
        params=NucleiParams(tile_px=300, work_um_per_px=work_um),
    )
    assert nu.n_tiles > 4
    precision, recall, _ = match_labels(k.labels, lab)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall, nu.threshold)
    assert abs(nu.n - k.n_cells) <= 0.1 * k.n_cells


def test_blank_image_finds_no_nuclei() -> None:
    img = np.full((300, 300, 3), 230, dtype=np.uint8)
    nu = segment_nuclei(img, MICRONS_PER_PIXEL)
    assert nu.n == 0 and nu.notes


def _bin_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    """Share of bins of true cells that land in the predicted cell matched to their true cell."""
    m = (pred >= 0) & (true >= 0)
    best: dict[int, tuple[int, int]] = {}
    for (p, t), c in collections.Counter(
        zip(pred[m].tolist(), true[m].tolist(), strict=True)
    ).items():
        if c > best.get(p, (0, -1))[0]:
            best[p] = (c, t)
    mapped = np.array([best[p][1] if p in best else -2 for p in pred.tolist()])
    inc = true >= 0
    return float(np.mean(mapped[inc] == true[inc]))


def test_cells_from_bins_assigns_bins_to_their_true_cell(known: KnownCells) -> None:
    cs = cells_from_bins(known.out / "binned_outputs" / "square_002um", chunk_nnz=5000)
    assert cs.bin_cell is not None
    assert _bin_accuracy(cs.bin_cell, known.bin_cell) >= 0.9
    # every count of an assigned bin is in exactly one cell (streamed in many chunks)
    assert cs.X.sum() == pytest.approx(float(known.X[cs.bin_cell >= 0].sum()))
    np.testing.assert_allclose(
        np.asarray(cs.X.sum(1)).ravel()[:5], [known.X[cs.bin_cell == i].sum() for i in range(5)]
    )
    assert np.all(cs.n_bins >= 1) and np.all((cs.in_nucleus_frac >= 0) & (cs.in_nucleus_frac <= 1))
    assert np.all(cs.area_um2 == cs.n_bins * 4)
    assert len(cs.polygons) == cs.n and all(len(p) >= 3 for p in cs.polygons)
    assert cs.params["n_contested"] > 0


def test_destriping_equalises_row_and_column_quantiles(known: KnownCells) -> None:
    from core.io.hd_cells import _destripe_factors

    rng = np.random.default_rng(0)
    row, col = np.divmod(np.arange(60 * 50), 50)
    stripes_r, stripes_c = rng.uniform(0.5, 2.0, 60), rng.uniform(0.5, 2.0, 50)
    totals = rng.gamma(5.0, 4.0, len(row)) * stripes_r[row] * stripes_c[col]
    fixed = totals * _destripe_factors(totals, row, col)
    q_rows = np.array([np.quantile(fixed[row == r], 0.99) for r in range(60)])
    q_cols = np.array([np.quantile(fixed[col == c], 0.99) for c in range(50)])
    assert np.ptp(q_cols) / q_cols.mean() < 1e-6  # the last pass is exact
    assert np.std(q_rows) / q_rows.mean() < 0.25 * np.std(stripes_r) / stripes_r.mean()
    a = cells_from_bins(known.out / "binned_outputs" / "square_002um", polygons=False)
    b = cells_from_bins(
        known.out / "binned_outputs" / "square_002um", polygons=False, destripe=True
    )
    assert a.n == b.n and not np.allclose(a.X.toarray(), b.X.toarray())


def test_expand_nuclei_bounded_and_ties_flagged() -> None:
    g = np.full((1, 9), -1, dtype=np.int64)
    g[0, 0], g[0, 8] = 0, 1
    present = np.ones_like(g, dtype=bool)
    l1, l2, con = expand_nuclei(g, present, 2.0, 0.5)
    assert l1.tolist() == [[0, 0, 0, -1, -1, -1, 1, 1, 1]]
    g2 = np.full((1, 5), -1, dtype=np.int64)
    g2[0, 0], g2[0, 4] = 0, 1
    l1, l2, con = expand_nuclei(g2, np.ones_like(g2, dtype=bool), 2.0, 0.5)
    assert con[0, 2] and {int(l1[0, 2]), int(l2[0, 2])} == {0, 1}
    assert not con[0, 1] and l1[0, 1] == 0


@pytest.mark.parametrize("fmt", ["h5", "mex"])
def test_read_space_ranger_4_segmented_outputs(known: KnownCells, tmp_path: Path, fmt: str) -> None:
    import shutil

    root = tmp_path / "outs"
    shutil.copytree(known.out, root)
    seg = find_segmented(root)
    assert seg is not None
    if fmt == "mex":
        (seg / "filtered_feature_cell_matrix.h5").unlink()
    cs = read_segmented(seg, Settings(), MICRONS_PER_PIXEL)
    true_ids = np.unique(known.bin_cell[known.bin_cell >= 0])
    assert cs.n == len(true_ids)
    i = 0
    cid = true_ids[i]
    sel = known.bin_cell == cid
    assert cs.n_bins[i] == sel.sum()
    assert cs.in_nucleus_frac[i] == pytest.approx(known.bin_in_nucleus[sel].mean())
    assert float(cs.X[i].sum()) == float(known.X[sel].sum())
    # the outline's centroid lies near the true nucleus; its area near the bins' area
    assert np.hypot(*(cs.xy[i] - known.nucleus_xy[cid])) < 4 / MICRONS_PER_PIXEL
    assert cs.area_um2[i] == pytest.approx(4 * sel.sum(), rel=0.5)
