"""`medgemma-spatial analyze` at Visium HD cell level: Space Ranger 4 segmented outputs and our own cells."""

from __future__ import annotations

import collections
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli import main
from core.config import Settings
from core.errors import InputError
from core.io.readers import read_sample
from tests.fixtures.hd_cells import KnownCells, make_hd_cells


@pytest.fixture(scope="module")
def seg_sample(tmp_path_factory: pytest.TempPathFactory) -> KnownCells:
    return make_hd_cells(tmp_path_factory.mktemp("hdseg") / "outs", seed=5, segmented=True)


@pytest.fixture(scope="module")
def plain_sample(tmp_path_factory: pytest.TempPathFactory) -> KnownCells:
    return make_hd_cells(
        tmp_path_factory.mktemp("hdplain") / "outs", seed=6, n_rows=140, n_cols=140
    )


def test_analyze_reads_space_ranger_cells_by_default(
    seg_sample: KnownCells, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "res"
    rc = main(
        [
            "analyze",
            str(seg_sample.out),
            "--out",
            str(out),
            "--no-report",
            "--write-h5ad",
            "--quiet",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    spots = pd.read_csv(out / "spots.csv")
    assert {"area_um2", "n_bins", "in_nucleus_frac"} <= set(spots.columns)
    assert spots["barcode"].str.startswith("cellid_").all()
    cid = spots["barcode"].str.slice(7, 16).astype(int).to_numpy() - 1
    true_bins = np.bincount(
        seg_sample.bin_cell[seg_sample.bin_cell >= 0], minlength=seg_sample.n_cells
    )
    assert np.array_equal(spots["n_bins"].to_numpy(), true_bins[cid])
    assert spots["in_nucleus_frac"].between(0, 1).all()
    js = json.loads((out / "analysis.json").read_text())
    assert js["unit"] == "cell" and js["layout"] == "visium_hd"
    assert (
        js["cells"]["method"] == "spaceranger_segmentation"
        and js["cells"]["n"] == seg_sample.n_cells
    )
    plat = json.loads((out / "features.json").read_text())["platform"]
    assert plat["unit"] == "cell" and plat["n_cells"] == seg_sample.n_cells
    assert "Space Ranger" in plat["unit_description"]
    gj = json.loads((out / "cells.geojson").read_text())
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == len(spots)
    f0 = gj["features"][0]
    assert f0["properties"]["objectType"] == "cell" and f0["properties"]["classification"]["name"]
    ring = f0["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) >= 4
    import anndata as ad

    a = ad.read_h5ad(out / "analysis.h5ad")
    assert a.n_obs == len(spots) and a.obsm["spatial"].shape == (a.n_obs, 2)
    np.testing.assert_allclose(a.obsm["spatial"][:, 0], spots["x"], atol=0.01)


def test_analyze_unit_bin_reads_bins(seg_sample: KnownCells, tmp_path: Path) -> None:
    s = read_sample(seg_sample.out, Settings(), unit="bin")
    assert s.unit == "bin" and s.bin_size_um == 2 and s.adata.n_obs == len(seg_sample.bin_row)
    out = tmp_path / "res"
    assert (
        main(
            [
                "analyze",
                str(seg_sample.out),
                "--unit",
                "bin",
                "--bin-size",
                "8",
                "--out",
                str(out),
                "--no-report",
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        json.loads((out / "analysis.json").read_text())["provenance"]["bin_size"]["bin_size_um"]
        == 8
    )
    assert not (out / "cells.geojson").exists()


def test_unit_cell_with_bin_size_is_refused(
    seg_sample: KnownCells, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "analyze",
            str(seg_sample.out),
            "--unit",
            "cell",
            "--bin-size",
            "8",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 2 and "invalid_option" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_space_ranger_cells_over_budget_fall_back_to_bins(
    seg_sample: KnownCells, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.io.readers import cells as cells_reader

    # the cells' estimate is made larger than the budget (the bins' estimate stays real)
    monkeypatch.setattr(cells_reader, "segmented_estimate_mb", lambda seg: 10_000.0)
    s = read_sample(seg_sample.out, Settings(memory_budget_mb=4096))
    assert s.unit == "bin"
    assert any("analysed at bin level" in n for n in s.notes)
    with pytest.raises(InputError) as e:
        read_sample(seg_sample.out, Settings(memory_budget_mb=4096), unit="cell")
    assert e.value.code == "over_memory_budget"


def _cell_truth(bin_cell_pred: np.ndarray, bin_cell_true: np.ndarray) -> dict[int, int]:
    m = (bin_cell_pred >= 0) & (bin_cell_true >= 0)
    best: dict[int, tuple[int, int]] = {}
    for (p, t), c in collections.Counter(
        zip(bin_cell_pred[m].tolist(), bin_cell_true[m].tolist(), strict=True)
    ).items():
        if c > best.get(p, (0, -1))[0]:
            best[p] = (c, t)
    return {p: t for p, (_, t) in best.items()}


def test_own_cells_cell_type_accuracy_at_least_8um_bins(
    plain_sample: KnownCells, tmp_path: Path
) -> None:
    """Cells made here from 2 um bins are annotated at least as accurately as 8 um bins of the same sample."""
    from core.io.hd_cells import cells_from_bins

    k = plain_sample
    out_c, out_b = tmp_path / "cells", tmp_path / "bins8"
    assert (
        main(
            ["analyze", str(k.out), "--unit", "cell", "--out", str(out_c), "--no-report", "--quiet"]
        )
        == 0
    )
    assert (
        main(
            [
                "analyze",
                str(k.out),
                "--unit",
                "bin",
                "--bin-size",
                "8",
                "--out",
                str(out_b),
                "--no-report",
                "--quiet",
            ]
        )
        == 0
    )
    js = json.loads((out_c / "analysis.json").read_text())
    assert js["cells"]["method"] == "nuclei_watershed"
    assert (
        "nuclei found here"
        in json.loads((out_c / "features.json").read_text())["platform"]["unit_description"]
    )
    cs = cells_from_bins(k.out / "binned_outputs" / "square_002um", polygons=False)
    truth = _cell_truth(cs.bin_cell, k.bin_cell)
    sc = pd.read_csv(out_c / "spots.csv")
    idx = sc["barcode"].str.slice(5).astype(int).to_numpy() - 1
    true_c = np.array([k.cell_type[truth[i]] if i in truth else "" for i in idx])
    acc_cell = float(np.mean(sc["cell_type"].to_numpy() == true_c))
    # 8 um truth: the type holding most of a bin's counts
    sb = pd.read_csv(out_b / "spots.csv")
    r8, c8 = k.bin_row // 4, k.bin_col // 4
    tot = np.asarray(k.X.sum(1)).ravel()
    votes: dict[tuple[int, int], collections.Counter[str]] = collections.defaultdict(
        collections.Counter
    )
    for r, c, cell, w in zip(
        r8.tolist(), c8.tolist(), k.bin_cell.tolist(), tot.tolist(), strict=True
    ):
        if cell >= 0:
            votes[(r, c)][str(k.cell_type[cell])] += w
    parts = sb["barcode"].str.extract(r"s_008um_(\d+)_(\d+)-1").astype(int).to_numpy()
    true_b = np.array(
        [votes[(r, c)].most_common(1)[0][0] if votes.get((r, c)) else "" for r, c in parts]
    )
    acc_bin = float(np.mean(sb["cell_type"].to_numpy() == true_b))
    print(f"cell-type accuracy: cells {acc_cell:.3f}, 8 um bins {acc_bin:.3f}")
    assert acc_cell >= 0.8, acc_cell
    assert acc_cell >= acc_bin, (acc_cell, acc_bin)


@pytest.mark.parametrize("top", ["outs", "inside", "segmented_only"])
def test_segmented_archive_validates_and_reads_as_cells(
    seg_sample: KnownCells, tmp_path: Path, top: str
) -> None:
    from core.jobs.sandbox import validate_in_subprocess

    tar = tmp_path / "hd.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        if top == "outs":
            t.add(seg_sample.out, arcname="outs")
        elif top == "segmented_only":
            t.add(seg_sample.out / "segmented_outputs", arcname="segmented_outputs")
        else:
            for p in seg_sample.out.iterdir():
                t.add(p, arcname=p.name)
    s = read_sample(tar, Settings())
    assert s.unit == "cell" and s.adata.n_obs == seg_sample.n_cells
    summary = validate_in_subprocess(tar, Settings())
    assert summary["unit"] == "cell" and summary["n_cells"] == seg_sample.n_cells
