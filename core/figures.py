"""Figures a pathologist looks at, drawn with matplotlib (Agg, no display).

Large samples (Visium HD) are drawn as a raster on the bin grid rather than as
hundreds of thousands of vector markers, so figures stay small and fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.analysis.pipeline import AnalysisResult
from core.markers import LINEAGES

SCATTER_MAX = 30_000
SAVE = {
    "dpi": 90,
    "pil_kwargs": {"compress_level": 1},
}  # fast PNG encoding; sizes fixed, no tight bbox
LINEAGE_COLOURS = {
    "epithelial": "#e6550d",
    "stromal": "#31a354",
    "endothelial": "#d62728",
    "lymphoid": "#3182bd",
    "myeloid": "#9467bd",
    "neural/glial": "#8c564b",
    "other": "#7f7f7f",
}


TITLE_SIZE = 13
LEGEND_SIZE = 9


# Domain colours: hues the lineage colours do not use, so a domain is never mistaken for a lineage.
DOMAIN_PALETTE = (
    "#17becf",
    "#e377c2",
    "#bcbd22",
    "#e6ab02",
    "#1f3b73",
    "#8dd3c7",
    "#a6761d",
    "#fb9a99",
    "#6a3d9a",
    "#b15928",
    "#80b1d3",
    "#666666",
)


def domain_colours(k: int) -> list[str]:
    """The colour of each domain D1..Dk, the same in every figure."""
    return [DOMAIN_PALETTE[i % len(DOMAIN_PALETTE)] for i in range(k)]


def cell_type_colours(cell_types: list[str], lineage_of: dict[str, str]) -> dict[str, str]:
    """Each cell type in a shade of its lineage's colour (the lineage figure's colours).

    The first cell type of a lineage takes the lineage colour itself; the next ones are
    lighter and darker shades, so a cell type can be traced to its lineage in any figure.
    """
    from matplotlib.colors import to_hex, to_rgb

    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    shades = (0.0, 0.35, -0.35, 0.6, -0.55, 0.8)
    for ct in sorted(cell_types):
        lin = lineage_of.get(ct, "other")
        i = seen.get(lin, 0)
        seen[lin] = i + 1
        base = np.array(to_rgb(LINEAGE_COLOURS.get(lin, LINEAGE_COLOURS["other"])))
        f = shades[i % len(shades)]
        rgb = base + (1 - base) * f if f >= 0 else base * (1 + f)
        out[ct] = to_hex(tuple(float(x) for x in np.clip(rgb, 0, 1)))  # type: ignore[arg-type]
    return out


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _palette(k: int) -> np.ndarray:
    plt = _plt()
    cmap = plt.get_cmap("tab20" if k > 10 else "tab10")
    return np.array([cmap(i % cmap.N) for i in range(k)])


def _draw_layer(
    ax: Any,
    xy: np.ndarray,
    colours: np.ndarray,
    size_px: float,
    extent: tuple[float, float, float, float] | None,
) -> None:
    """Spots as markers (small samples) or a raster of bins (large ones). xy in image pixels."""
    n = len(xy)
    if n <= SCATTER_MAX:
        fig = ax.figure
        # marker size in points^2 from the spot diameter in data units
        x0, x1 = ax.get_xlim()
        width_px = abs(x1 - x0) or 1.0
        ax_w_pt = fig.get_size_inches()[0] * ax.get_position().width * 72
        d_pt = max(0.5, size_px / width_px * ax_w_pt)
        ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=d_pt**2, linewidths=0, rasterized=True)
        return
    x0, x1, y1, y0 = (
        extent if extent else (xy[:, 0].min(), xy[:, 0].max(), xy[:, 1].max(), xy[:, 1].min())
    )
    res = 900
    W = int(res)
    H = max(1, int(res * (y1 - y0) / max(x1 - x0, 1e-9)))
    ix = np.clip(((xy[:, 0] - x0) / max(x1 - x0, 1e-9) * (W - 1)).astype(int), 0, W - 1)
    iy = np.clip(((xy[:, 1] - y0) / max(y1 - y0, 1e-9) * (H - 1)).astype(int), 0, H - 1)
    img = np.zeros((H, W, 4), dtype=np.float32)
    img[iy, ix] = colours
    ax.imshow(img, extent=(x0, x1, y1, y0), interpolation="nearest")


def _base(
    ax: Any, image: np.ndarray | None, xy_img: np.ndarray, pad: float
) -> tuple[float, float, float, float]:
    x0, y0 = xy_img.min(axis=0) - pad
    x1, y1 = xy_img.max(axis=0) + pad
    if image is not None:
        ax.imshow(image, alpha=0.55)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_axis_off()
    return (x0, x1, y1, y0)


def _to_rgb(image: np.ndarray | None) -> np.ndarray | None:
    if image is None:
        return None
    im = np.asarray(image)
    if im.dtype.kind == "f":
        im = np.clip(im * (255.0 if im.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if im.ndim == 2:
        im = np.stack([im] * 3, axis=-1)
    if im.shape[-1] == 4:
        im = im[..., :3]
    return im.astype(np.uint8)


def categorical_map(
    path: Path,
    res: AnalysisResult,
    labels: np.ndarray,
    names: list[str],
    title: str,
    image: np.ndarray | None,
    scalef: float,
    spot_px: float,
    colours: dict[str, str] | None = None,
) -> None:
    plt = _plt()
    xy = res.xy * scalef
    fig, ax = plt.subplots(figsize=(8.5, 6.5))
    fig.subplots_adjust(left=0.01, right=0.72, top=0.94, bottom=0.01)
    extent = _base(ax, image, xy, pad=spot_px * scalef * 2)
    pal = _palette(len(names))
    if colours:
        from matplotlib.colors import to_rgba

        pal = np.array([to_rgba(colours.get(nm, "#7f7f7f")) for nm in names])
    _draw_layer(ax, xy, pal[labels], spot_px * scalef, extent)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=pal[i], label=nm) for i, nm in enumerate(names)
    ]
    ax.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        fontsize=LEGEND_SIZE,
        frameon=False,
    )
    ax.set_title(title, fontsize=TITLE_SIZE)
    fig.savefig(path, **SAVE)
    plt.close(fig)


def continuous_maps(
    path: Path,
    res: AnalysisResult,
    values: list[np.ndarray],
    titles: list[str],
    image: np.ndarray | None,
    scalef: float,
    spot_px: float,
    ncols: int = 3,
) -> None:
    plt = _plt()
    xy = res.xy * scalef
    nrows = int(np.ceil(len(values) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.8 * nrows), squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.97, top=0.93, bottom=0.02, wspace=0.15, hspace=0.2)
    cmap = plt.get_cmap("viridis")
    for ax, v, t in zip(axes.ravel(), values, titles, strict=False):
        extent = _base(ax, None, xy, pad=spot_px * scalef * 2)
        lo, hi = np.nanpercentile(v, [1, 99]) if len(v) else (0, 1)
        norm = np.clip((v - lo) / max(hi - lo, 1e-12), 0, 1)
        _draw_layer(ax, xy, cmap(norm), spot_px * scalef, extent)
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(lo, hi))
        fig.colorbar(sm, ax=ax, fraction=0.046, pad=0.02)
        ax.set_title(t, fontsize=TITLE_SIZE - 1)
    for ax in axes.ravel()[len(values) :]:
        ax.set_axis_off()
    fig.savefig(path, **SAVE)
    plt.close(fig)


def _domain_means(res: AnalysisResult) -> np.ndarray:
    comp = res.annotation.lineage_composition
    return np.array([comp[res.domains.labels == d].mean(axis=0) for d in range(res.domains.k)])


def _composition_axes(ax: Any, res: AnalysisResult, legend: bool = True) -> None:
    """Stacked lineage composition per domain; tick labels in the domains' colours."""
    M = _domain_means(res)
    k = res.domains.k
    names = [f"D{d + 1}" for d in range(k)]
    bottom = np.zeros(k)
    for j, lin in enumerate(LINEAGES):
        if M[:, j].max() < 0.005:
            continue
        ax.barh(names, M[:, j], left=bottom, color=LINEAGE_COLOURS[lin], label=lin)
        bottom += M[:, j]
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean estimated lineage share", fontsize=LEGEND_SIZE + 1)
    for tick, col in zip(ax.get_yticklabels(), domain_colours(k), strict=False):
        tick.set_color(col)
        tick.set_fontweight("bold")
    ax.tick_params(labelsize=LEGEND_SIZE + 1)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if legend:
        ax.legend(
            fontsize=LEGEND_SIZE,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.16),
            ncol=3,
            frameon=False,
        )


