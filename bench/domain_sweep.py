#!/usr/bin/env python3
"""Automatic spatial-domain count and domain accuracy across synth.py samples.

For each sample (both layouts x shapes voronoi|layers|mixed, 3 to 8 true domains, depth
0.4 to 1.5, drawn from the seed) it simulates a section with ../shared/bench/synth.py,
runs the analysis up to the domain step with automatic settings, and prints the chosen vs
true domain count and the adjusted Rand index (ARI) of the domains against the truth, then
the median and minimum ARI over the sweep.

Tune on seeds 0-9; report on seeds 100 and up (the figures in docs/analysis.md).

Usage (from the project root, with the project's venv):
  python bench/domain_sweep.py --seeds 100-102
  python bench/domain_sweep.py --seeds 0-9 --cache /tmp/dsweep   # reuse the expensive part

``--cache`` keeps each sample's embedding, cell-type probabilities and spatial graph, so
that re-running after a change to core/analysis/domains.py only re-runs the domain step.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
SYNTH = ROOT.parent / "shared" / "bench" / "synth.py"
SHAPES = ("voronoi", "layers", "mixed")
LAYOUTS = ("visium", "hd")
PX_PER_UM = 1 / 0.2737  # synth.py's full-resolution scale


def _synth() -> Any:
    spec = importlib.util.spec_from_file_location("synth", SYNTH)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {SYNTH}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def ari(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labellings."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    C = sp.coo_matrix((np.ones(len(ai)), (ai, bi))).toarray()

    def c2(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    s, sa, sb, n2 = c2(C), c2(C.sum(1)), c2(C.sum(0)), len(ai) * (len(ai) - 1) / 2
    exp = sa * sb / n2
    den = (sa + sb) / 2 - exp
    return float((s - exp) / den) if den else 1.0


def configs(seeds: list[int]) -> list[dict[str, Any]]:
    """Every layout x shape for each seed; domains and depth drawn from the seed."""
    out = []
    for s in seeds:
        rng = np.random.default_rng(10_000 + s)
        for layout in LAYOUTS:
            for shape in SHAPES:
                out.append(
                    {
                        "seed": s,
                        "layout": layout,
                        "shape": shape,
                        "domains": int(rng.integers(3, 9)),
                        "depth": round(float(rng.uniform(0.4, 1.5)), 2),
                    }
                )
    return out


def prepare(
    cfg: dict[str, Any], spots: dict[str, int], genes: int, cache: Path | None
) -> dict[str, Any]:
    """Simulate and analyse one sample up to the domain step (cached when asked)."""
    key = f"{cfg['layout']}_{cfg['shape']}_k{cfg['domains']}_d{cfg['depth']}_s{cfg['seed']}_n{spots[cfg['layout']]}_g{genes}"
    path = cache / f"{key}.npz" if cache else None
    if path is not None and path.is_file():
        z = np.load(path, allow_pickle=False)
        A = sp.csr_matrix((z["A_data"], z["A_indices"], z["A_indptr"]), shape=tuple(z["A_shape"]))
        return {
            "pcs": z["pcs"],
            "probs": z["probs"],
            "xy": z["xy"],
            "A": A,
            "truth": z["truth"],
            "layout": str(z["layout"]),
        }
    import anndata as ad

    from core.analysis.pipeline import AnalysisParams, run_analysis

    synth = _synth()
    sim = synth.simulate(
        cfg["layout"],
        spots[cfg["layout"]],
        genes,
        8,
        cfg["domains"],
        cfg["seed"],
        cfg["shape"],
        cfg["depth"],
    )
    names = [f"s{i}" for i in range(sim["X"].shape[0])]
    adata = ad.AnnData(X=sim["X"].astype(np.float32))
    adata.obs_names = names
    adata.var_names = sim["genes"]
    adata.obsm["spatial"] = sim["xy"]
    layout = "visium_hd" if cfg["layout"] == "hd" else "visium"
    res = run_analysis(adata, layout, AnalysisParams(seed=0, n_perms=10), px_per_um=PX_PER_UM)
    idx = np.array([int(str(n)[1:]) for n in res.obs_names])  # spots kept by QC
    out = {
        "pcs": res.pca,
        "probs": res.annotation.probs,
        "xy": res.xy,
        "A": res.spatial_graph.tocsr(),
        "truth": np.asarray(sim["domain"])[idx],
        "layout": layout,
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        A = out["A"]
        np.savez(
            path,
            pcs=out["pcs"],
            probs=out["probs"],
            xy=out["xy"],
            truth=out["truth"],
            layout=layout,
            A_data=A.data,
            A_indices=A.indices,
            A_indptr=A.indptr,
            A_shape=np.array(A.shape),
        )
    return out


def run_one(
    cfg: dict[str, Any], spots: dict[str, int], genes: int, cache: Path | None
) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from core.analysis.domains import find_domains

    d = prepare(cfg, spots, genes, cache)
    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):  # as the pipeline runs it
        r = find_domains(d["pcs"], d["probs"], d["xy"], d["layout"], d["A"], PX_PER_UM, seed=0)
    return {
        **cfg,
        "chosen": r.k,
        "ari": round(ari(r.labels, d["truth"]), 3),
        "close": bool(getattr(r, "close_alternative", None)),
        "domain_s": round(time.perf_counter() - t0, 2),
    }


def parse_seeds(s: str) -> list[int]:
    out: list[int] = []
    for part in s.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b) + 1) if b else [int(a)])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--seeds", default="100-102", help="seeds, e.g. 0-9 or 100,101 (default 100-102)"
    )
    p.add_argument("--visium-spots", type=int, default=3000)
    p.add_argument("--hd-bins", type=int, default=20000)
    p.add_argument("--genes", type=int, default=3000)
    p.add_argument("--layout", choices=LAYOUTS, help="only this layout")
    p.add_argument("--shape", choices=SHAPES, help="only this shape")
    p.add_argument("--cache", type=Path, help="folder to keep analysed samples in")
    p.add_argument("--json", type=Path, help="also write the rows here")
    a = p.parse_args(argv)
    spots = {"visium": a.visium_spots, "hd": a.hd_bins}
    rows = []
    print(
        f"{'seed':>4} {'layout':<6} {'shape':<7} {'depth':>5} {'true':>4} {'chosen':>6} {'ARI':>6} close"
    )
    for cfg in configs(parse_seeds(a.seeds)):
        if (a.layout and cfg["layout"] != a.layout) or (a.shape and cfg["shape"] != a.shape):
            continue
        r = run_one(cfg, spots, a.genes, a.cache)
        rows.append(r)
        print(
            f"{r['seed']:>4} {r['layout']:<6} {r['shape']:<7} {r['depth']:>5} {r['domains']:>4} "
            f"{r['chosen']:>6} {r['ari']:>6.3f} {'yes' if r['close'] else ''}",
            flush=True,
        )
    aris = [r["ari"] for r in rows]
    if aris:
        print(
            f"\n{len(rows)} samples: domain ARI median {statistics.median(aris):.3f}, "
            f"min {min(aris):.3f}; chosen == true in {sum(r['chosen'] == r['domains'] for r in rows)}"
        )
        for shape in SHAPES:
            s = [r["ari"] for r in rows if r["shape"] == shape]
            if s:
                print(
                    f"  {shape:<8} median {statistics.median(s):.3f} min {min(s):.3f} (n={len(s)})"
                )
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
