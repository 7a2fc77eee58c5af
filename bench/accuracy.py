#!/usr/bin/env python3
"""Accuracy sweep: our analysis on many synth.py samples with known ground truth.

Each sample is made in memory by ../shared/bench/synth.py (both layouts, all three
domain shapes, 3-8 domains, sequencing depth 0.4-1.5, several seeds), analysed once by
``core.analysis.pipeline.run_analysis`` with the shipped marker table, and annotated
again with PanglaoDB restricted to the sample's organ plus the pan-tissue systems
(``--organ``) and with all of PanglaoDB (no organ). Per sample and in summary it prints:

  lin      lineage accuracy (dominant type's lineage; Visium: of the spot's dominant type)
  type     cell-type accuracy ("unassigned" counts as wrong)
  assigned share of units given a cell type (not "unassigned")
  ari      adjusted Rand index of our spatial domains against the true domains
  k        chosen vs true domain count
  rmse     Visium: per-spot lineage-composition error against the true proportions
  r        Visium: Pearson correlation of estimated vs true fraction, per lineage (median)
  ece      expected calibration error of the cell-type confidence against correctness
           (10 equal-width bins; pooled over all units of the group in the summary)

Tuning vs reporting: constants of the annotation were chosen on seeds 0-9 only; the
figures in docs/accuracy.md are on seeds 100-104 (``--seeds 100-104``), which nothing was
tuned on. ``--fit-calibration`` fits the confidence calibration (Platt scaling) on the
given seeds and prints the constants that go into core/analysis/annotate.py.

Usage (from the project root, with the project's venv):
  python bench/accuracy.py --tier full --seeds 100-104 --out bench/results/accuracy
  python bench/accuracy.py --tier small --seeds 0-1
  python bench/accuracy.py --tier full --seeds 0-2 --fit-calibration
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
for cand in (ROOT.parent / "shared", Path("/work/shared")):
    if (cand / "bench" / "synth.py").is_file():
        SHARED = cand
        break
SYNTH = SHARED / "bench" / "synth.py"
PANGLAO = SHARED / "data" / "PanglaoDB_markers_27_Mar_2020.tsv"

LAYOUTS = ("hd", "visium")
SHAPES = ("voronoi", "layers", "mixed")
TABLES = ("default", "panglao_organ", "panglao_all")
# Organs a user would name for each synth.py tissue: its own organ plus the pan-tissue systems
# (immune cells, stroma, vessels, epithelium, smooth muscle) that every section holds.
PAN_TISSUE = ["Immune system", "Connective tissue", "Vasculature", "Epithelium", "Smooth muscle"]
TISSUE_ORGAN = {"colon": "GI tract", "breast": "Mammary gland", "brain": "Brain", "lung": "Lungs"}
TIERS = {  # units per sample (HD bins, Visium spots) and genes
    "small": {"hd": 3000, "visium": 800, "genes": 2000},
    "full": {"hd": 12000, "visium": 2500, "genes": 4000},
}


def load_synth() -> Any:
    if not SYNTH.is_file():
        raise SystemExit(f"synth.py not found at {SYNTH}")
    spec = importlib.util.spec_from_file_location("mgs_synth", SYNTH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@dataclass
class Config:
    seed: int
    layout: str
    shape: str
    domains: int
    depth: float

    @property
    def name(self) -> str:
        return f"{self.layout}-{self.shape}-k{self.domains}-d{self.depth:.2f}-s{self.seed}"


def sweep(seeds: list[int], layouts: tuple[str, ...]) -> list[Config]:
    """Every layout x shape per seed; domain count (3-8) and depth (0.4-1.5) drawn from the seed."""
    out = []
    for s in seeds:
        rng = np.random.default_rng(10_000 + s)
        for lay in layouts:
            for sh in SHAPES:
                k = int(rng.integers(3, 9))
                d = float(np.round(rng.uniform(0.4, 1.5), 2))
                out.append(Config(s, lay, sh, k, d))
    return out


def make(synth: Any, cfg: Config, tier: str) -> tuple[Any, dict[str, Any]]:
    import anndata as ad
    import pandas as pd

    n = TIERS[tier][cfg.layout]
    sim = synth.simulate(
        cfg.layout, n, TIERS[tier]["genes"], 8, cfg.domains, cfg.seed, cfg.shape, cfg.depth
    )
    obs = pd.DataFrame(index=[f"u{i}" for i in range(n)])
    a = ad.AnnData(X=sim["X"].astype(np.float32), obs=obs, var=pd.DataFrame(index=sim["genes"]))
    a.obsm["spatial"] = sim["xy"]
    tissue = list(synth.TISSUES)[cfg.seed % len(synth.TISSUES)]
    return a, {**sim, "tissue": tissue}


def ari(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


def ece(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: sum over equal-width bins of |accuracy - mean confidence| x share."""
    if len(conf) == 0:
        return float("nan")
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    e = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            e += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(e)