def composition_bars(path: Path, res: AnalysisResult) -> None:
    plt = _plt()
    k = res.domains.k
    fig, ax = plt.subplots(figsize=(6.5, max(3.2, 0.45 * k + 2.2)))
    fig.subplots_adjust(left=0.12, right=0.96, top=0.9, bottom=0.32)
    _composition_axes(ax, res)
    ax.set_title("Lineage composition per spatial domain", fontsize=TITLE_SIZE)
    fig.savefig(path, **SAVE)
    plt.close(fig)


def domain_map_with_composition(
    path: Path, res: AnalysisResult, image: np.ndarray | None, scalef: float, spot_px: float
) -> None:
    """The domain map with, beside it, one composition bar per domain (same colours)."""
    plt = _plt()
    k = res.domains.k
    xy = res.xy * scalef
    fig = plt.figure(figsize=(12, 6.2))
    ax = fig.add_axes((0.01, 0.03, 0.55, 0.88))
    extent = _base(ax, image, xy, pad=spot_px * scalef * 2)
    from matplotlib.colors import to_rgba

    pal = np.array([to_rgba(c) for c in domain_colours(k)])
    _draw_layer(ax, xy, pal[res.domains.labels], spot_px * scalef, extent)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=pal[i], label=f"D{i + 1}") for i in range(k)
    ]
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.0, 0.0),
        ncol=min(k, 8),
        fontsize=LEGEND_SIZE,
        frameon=False,
    )
    ax.set_title("Spatial domains", fontsize=TITLE_SIZE)
    bx = fig.add_axes((0.64, 0.3, 0.33, 0.6))
    if res.annotation.lineage_composition is not None and len(res.annotation.lineage_composition):
        _composition_axes(bx, res)
        bx.set_title("What each domain is made of", fontsize=TITLE_SIZE)
    else:
        bx.set_axis_off()
    fig.savefig(path, **SAVE)
    plt.close(fig)


