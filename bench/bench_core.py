#!/usr/bin/env python3
"""Speed, memory and accuracy of ``medgemma-spatial analyze`` against the scanpy + squidpy peer.

Both run on the same synth.py sample, on this machine, in the same run,
alternating, ``--repeats`` times each, as fresh processes (imports included).
Wall time is measured around the whole process; peak RSS is the child's
``ru_maxrss`` from ``wait4``. Ours includes figures and the template report.

Also reports, against synth.py's ground truth: lineage and cell-type accuracy,
the ARI of our spatial domains (and of the peer's Leiden clusters) against the
true domains; and the largest difference between our Moran's I and squidpy's
``spatial_autocorr(mode="moran")`` on the same graph and genes.

Usage (from the project root, with the project's venv):
  python bench/bench_core.py --layout visium --spots 5000 --repeats 3
  python bench/bench_core.py --layout hd --spots 200000 --repeats 1

The peer runs in its own venv (``--peer-venv``, default ``bench/.peer-venv``),
built from ../shared/bench/requirements-peer.txt when missing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "bench"

MORAN_PEER = r"""
import sys, json, numpy as np, anndata as ad, squidpy as sq
a = ad.read_h5ad(sys.argv[1])
genes = a.var_names[a.var["highly_variable"]]
sq.gr.spatial_autocorr(a, mode="moran", genes=genes, connectivity_key="spatial_connectivities",
                       n_perms=None, n_jobs=1, show_progress_bar=False)
df = a.uns["moranI"].loc[genes]
json.dump({"genes": list(map(str, genes)), "I": df["I"].tolist(), "pval_norm": df["pval_norm"].tolist()},
          open(sys.argv[2], "w"))
