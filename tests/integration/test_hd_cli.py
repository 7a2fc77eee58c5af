"""`medgemma-spatial analyze FOLDER --bin-size 8` on a format-exact 2 um Space Ranger HD folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli import main
from core.config import Settings
from core.io.readers import read_sample
from core.synth import write_sample
from tests.fixtures.hd import hd_folder_from_h5ad


@pytest.fixture(scope="module")
def hd_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("hdcli")
    h5ad = d / "hd8.h5ad"
    write_sample(h5ad, layout="hd", n_spots=1600, n_genes=800, seed=2)
    outs = hd_folder_from_h5ad(h5ad, d / "outs", seed=5, band_rows=7)
    return h5ad, outs


def test_hd_2um_folder_aggregates_back_to_the_8um_sample(hd_pair: tuple[Path, Path]) -> None:
    h5ad, outs = hd_pair
    s8 = read_sample(h5ad, Settings())
    agg = read_sample(outs, Settings(), bin_size_um=8)
    a, b = s8.adata, agg.adata
    assert set(b.obs_names) == set(a.obs_names)
    b = b[a.obs_names]
    assert abs(a.X - b.X).max() == 0
    np.testing.assert_allclose(b.obsm["spatial"], a.obsm["spatial"], atol=0.5 * 2 / 0.2737 * 1.5)


def test_hd_analyze_bin_size_8_end_to_end(
    hd_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, outs = hd_pair
    out = tmp_path / "res"
    rc = main(["analyze", str(outs), "--bin-size", "8", "--out", str(out), "--no-report"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "8 um bins as requested (aggregated from 2 um bins)" in err
    js = json.loads((out / "analysis.json").read_text())
    assert js["layout"] == "visium_hd" and js["n_spots"] > 1000
    prov = js["provenance"]
    assert prov["bin_size"]["bin_size_um"] == 8 and prov["bin_size"]["source_um"] == 2
    assert {o["bin_size_um"] for o in prov["bin_size"]["options"]} == {2, 8, 16}
    assert any("aggregated from 2 um" in n for n in prov["notes"])
    assert (out / "figures" / "domains.png").is_file()


def test_hd_analyze_picks_finest_fitting_bin_size(
    hd_pair: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from core.config import get_settings
    from core.io.hd import bin_options

    _, outs = hd_pair
    opts = {o.bin_size_um: o for o in bin_options(outs / "binned_outputs", 1e9)}
    budget = int((opts[2].estimated_memory_mb + opts[8].estimated_memory_mb) / 2)
    monkeypatch.setenv("MGS_MEMORY_BUDGET_MB", str(budget))
    get_settings.cache_clear()
    try:
        out = tmp_path / "res"
        rc = main(["analyze", str(outs), "--out", str(out), "--no-report"])
        err = capsys.readouterr().err
        assert rc == 0, err
        assert "picked 8 um bins (aggregated from 2 um bins)" in err
        js = json.loads((out / "analysis.json").read_text())
        assert js["provenance"]["bin_size"]["bin_size_um"] == 8
        fits = {o["bin_size_um"]: o["fits_budget"] for o in js["provenance"]["bin_size"]["options"]}
        assert fits == {2: False, 8: True, 16: True}
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("top", ["binned_outputs", "outs"])
def test_hd_archive_is_read_at_the_bin_size_the_budget_allows(
    hd_pair: tuple[Path, Path], tmp_path: Path, top: str
) -> None:
    """A .tar of a 2 um HD folder (from inside outs/, or of outs/ itself), as uploaded to the service:
    the HD root is found (not the first folder holding an h5) and the validation step, run under the
    analysis worker's memory limit, reads it at the finest bin size that fits."""
    import tarfile

    from core.io.hd import bin_options
    from core.jobs.sandbox import validate_in_subprocess

    _, outs = hd_pair
    opts = {o.bin_size_um: o for o in bin_options(outs / "binned_outputs", 1e9)}
    cap = int((opts[2].estimated_memory_mb + opts[8].estimated_memory_mb) / 2)
    tar = tmp_path / "hd.tar"
    with tarfile.open(tar, "w") as t:
        if top == "outs":
            t.add(outs, arcname="outs")
        else:
            t.add(outs / "binned_outputs", arcname="binned_outputs")
    s = read_sample(tar, Settings(memory_budget_mb=cap))
    assert s.bin_size_um == 8 and s.adata.n_obs > 1000
    summary = validate_in_subprocess(tar, Settings(memory_budget_mb=8192, analysis_memory_mb=cap))
    assert summary["bin_size_um"] == 8 and summary["n_obs"] == s.adata.n_obs