def nhood_heatmap(
    path: Path, z: np.ndarray, names: list[str], title: str, colours: dict[str, str] | None = None
) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(0.45 * len(names) + 4.5, 0.45 * len(names) + 3.2))
    fig.subplots_adjust(left=0.3, right=0.95, top=0.92, bottom=0.3)
    lim = float(np.nanmax(np.abs(z))) if z.size else 1.0
    im = ax.imshow(z, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=LEGEND_SIZE)
    ax.set_yticks(range(len(names)), names, fontsize=LEGEND_SIZE)
    if colours:
        for tick in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
            tick.set_color(colours.get(tick.get_text(), "#222222"))
    fig.colorbar(im, ax=ax, label="enrichment z-score (red: together, blue: apart)")
    ax.set_title(title, fontsize=TITLE_SIZE)
    fig.savefig(path, **SAVE)
    plt.close(fig)


def write_figures(
    out: Path,
    res: AnalysisResult,
    image: np.ndarray | None,
    scalef: float,
    spot_px: float | None,
    withheld: set[str] | None = None,
) -> list[str]:
    """Write every figure under ``out`` (created); returns their file names.

    ``withheld`` names the claims (:mod:`core.analysis.claims`) the data cannot carry: their
    figures are not drawn (no domain map of unseparated domains, no all-"unassigned" maps,
    no empty heatmap, no spatially-variable-genes figure with nothing significant).
    """
    held = withheld or set()
    out.mkdir(parents=True, exist_ok=True)
    image = _to_rgb(image)
    if image is None:
        scalef = 1.0
    if not spot_px:
        from scipy.spatial import cKDTree

        d, _ = cKDTree(res.xy).query(res.xy[: min(len(res.xy), 1000)], k=2)
        spot_px = float(np.median(d[:, 1])) * 0.9
    names: list[str] = []
    if "domains" not in held:
        domain_map_with_composition(out / "domains.png", res, image, scalef, spot_px)
        names.append("domains.png")
    annotated = "annotation" not in held and bool(
        np.any(res.annotation.cell_type.astype(str) != "unassigned")
    )
    ct_colours: dict[str, str] | None = None
    if annotated:
        ct_codes = np.unique(res.annotation.cell_type.astype(str), return_inverse=True)
        lineage_of = {
            str(c): str(li)
            for c, li in zip(
                res.annotation.cell_type.astype(str), res.annotation.lineage, strict=False
            )
        }
        ct_names = [str(c) for c in ct_codes[0]]
        ct_colours = cell_type_colours(ct_names, lineage_of)
        categorical_map(
            out / "cell_types.png",
            res,
            ct_codes[1],
            ct_names,
            "Dominant cell type per spot",
            image,
            scalef,
            spot_px,
            colours=ct_colours,
        )
        names.append("cell_types.png")
        lin = np.array([LINEAGES.index(x) for x in res.annotation.lineage])
        categorical_map(
            out / "lineages.png",
            res,
            lin,
            list(LINEAGES),
            "Dominant lineage per spot",
            image,
            scalef,
            spot_px,
            colours=LINEAGE_COLOURS,
        )
        names.append("lineages.png")
    m = res.qc_metrics
    qc_vals = [np.log10(m["total_counts"] + 1), m["n_genes"].astype(float), 100 * m["pct_mito"]]
    qc_titles = [
        "Transcripts per spot (log10 UMIs)",
        "Genes detected per spot",
        "Mitochondrial transcripts (%)",
    ]
    if annotated:
        qc_vals.append(res.annotation.confidence)
        qc_titles.append("Cell-type call confidence (0-1)")
    continuous_maps(out / "qc_maps.png", res, qc_vals, qc_titles, None, scalef, spot_px, ncols=2)
    names.append("qc_maps.png")
    if annotated and "domains" not in held:
        composition_bars(out / "composition.png", res)
        names.append("composition.png")
    z, ct = res.nhood_celltype
    if annotated and "neighbourhood_enrichment" not in held and len(ct) >= 2:
        nhood_heatmap(
            out / "nhood_enrichment.png",
            z,
            ct,
            "Which cell types sit next to each other",
            colours=ct_colours,
        )
        names.append("nhood_enrichment.png")
    I_vals = np.nan_to_num(res.moran["I"], nan=-np.inf)
    top = np.argsort(-I_vals)[:6]
    if len(top) and "spatially_variable_genes" not in held:
        hv_cols = (
            np.searchsorted(res.gene_names, res.hvg)
            if np.all(res.gene_names[:-1] <= res.gene_names[1:])
            else None
        )
        lookup = {g: i for i, g in enumerate(res.gene_names)}
        cols = [lookup[str(res.hvg[j])] if hv_cols is None else int(hv_cols[j]) for j in top]
        sub = res.xlog.columns(cols)  # one pass over the counts for all the genes shown
        vals = [sub[:, i] for i in range(len(cols))]
        titles = [f"{res.hvg[j]} (Moran's I {res.moran['I'][j]:.2f})" for j in top]
        continuous_maps(
            out / "spatially_variable_genes.png", res, vals, titles, None, scalef, spot_px
        )
        names.append("spatially_variable_genes.png")
    return names
