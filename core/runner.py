"""The analysis stage as one call: read a sample, analyse it, write the artifacts.

Used by the CLI and by the analysis worker alike. The report stage
(:func:`core.report.write_report`) is a pure function of the directory this
writes, so a GPU worker can run it later from stored artifacts.
"""

from __future__ import annotations

import contextlib
import json
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np
from pydantic import JsonValue

from core import __version__
from core.config import Settings, analysis_budget, get_settings
from core.enums import JobStage, Layout, Unit
from core.errors import BadOption, MGSError
from core.jsonable import to_jsonable
from core.options import AnalysisOptions
from core.results import SCHEMA_VERSION, AnalysisRecord

if TYPE_CHECKING:
    import pandas as pd

    from core.analysis.claims import Claim
    from core.analysis.pipeline import AnalysisResult
    from core.io.readers import Sample
    from core.report.report_json import ReportProvenance

Progress = Callable[[str, float], None]

ARTIFACTS = ("spots.csv", "features.json", "analysis.json", "he_image.png", "leakage_context.json")


# The analysis stage's options are :class:`core.options.AnalysisOptions` (one model for the
# CLI, the API and the workers); ``AnalyzeOptions`` is kept as its name here.
AnalyzeOptions = AnalysisOptions


class AnalysisSummary(TypedDict, total=False):
    """What :func:`run_analysis_stage` returns (and a job stores under ``summary.analysis``).

    Every key but ``report`` is always set; the CLI adds ``report`` (the report's provenance).
    """

    n_spots: int
    layout: str
    timings: dict[str, float]
    files: list[str]
    n_domains: int
    bin_size_um: float | None
    notes: list[str]
    unit: str | None
    n_cells: int | None
    report: ReportProvenance


