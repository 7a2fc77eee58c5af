"""Regression floor of annotation accuracy and calibration: bench/accuracy.py's small tier on three samples.

One HD and one Visium synth.py sample (seed 0, voronoi, tuning seeds), and one shallow Visium sample in
bands (layers, 6 domains, depth 0.6: populations share bands, the case where marker coherence judged
across spots and a noisy duplicate-type test split or mixed marker sets), annotated with the shipped
table and with all of PanglaoDB without an organ. Floors sit with margin below the measured figures
(docs/accuracy.md): a drop below them is a regression of the method, not noise.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("mgs_accuracy", ROOT / "bench" / "accuracy.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    if not mod.SYNTH.is_file():
        pytest.skip(f"synth.py not found at {mod.SYNTH}")
    return mod


@pytest.fixture(scope="module")
def rows() -> dict[tuple[str, str], dict[str, Any]]:
    acc = _bench()
    synth = acc.load_synth()
    out = {}
    for layout, shape, k, depth in (
        ("hd", "voronoi", 4, 0.8),
        ("visium", "voronoi", 4, 0.8),
        ("visium", "layers", 6, 0.6),
    ):
        cfg = acc.Config(seed=0, layout=layout, shape=shape, domains=k, depth=depth)
        key = layout if shape == "voronoi" else f"{layout}-{shape}"
        for r in acc.evaluate(synth, cfg, "small", ("default", "panglao_all"), None):
            out[(key, r["table"])] = r
    return out


# (sample, table): lineage accuracy floor, cell-type accuracy floor. Measured (small tier, seed 0):
# HD 0.999 / 0.999 both tables; Visium default 0.965 / 0.952, PanglaoDB 0.972 / 0.967; shallow Visium
# bands default 0.928 / 0.917 (0.893 / 0.878, ECE 0.066, RMSE 0.050 before coherence was judged within
# spatial neighbourhoods and duplicate types merged on the noise-corrected correlation), PanglaoDB
# 0.962 / 0.961; ECE <= 0.029 on every row.
FLOORS = {
    ("hd", "default"): (0.97, 0.95),
    ("hd", "panglao_all"): (0.97, 0.95),
    ("visium", "default"): (0.93, 0.92),
    ("visium", "panglao_all"): (0.93, 0.92),
    ("visium-layers", "default"): (0.91, 0.9),
    ("visium-layers", "panglao_all"): (0.93, 0.92),
}
MAX_ECE = 0.05  # issue 11's target; measured <= 0.029 here


@pytest.mark.parametrize("key", list(FLOORS))
def test_accuracy_floor(rows: dict[tuple[str, str], dict[str, Any]], key: tuple[str, str]) -> None:
    if key not in rows:
        pytest.skip("PanglaoDB table not in ../shared/data")
    r = rows[key]
    lin, typ = FLOORS[key]
    assert r["lineage_acc"] >= lin, f"{key}: lineage accuracy {r['lineage_acc']:.3f} < {lin}"
    assert r["type_acc"] >= typ, f"{key}: cell-type accuracy {r['type_acc']:.3f} < {typ}"
    assert r["ece"] <= MAX_ECE, f"{key}: calibration error {r['ece']:.3f} > {MAX_ECE}"


@pytest.mark.parametrize("sample", ["visium", "visium-layers"])
def test_visium_composition_floor(rows: dict[tuple[str, str], dict[str, Any]], sample: str) -> None:
    r = rows[(sample, "default")]
    # measured 0.026 (voronoi) and 0.028 (shallow bands; 0.050 before the coherence fix)
    assert r["comp_rmse"] <= 0.04, f"{sample}: composition RMSE {r['comp_rmse']:.3f} > 0.04"
    assert r["comp_r_median"] >= 0.95


def test_panglao_without_organ_stays_broad(rows: dict[tuple[str, str], dict[str, Any]]) -> None:
    """All of PanglaoDB, no organ: the broad types of the sample are called, not organ-specific ones."""
    if ("hd", "panglao_all") not in rows:
        pytest.skip("PanglaoDB table not in ../shared/data")
    assert rows[("hd", "panglao_all")]["assigned"] >= 0.9


def test_ece_measures_calibration() -> None:
    acc = _bench()
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 20_000)
    calibrated = rng.uniform(0, 1, conf.size) < conf
    assert acc.ece(conf, calibrated) < 0.02
    assert acc.ece(np.full(conf.size, 0.9), calibrated) > 0.3  # overconfident