def _hist(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> np.ndarray:
    """Per confidence bin: units, summed confidence, summed correctness (to pool ECE over samples)."""
    idx = np.minimum((np.asarray(conf) * bins).astype(int), bins - 1)
    return np.stack(
        [
            np.bincount(idx, minlength=bins),
            np.bincount(idx, conf, minlength=bins),
            np.bincount(idx, correct.astype(float), minlength=bins),
        ]
    )


def tables(tissue: str) -> dict[str, Any]:
    from core.markers import load_default_markers, load_panglao

    out = {"default": load_default_markers()}
    if PANGLAO.is_file():
        out["panglao_organ"] = load_panglao(PANGLAO, organs=[*PAN_TISSUE, TISSUE_ORGAN[tissue]])
        out["panglao_all"] = load_panglao(PANGLAO)
    return out


_TABLE_CACHE: dict[str, dict[str, Any]] = {}


def evaluate(
    synth: Any, cfg: Config, tier: str, which: tuple[str, ...], collect: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    from core.analysis import annotate as ann
    from core.analysis import preprocess as pp
    from core.analysis.pipeline import AnalysisParams, run_analysis
    from core.markers import LINEAGES, lineage_of

    adata, sim = make(synth, cfg, tier)
    names = np.asarray(adata.obs_names)
    layout = "visium" if cfg.layout == "visium" else "visium_hd"
    spot_um = 55.0 if cfg.layout == "visium" else 8.0
    t0 = time.perf_counter()
    res = run_analysis(adata, layout, AnalysisParams(seed=0), px_per_um=sim["spot_px"] / spot_um)
    t_run = time.perf_counter() - t0
    keep = np.isin(names, res.obs_names)
    types = list(sim["types"])
    true_type = np.asarray(types, dtype=object)[sim["dominant"][keep]]
    true_lin = np.array([lineage_of(t) for t in true_type], dtype=object)
    props = sim["props"][keep]
    true_lcomp = np.zeros((len(props), len(LINEAGES)))
    for j, t in enumerate(types):
        true_lcomp[:, LINEAGES.index(lineage_of(t))] += props[:, j]
    dom_true = sim["domain"][keep]
    dom_ari = ari(dom_true, res.domains.labels)
    if sim["tissue"] not in _TABLE_CACHE:
        _TABLE_CACHE[sim["tissue"]] = tables(sim["tissue"])
    tabs = _TABLE_CACHE[sim["tissue"]]
    knn = None
    rows = []
    for tname in which:
        if tname not in tabs:
            continue
        if tname == "default":
            a = res.annotation
        else:
            if knn is None and layout != "visium":
                knn, _ = pp.knn_graph(
                    res.pca, min(res.params.n_neighbors, len(res.obs_names) - 1), seed=0
                )
            a = ann.annotate(
                res.counts,
                res.gene_names,
                tabs[tname],
                multi_cell=(layout == "visium"),
                knn_idx=knn,
                spatial_graph=res.spatial_graph,
            )
        lin_ok = a.lineage.astype(str) == true_lin.astype(str)
        type_ok = a.cell_type.astype(str) == true_type.astype(str)
        top_ok = (
            a.top_type.astype(str) == true_type.astype(str) if hasattr(a, "top_type") else type_ok
        )
        row: dict[str, Any] = {
            "sample": cfg.name,
            "seed": cfg.seed,
            "layout": cfg.layout,
            "shape": cfg.shape,
            "depth": cfg.depth,
            "table": tname,
            "n": int(keep.sum()),
            "lineage_acc": float(lin_ok.mean()),
            "type_acc": float(type_ok.mean()),
            "assigned": float(np.mean(a.cell_type.astype(str) != "unassigned")),
            "domain_ari": dom_ari,
            "k_true": cfg.domains,
            "k_chosen": int(res.domains.k),
            "ece": ece(a.confidence, top_ok),
            "median_conf": float(np.median(a.confidence)),
            "seconds": round(t_run, 1),
            "_hist": _hist(a.confidence, top_ok),
        }
        if layout == "visium" and a.composition is not None:
            est = a.lineage_composition
            row["comp_rmse"] = float(np.sqrt(np.mean((est - true_lcomp) ** 2)))
            rs = {}
            for j, lin in enumerate(LINEAGES):
                if true_lcomp[:, j].std() > 0.02 and est[:, j].std() > 0:
                    rs[lin] = round(float(np.corrcoef(est[:, j], true_lcomp[:, j])[0, 1]), 3)
            row["comp_r"] = rs
            row["comp_r_median"] = float(np.median(list(rs.values()))) if rs else float("nan")
        rows.append(row)
        if collect is not None and hasattr(a, "calib_feature"):
            collect.append(
                {"layout": cfg.layout, "table": tname, "x": a.calib_feature, "y": top_ok}
            )
    return rows


def parse_seeds(s: str) -> list[int]:
    out: list[int] = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def _f(x: Any, nd: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{nd}f}"


def summarise(
    rows: list[dict[str, Any]], pooled_ece: dict[tuple[str, str], float]
) -> list[dict[str, Any]]:
    out = []
    for lay in LAYOUTS:
        for t in TABLES:
            rs = [r for r in rows if r["layout"] == lay and r["table"] == t]
            if not rs:
                continue

            def med(k: str, rs: list[dict[str, Any]] = rs) -> float:
                v = [r[k] for r in rs if k in r and not np.isnan(r[k])]
                return float(statistics.median(v)) if v else float("nan")

            def mn(k: str, rs: list[dict[str, Any]] = rs) -> float:
                v = [r[k] for r in rs if k in r and not np.isnan(r[k])]
                return float(min(v)) if v else float("nan")

            def mx(k: str, rs: list[dict[str, Any]] = rs) -> float:
                v = [r[k] for r in rs if k in r and not np.isnan(r[k])]
                return float(max(v)) if v else float("nan")

            out.append(
                {
                    "layout": lay,
                    "table": t,
                    "samples": len(rs),
                    "lineage_median": med("lineage_acc"),
                    "lineage_min": mn("lineage_acc"),
                    "type_median": med("type_acc"),
                    "assigned_median": med("assigned"),
                    "ari_median": med("domain_ari"),
                    "ari_min": mn("domain_ari"),
                    "k_exact": sum(r["k_chosen"] == r["k_true"] for r in rs),
                    "rmse_median": med("comp_rmse"),
                    "rmse_max": mx("comp_rmse"),
                    "r_median": med("comp_r_median"),
                    "ece_pooled": pooled_ece.get((lay, t), float("nan")),
                }
            )
    return out


def markdown(summary: list[dict[str, Any]], rows: list[dict[str, Any]], cmd: str) -> str:
    lines = [
        f"Command: `{cmd}`",
        "",
        "| layout | marker table | samples | lineage median | lineage min | cell type median | assigned "
        "| domain ARI median | ARI min | k exact | comp. RMSE median | RMSE max | comp. r median | ECE |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['layout']} | {s['table']} | {s['samples']} | {_f(s['lineage_median'])} | "
            f"{_f(s['lineage_min'])} | {_f(s['type_median'])} | {_f(s['assigned_median'], 2)} | "
            f"{_f(s['ari_median'])} | {_f(s['ari_min'])} | {s['k_exact']}/{s['samples']} | "
            f"{_f(s['rmse_median'])} | {_f(s['rmse_max'])} | {_f(s['r_median'])} | {_f(s['ece_pooled'])} |"
        )
    lines += [
        "",
        "| sample | table | lineage | type | assigned | ARI | k chosen/true | RMSE | ECE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['sample']} | {r['table']} | {_f(r['lineage_acc'])} | {_f(r['type_acc'])} | "
            f"{_f(r['assigned'], 2)} | {_f(r['domain_ari'])} | {r['k_chosen']}/{r['k_true']} | "
            f"{_f(r.get('comp_rmse'))} | {_f(r['ece'])} |"
        )
    return "\n".join(lines) + "\n"


def fit_platt(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: P(correct) = 1 / (1 + exp(-(a x + b))), by logistic regression (Newton)."""
    a, b = 1.0, 0.0
    X = np.stack([x, np.ones_like(x)], 1)
    w = np.array([a, b])
    for _ in range(100):
        p = 1 / (1 + np.exp(-(X @ w)))
        g = X.T @ (y - p)
        H = (X * (p * (1 - p))[:, None]).T @ X + 1e-9 * np.eye(2)
        step = np.linalg.solve(H, g)
        w = w + step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tier", choices=list(TIERS), default="full")
    ap.add_argument("--seeds", default="100-104", help="e.g. 100-104 or 0,1,2 (tune on 0-9 only)")
    ap.add_argument(
        "--tables", default=",".join(TABLES), help=f"comma-separated subset of {','.join(TABLES)}"
    )
    ap.add_argument("--layouts", default=",".join(LAYOUTS))
    ap.add_argument("--out", type=Path, help="folder for accuracy.json and accuracy.md")
    ap.add_argument(
        "--fit-calibration",
        action="store_true",
        help="fit the Platt calibration constants on these seeds and print them",
    )
    a = ap.parse_args(argv)
    seeds = parse_seeds(a.seeds)
    which = tuple(t for t in a.tables.split(",") if t)
    layouts = tuple(x for x in a.layouts.split(",") if x)
    bad = [t for t in which if t not in TABLES] + [x for x in layouts if x not in LAYOUTS]
    if bad:
        print(f"unknown table or layout: {', '.join(bad)}", file=sys.stderr)
        return 2
    synth = load_synth()
    rows: list[dict[str, Any]] = []
    collect: list[dict[str, Any]] | None = [] if a.fit_calibration else None
    t0 = time.perf_counter()
    print(
        f"{'sample':38s} {'table':14s} {'lin':>6s} {'type':>6s} {'asgn':>5s} {'ari':>6s} {'k':>5s} "
        f"{'rmse':>6s} {'r':>6s} {'ece':>6s}",
        flush=True,
    )
    for cfg in sweep(seeds, layouts):
        for r in evaluate(synth, cfg, a.tier, which, collect):
            rows.append(r)
            print(
                f"{r['sample']:38s} {r['table']:14s} {r['lineage_acc']:6.3f} {r['type_acc']:6.3f} "
                f"{r['assigned']:5.2f} {r['domain_ari']:6.3f} {r['k_chosen']:>2d}/{r['k_true']:<2d} "
                f"{_f(r.get('comp_rmse')):>6s} {_f(r.get('comp_r_median')):>6s} {r['ece']:6.3f}",
                flush=True,
            )
    # pooled ECE: recompute per group from the stored per-sample confidences
    pooled = pooled_ece_from(rows)
    summary = summarise(rows, pooled)
    print(
        f"\nsummary ({len({r['sample'] for r in rows})} samples, {time.perf_counter() - t0:.0f} s):"
    )
    print(
        f"{'layout':7s} {'table':14s} {'n':>3s} {'lin med':>8s} {'lin min':>8s} {'type med':>8s} "
        f"{'ari med':>8s} {'ari min':>8s} {'k ok':>5s} {'rmse med':>8s} {'r med':>6s} {'ece':>6s}"
    )
    for s in summary:
        print(
            f"{s['layout']:7s} {s['table']:14s} {s['samples']:3d} {_f(s['lineage_median']):>8s} "
            f"{_f(s['lineage_min']):>8s} {_f(s['type_median']):>8s} {_f(s['ari_median']):>8s} "
            f"{_f(s['ari_min']):>8s} {s['k_exact']:>2d}/{s['samples']:<2d} {_f(s['rmse_median']):>8s} "
            f"{_f(s['r_median']):>6s} {_f(s['ece_pooled']):>6s}"
        )
    if collect is not None:
        from core.analysis.annotate import CALIB_FEATURE_DOC

        print(f"\nPlatt calibration fitted on seeds {a.seeds} ({CALIB_FEATURE_DOC}):")
        for lay in layouts:
            c = [d for d in collect if d["layout"] == lay]
            if c:
                x = np.concatenate([d["x"] for d in c])
                y = np.concatenate([d["y"] for d in c]).astype(float)
                pa, pb = fit_platt(x, y)
                print(f"  {lay}: a={pa:.4f} b={pb:.4f} (n={len(x)})")
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        cmd = "python bench/accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:])
        (a.out / "accuracy.json").write_text(
            json.dumps(
                {"command": cmd, "summary": summary, "samples": rows}, indent=1, default=float
            )
        )
        (a.out / "accuracy.md").write_text(markdown(summary, rows, cmd))
        print(f"wrote {a.out / 'accuracy.json'} and {a.out / 'accuracy.md'}")
    return 0


def pooled_ece_from(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """ECE pooled over every unit of a (layout, table) group (from the per-sample histograms)."""
    out: dict[tuple[str, str], float] = {}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["layout"], r["table"]), []).append(r)
    for key, rs in groups.items():
        n = np.zeros(10)
        sc = np.zeros(10)
        so = np.zeros(10)
        for r in rs:
            h = r["_hist"]
            n += h[0]
            sc += h[1]
            so += h[2]
        tot = n.sum()
        out[key] = float(np.sum(np.abs(so - sc)) / tot) if tot else float("nan")
    for r in rows:
        r.pop("_hist", None)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