def _versions() -> dict[str, str]:
    out = {"medgemma-spatial": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "scipy", "pandas", "anndata", "h5py", "igraph", "faiss-cpu", "matplotlib"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def px_per_um_of(sample: Sample) -> float | None:
    """Full-resolution pixels per micrometre, from the spot diameter or the bin pitch."""
    cells = sample.cells
    if cells and (px_per_um := cells.get("px_per_um")):
        return float(px_per_um)
    if sample.spot_diameter_px:
        if sample.layout == Layout.VISIUM:
            return float(sample.spot_diameter_px) / 55.0
        if sample.layout == Layout.VISIUM_HD and sample.bin_size_um:
            return float(sample.spot_diameter_px) / float(sample.bin_size_um)
    return None


def check_out_dir(out_dir: str | Path) -> None:
    """Refuse an output path that exists and is not a folder (bad input, before any work).

    Parameters
    ----------
    out_dir
        The output folder; it need not exist.

    Raises
    ------
    core.errors.BadOption
        ``out_dir`` or its nearest existing parent is a file.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BadOption(
            f"--out {out} exists and is not a folder; name a folder (it is created if missing)"
        )
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BadOption(f"--out {out}: {parent} is a file, not a folder")
            break


def run_analysis_stage(
    sample_path: str | Path,
    out_dir: str | Path,
    options: AnalyzeOptions | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
    unpack_dir: str | Path | None = None,
) -> AnalysisSummary:
    """Read, check and analyse ``sample_path``; write the artifacts into ``out_dir``.

    Parameters
    ----------
    sample_path
        ``.h5ad``, Space Ranger ``outs/`` folder, or a ``.zip``/``.tar(.gz)`` of one.
    out_dir
        Output folder (created): ``spots.csv``, ``features.json``, ``analysis.json``,
        ``figures/`` and, if asked, ``analysis.h5ad``.
    options
        Analysis options (default :class:`~core.options.AnalysisOptions`).
    settings
        Settings (default: from the environment); their memory budget applies.
    progress
        ``progress(stage, fraction)``.
    unpack_dir
        Where an archive was (or is to be) unpacked, shared with the validation step.

    Returns
    -------
    dict
        A summary: ``n_spots``, ``layout``, ``timings``, ``files``, ``n_domains``, ``notes``, ...

    Raises
    ------
    core.errors.InputError
        Bad input (a subclass with a stable ``code``); nothing is written then.
    """
    from core.analysis.features import tissue_blind_features
    from core.analysis.pipeline import AnalysisParams, run_analysis
    from core.features import FeaturesRecord
    from core.io.readers import read_sample
    from core.markers import load_markers

    options = options or AnalyzeOptions()
    check_out_dir(out_dir)
    settings = settings or get_settings()
    settings = analysis_budget(settings)
    report = progress or (lambda stage, frac: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    report(JobStage.VALIDATING, 0.0)
    params = AnalysisParams(
        resolution=options.resolution,
        seed=options.seed,
        n_domains=options.n_domains,
        threads=settings.threads,
        blas_threads=settings.blas_threads,
    )
    params.validate()
    table = load_markers(options.markers, species=options.species, organs=options.organs)
    sample = read_sample(
        sample_path,
        settings,
        bin_size_um=options.bin_size,
        unpack_dir=unpack_dir,
        unit=options.unit,
    )
    cells = sample.cells
    cell_obs = sample.adata.obs[["area_um2", "n_bins", "in_nucleus_frac"]].copy() if cells else None
    timings["read"] = round(time.perf_counter() - t0, 3)
    report(JobStage.VALIDATING, 1.0)

    t1 = time.perf_counter()
    # cells lie irregularly: the analysis treats them as a generic layout (k-nearest-neighbour graph)
    res = run_analysis(
        sample.adata,
        Layout.GENERIC if cells else sample.layout,
        params,
        markers=table,
        px_per_um=px_per_um_of(sample),
        progress=report,
        release_input=True,
    )
    timings.update(res.timings)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t2 = time.perf_counter()
    from core.analysis.claims import assess_claims, withheld

    claims = assess_claims(res)
    held = withheld(claims)
    features = tissue_blind_features(
        res, image_available=sample.image is not None, bin_size_um=sample.bin_size_um, claims=claims
    )
    if cells:
        from core.io.hd_cells_output import cell_platform, write_cell_outputs

        features["platform"] = cell_platform(cells)
    _write_spots(out / "spots.csv", res, cell_obs)
    if cells:
        write_cell_outputs(out, sample, res)
    image_file = None
    if sample.image is not None:
        from PIL import Image

        from core.figures import _to_rgb

        rgb = _to_rgb(sample.image)
        assert rgb is not None
        Image.fromarray(rgb).save(out / "he_image.png")
        image_file = "he_image.png"
    figures = _figures(out, res, sample, held)
    timings["figures"] = round(time.perf_counter() - t2, 3)
    FeaturesRecord.model_validate(features).write(out / "features.json")
    _write_leakage_context(out / "leakage_context.json", sample, res, sample_path)
    if options.write_h5ad:
        _write_h5ad(out / "analysis.h5ad", sample, res)
    timings["analysis_total"] = round(time.perf_counter() - t1, 3)
    timings["total"] = round(time.perf_counter() - t0, 3)
    record = analysis_record(
        res, sample, options, table.source, timings, image_file, figures, claims
    )
    record.write(out / "analysis.json")
    report(JobStage.ANALYZING, 1.0)
    return {
        "n_spots": len(res.obs_names),
        "layout": res.layout,
        "timings": timings,
        "files": sorted(p.name for p in out.iterdir()),
        "n_domains": res.domains.k,
        "bin_size_um": sample.bin_size_um,
        "notes": list(sample.notes),
        "unit": sample.unit,
        "n_cells": int(cells["n"]) if cells else None,
    }


def _figures(out: Path, res: AnalysisResult, sample: Sample, held: dict[str, str]) -> list[str]:
    from core.figures import write_figures

    return write_figures(
        out / "figures",
        res,
        sample.image,
        sample.image_scalef,
        sample.spot_diameter_px,
        withheld=set(held),
    )


def _write_spots(path: Path, res: AnalysisResult, cell_obs: pd.DataFrame | None = None) -> None:
    import pandas as pd

    a = res.annotation
    df = pd.DataFrame(
        {
            "barcode": res.obs_names,
            "x": np.round(res.xy[:, 0], 2),
            "y": np.round(res.xy[:, 1], 2),
            "cluster": res.clusters,
            "domain": [f"D{d + 1}" for d in res.domains.labels],
            "cell_type": a.cell_type,
            "lineage": a.lineage,
            "confidence": np.round(a.confidence, 4),
            "entropy": np.round(a.entropy, 4),
            "total_counts": res.qc_metrics["total_counts"].astype(np.int64),
            "n_genes": res.qc_metrics["n_genes"],
            "pct_mito": np.round(res.qc_metrics["pct_mito"], 5),
            "pct_ribo": np.round(res.qc_metrics["pct_ribo"], 5),
            "neighbourhood_entropy": np.round(res.diversity, 4),
        }
    )
    if a.composition is not None:
        from core.markers import LINEAGES

        lc = a.lineage_composition
        for j, lin in enumerate(LINEAGES):
            df[f"frac_{lin}"] = np.round(lc[:, j], 4)
    if (
        cell_obs is not None
    ):  # Visium HD cells: area, 2 um bins per cell, fraction of bins in the nucleus
        for c in cell_obs.columns:
            df[c] = cell_obs[c].reindex(res.obs_names).to_numpy()
    df.to_csv(path, index=False)


def _write_leakage_context(
    path: Path, sample: Sample, res: AnalysisResult, sample_path: str | Path
) -> None:
    """Strings the report gate must never let into a prompt (ids, names from the input's metadata)."""
    from core.report.leakage import leakage_context_from_adata

    ctx = leakage_context_from_adata(sample.adata, [str(sample_path)])
    extra = sorted(sample.metadata_strings - set(ctx.get("metadata_strings", [])))
    ctx["metadata_strings"] = sorted(set(ctx.get("metadata_strings", [])) | set(extra[:2000]))
    path.write_text(json.dumps(ctx, indent=1))


def _write_h5ad(path: Path, sample: Sample, res: AnalysisResult) -> None:
    import anndata as ad
    import pandas as pd

    a = res.annotation
    obs = pd.DataFrame(
        {
            "cluster": pd.Categorical(res.clusters.astype(str)),
            "domain": pd.Categorical([f"D{d + 1}" for d in res.domains.labels]),
            "cell_type": pd.Categorical(a.cell_type.astype(str)),
            "lineage": pd.Categorical(a.lineage.astype(str)),
            "confidence": a.confidence.astype(np.float32),
            "entropy": a.entropy.astype(np.float32),
            **{k: v for k, v in res.qc_metrics.items()},
        },
        index=pd.Index(res.obs_names),
    )
    var = pd.DataFrame(index=pd.Index(res.gene_names))
    var["highly_variable"] = var.index.isin(res.hvg)
    out = ad.AnnData(X=res.xlog.materialize(), obs=obs, var=var)
    out.layers["counts"] = res.counts
    out.obsm["spatial"] = res.xy
    out.obsm["X_pca"] = res.pca
    out.obsm["celltype_probs"] = a.probs
    out.uns["celltype_names"] = list(a.cell_types)
    out.obsp["spatial_connectivities"] = res.spatial_graph
    out.write_h5ad(path)


def _confidence_meaning(layout: str) -> str:
    """One sentence on what a spot's confidence means (for analysis.json and the report)."""
    unit = Unit.SPOT if layout == Layout.VISIUM else Unit.BIN
    what = "dominant cell type" if layout == Layout.VISIUM else "cell type"
    return (
        f"A {unit}'s confidence is the estimated probability that its {what} call is right: "
        f"of calls at confidence 0.8, about 80% were right on the synthetic accuracy sweep "
        f"(docs/accuracy.md)."
    )


def _calibration(layout: str) -> dict[str, JsonValue]:
    from core.analysis.annotate import CALIB_FEATURE_DOC, CALIBRATION, CALIBRATION_SEEDS

    key = "visium" if layout == Layout.VISIUM else "hd"
    a, b = CALIBRATION[key]
    return {
        "method": "Platt scaling",
        "feature": CALIB_FEATURE_DOC,
        "a": a,
        "b": b,
        "fitted_on": f"synth.py samples, seeds {CALIBRATION_SEEDS[key]} "
        "(bench/accuracy.py --fit-calibration)",
    }


def analysis_record(
    res: AnalysisResult,
    sample: Sample,
    options: AnalyzeOptions,
    marker_source: str,
    timings: dict[str, float],
    image_file: str | None,
    figures: list[str],
    claims: list[Claim],
) -> AnalysisRecord:
    """The :class:`~core.results.AnalysisRecord` (``analysis.json``) of one analysis."""
    a = res.annotation
    order = np.argsort(-np.nan_to_num(res.moran["I"], nan=-np.inf))
    moran_top = [
        {
            "gene": str(res.hvg[j]),
            "I": round(float(res.moran["I"][j]), 6),
            "z": round(float(res.moran["z"][j]), 3),
            "pval_norm": float(f"{res.moran['pval_norm'][j]:.4g}"),
            "fdr_bh": float(f"{res.moran['pval_norm_fdr_bh'][j]:.4g}"),
        }
        for j in order[:100]
    ]
    types, cnts = np.unique(a.cell_type.astype(str), return_counts=True)
    lin, lcnt = np.unique(a.lineage.astype(str), return_counts=True)
    dom = res.domains
    domains = []
    for d in range(dom.k):
        m = dom.labels == d
        t_d, c_d = np.unique(a.cell_type[m].astype(str), return_counts=True)
        domains.append(
            {
                "id": f"D{d + 1}",
                "n": int(m.sum()),
                "cell_types": {
                    str(t): round(float(c) / m.sum(), 4) for t, c in zip(t_d, c_d, strict=True)
                },
                "markers": res.domain_markers.get(str(d), []),
            }
        )
    z_ct, ct_names = res.nhood_celltype
    z_lin, lin_names = res.nhood_lineage
    cells = sample.cells
    doc: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        # cells lie irregularly and were analysed as a generic layout; the record keeps the slide's
        "layout": sample.layout if cells else res.layout,
        "n_spots": len(res.obs_names),
        "n_genes": len(res.gene_names),
        "qc": res.qc.as_dict(),
        "qc_summary": {
            k: {
                "median": float(np.median(v)),
                "p5": float(np.percentile(v, 5)),
                "p95": float(np.percentile(v, 95)),
            }
            for k, v in res.qc_metrics.items()
        },
        "hvg": {"n": len(res.hvg)},
        "pca": {
            "n_comps": int(res.pca.shape[1]),
            "variance_ratio": [round(float(v), 5) for v in res.pca_variance_ratio],
        },
        "clusters": {
            "n": int(res.clusters.max() + 1),
            "sizes": np.bincount(res.clusters).tolist(),
            "markers": res.cluster_markers,
            "majority_cell_type": res.cluster_majority,
        },
        "annotation": {
            "marker_table": marker_source,
            "cell_types_scored": a.cell_types,
            "types_skipped_few_markers": a.skipped_types,
            "types_merged_into": a.merged_types,
            "markers_used": a.markers_used,
            "cell_type_counts": {str(t): int(c) for t, c in zip(types, cnts, strict=True)},
            "lineage_counts": {str(t): int(c) for t, c in zip(lin, lcnt, strict=True)},
            "median_confidence": float(np.median(a.confidence)),
            "confidence_meaning": _confidence_meaning(res.layout),
            "calibration": _calibration(res.layout),
            "n_unassigned": int(np.sum(a.cell_type.astype(str) == "unassigned")),
            "mean_entropy": float(np.mean(a.entropy)),
            "composition_estimated": a.composition is not None,
            "available": a.available,
            "unavailable_reason": a.unavailable_reason,
        },
        "domains": {
            "k": dom.k,
            "silhouette_by_k": dom.silhouette,
            "smoothing_sigma_um": dom.sigma_um,
            "choice": {
                "method": dom.method,
                "stability": dom.stability,
                "close_alternative": dom.close_alternative,
                "candidates": dom.candidates,
            },
            "domains": domains,
        },
        "spatial": {
            "graph": {
                "n_edges": int(res.spatial_graph.nnz // 2),
                "mean_degree": float(res.spatial_graph.nnz / max(len(res.obs_names), 1)),
            },
            "morans_i": {
                "n_tested": len(res.hvg),
                "n_significant_fdr05": int(np.sum(res.moran["pval_norm_fdr_bh"] < 0.05)),
                "top": moran_top,
            },
            "nhood_enrichment_celltype": {"names": ct_names, "z": np.round(z_ct, 3)},
            "nhood_enrichment_lineage": {"names": lin_names, "z": np.round(z_lin, 3)},
            "neighbourhood_entropy": {
                "mean": float(res.diversity.mean()),
                "median": float(np.median(res.diversity)),
            },
        },
        "image": {
            "file": image_file,
            "scalef": sample.image_scalef if image_file else None,
            "spot_diameter_px": sample.spot_diameter_px,
            "source": sample.image_name,
        },
        "figures": figures,
        "provenance": {
            "input_sha256": sample.sha256,
            "input_format": sample.source_format,
            "preflight": sample.preflight.as_dict() if sample.preflight else None,
            "notes": sample.notes,
            "bin_size": getattr(sample, "bin_choice", None),
            "parameters": res.params.as_dict(),
            "options": options.as_dict(),
            "seed": options.seed,
            "versions": _versions(),
            "timings_s": timings,
            "command": " ".join(sys.argv[:1]),
        },
        "unit": Unit.CELL if cells else None,
        "cells": dict(cells) if cells else None,
        "claims": [c.as_dict() for c in claims],
    }
    return AnalysisRecord.model_validate(to_jsonable(doc))


__all__ = ["ARTIFACTS", "AnalyzeOptions", "MGSError", "run_analysis_stage"]
