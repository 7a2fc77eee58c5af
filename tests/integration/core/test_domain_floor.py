"""Regression floor of the spatial domains on a shallow HD section with many narrow bands (issue 11).

synth.py's HD sample with 8 domains in mixed shapes (7 of them narrow bands) at depth 0.51, seed 5
(a tuning seed of bench/domain_sweep.py), analysed as the sweep does. Before the edge-preserving
second smoothing pass (core/analysis/domains.py, ``edge_preserving_grid``) k-means split the large
domain before it parted the bands, no count of 4 or more had a density valley on every boundary, and
3 domains were found: ARI 0.390. With it: 7 domains, ARI 0.829. The floor sits between the two.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_limits

from core.analysis.domains import ari, find_domains

ROOT = Path(__file__).resolve().parents[3]


def _sweep() -> Any:
    spec = importlib.util.spec_from_file_location(
        "mgs_domain_sweep", ROOT / "bench" / "domain_sweep.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    if not mod.SYNTH.is_file():
        pytest.skip(f"synth.py not found at {mod.SYNTH}")
    return mod


def test_shallow_hd_bands_are_not_collapsed() -> None:
    ds = _sweep()
    cfg = {"seed": 5, "layout": "hd", "shape": "mixed", "domains": 8, "depth": 0.51}
    d = ds.prepare(cfg, {"hd": 12000, "visium": 2500}, 4000, None)
    with threadpool_limits(limits=1, user_api="blas"):
        r = find_domains(d["pcs"], d["probs"], d["xy"], d["layout"], d["A"], ds.PX_PER_UM, seed=0)
    score = ari(r.labels, d["truth"])
    assert r.k >= 5, f"{r.k} domains of 8"
    assert score >= 0.7, f"domain ARI {score:.3f} < 0.7"