"""


def run_measured(cmd: list[str]) -> tuple[float, float, str]:
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as fout, tempfile.TemporaryFile("w+") as ferr:
        p = subprocess.Popen(cmd, stdout=fout, stderr=ferr, text=True)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read(), ferr.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(cmd)}\n{err[-3000:]}")
    return wall, ru.ru_maxrss / 1024.0, out


def ensure_peer(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"building the peer venv in {venv} ...", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
        subprocess.check_call(
            [str(py), "-m", "pip", "install", "-q", "-r", str(SHARED / "requirements-peer.txt")]
        )
    return py


def accuracy(out_dir: Path, truth_csv: Path) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    from core.markers import lineage_of

    spots = pd.read_csv(out_dir / "spots.csv").set_index("barcode")
    truth = pd.read_csv(truth_csv).set_index("barcode").loc[spots.index]
    true_lin = np.array([lineage_of(t) for t in truth["dominant_type"]])
    return {
        "cell_type_accuracy": round(
            float(np.mean(spots["cell_type"].to_numpy() == truth["dominant_type"].to_numpy())), 3
        ),
        "lineage_accuracy": round(float(np.mean(spots["lineage"].to_numpy() == true_lin)), 3),
        "domain_ari": round(ari(truth["domain"].to_numpy(), spots["domain"].to_numpy()), 3),
        "n_domains": int(spots["domain"].nunique()),
    }


def ari(a, b) -> float:  # type: ignore[no-untyped-def]
    import numpy as np
    from scipy.special import comb

    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    C = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(C, (ai, bi), 1)
    s = comb(C, 2).sum()
    sa, sb = comb(C.sum(1), 2).sum(), comb(C.sum(0), 2).sum()
    exp = sa * sb / comb(len(a), 2)
    return float((s - exp) / (0.5 * (sa + sb) - exp))


def moran_check(peer_py: Path, h5ad: Path, work: Path) -> dict[str, float]:
    """Our Moran's I vs squidpy's on the same graph and genes (read from our analysis.h5ad)."""
    import anndata as ad
    import numpy as np

    from core.analysis.spatial import morans_i

    a = ad.read_h5ad(h5ad)
    hv = np.asarray(a.var["highly_variable"])
    ours = morans_i(a.X[:, hv], a.obsp["spatial_connectivities"])
    script = work / "moran_peer.py"
    script.write_text(MORAN_PEER)
    res = work / "moran_peer.json"
    subprocess.check_call([str(peer_py), str(script), str(h5ad), str(res)])
    peer = json.loads(res.read_text())
    dI = np.abs(np.asarray(peer["I"]) - ours["I"])
    dp = np.abs(np.asarray(peer["pval_norm"]) - ours["pval_norm"])
    return {
        "n_genes": int(hv.sum()),
        "max_abs_diff_I": float(np.nanmax(dI)),
        "max_abs_diff_pval": float(np.nanmax(dp)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layout", choices=["visium", "hd"], default="visium")
    ap.add_argument("--spots", type=int, default=5000)
    ap.add_argument("--genes", type=int, default=18000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-venv", type=Path, default=ROOT / "bench" / ".peer-venv")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--skip-moran", action="store_true")
    ap.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the peer's warm-up run (numba cache already built)",
    )
    ap.add_argument(
        "--warmup-spots",
        type=int,
        default=0,
        help="warm the peer up on a small synth.py sample of this many spots (numba's cache does not "
        "depend on the sample size) instead of a full extra run on the benchmark sample",
    )
    ap.add_argument("--sample", type=Path, help="use this synth.py .h5ad instead of making one")
    ap.add_argument("--truth", type=Path, help="its --truth CSV")
    a = ap.parse_args()

    a.work.mkdir(parents=True, exist_ok=True)
    tag = f"{a.layout}_{a.spots}x{a.genes}_s{a.seed}"
    sample, truth = a.work / f"{tag}.h5ad", a.work / f"{tag}_truth.csv"
    if a.sample:
        sample, truth = a.sample, a.truth or Path(str(a.sample) + ".missing")
        tag = sample.stem
    if not sample.exists():
        print(f"making {sample} with synth.py ...", file=sys.stderr)
        subprocess.check_call(
            [
                sys.executable,
                str(SHARED / "synth.py"),
                "--layout",
                a.layout,
                "--spots",
                str(a.spots),
                "--genes",
                str(a.genes),
                "--seed",
                str(a.seed),
                "--out",
                str(sample),
                "--truth",
                str(truth),
            ]
        )
    ours_cmd = [
        sys.executable,
        "-m",
        "cli",
        "analyze",
        str(sample),
        "--out",
        str(a.work / f"{tag}_ours"),
        "--quiet",
    ]
    peer_py = None if a.skip_peer else ensure_peer(a.peer_venv)
    peer_cmd = (
        [
            str(peer_py),
            str(SHARED / "peer_pipeline.py"),
            str(sample),
            "--labels",
            str(a.work / f"{tag}_peer_labels.csv"),
        ]
        if peer_py
        else []
    )
    if peer_py and not a.no_warmup:
        print("warming up the peer (numba compilation) ...", file=sys.stderr)
        if a.warmup_spots:
            small = a.work / f"warmup_{a.layout}_{a.warmup_spots}.h5ad"
            if not small.exists():
                subprocess.check_call(
                    [
                        sys.executable,
                        str(SHARED / "synth.py"),
                        "--layout",
                        a.layout,
                        "--spots",
                        str(a.warmup_spots),
                        "--genes",
                        str(a.genes),
                        "--out",
                        str(small),
                    ]
                )
            run_measured([str(peer_py), str(SHARED / "peer_pipeline.py"), str(small)])
        else:
            run_measured(peer_cmd)
    results: dict[str, list[tuple[float, float]]] = {"ours": [], "peer": []}
    peer_stages: list[dict[str, float]] = []
    for r in range(a.repeats):
        for who in ["peer", "ours"] if r % 2 == 0 else ["ours", "peer"]:
            if who == "peer" and not peer_py:
                continue
            wall, rss, out = run_measured(peer_cmd if who == "peer" else ours_cmd)
            results[who].append((wall, rss))
            if who == "peer":
                peer_stages.append(json.loads(out.strip().splitlines()[-1])["stages_s"])
            print(f"  run {r + 1}: {who}: {wall:.1f} s, {rss:.0f} MiB", file=sys.stderr)
    summary: dict[str, object] = {"sample": tag, "repeats": a.repeats}
    for who, vals in results.items():
        if vals:
            summary[who] = {
                "median_wall_s": round(statistics.median(v[0] for v in vals), 2),
                "peak_rss_mib": round(max(v[1] for v in vals)),
            }
    if results["peer"]:
        o, p = summary["ours"], summary["peer"]  # type: ignore[index]
        summary["ratio_wall"] = round(o["median_wall_s"] / p["median_wall_s"], 3)  # type: ignore[index]
        summary["ratio_rss"] = round(o["peak_rss_mib"] / p["peak_rss_mib"], 3)  # type: ignore[index]
        summary["peer_stages_s"] = peer_stages[-1]
    from core.results import read_analysis

    summary["ours_stages_s"] = read_analysis(a.work / f"{tag}_ours").provenance.timings_s
    if truth.exists():
        summary["accuracy"] = accuracy(a.work / f"{tag}_ours", truth)
        lab = a.work / f"{tag}_peer_labels.csv"
        if lab.exists():
            import pandas as pd

            pl = pd.read_csv(lab, index_col=0)
            t = pd.read_csv(truth).set_index("barcode").loc[pl.index]
            summary["peer_clusters_ari_vs_domains"] = round(
                ari(t["domain"].to_numpy(), pl["clusters"].to_numpy()), 3
            )
            summary["peer_clusters_ari_vs_types"] = round(
                ari(t["dominant_type"].to_numpy(), pl["clusters"].to_numpy()), 3
            )
    if peer_py and not a.skip_moran:
        h5 = a.work / f"{tag}_moran"
        subprocess.check_call(
            [
                sys.executable,
                "-m",
                "cli",
                "analyze",
                str(sample),
                "--out",
                str(h5),
                "--write-h5ad",
                "--no-report",
                "--quiet",
            ]
        )
        summary["moran_vs_squidpy"] = moran_check(peer_py, h5 / "analysis.h5ad", a.work)
    (a.work / f"{tag}_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
