"""A seeded generator of small Visium / Visium HD samples with known ground truth.

Used by ``medgemma-spatial demo`` and the tests (a fresh clone has no
``../shared``). Cell types and their markers come from the shipped default
marker table; each marker is up-regulated 15-60x over a heavy-tailed
baseline shared by all types; spatial domains are a warped Voronoi partition,
each with its own cell-type composition and a few hundred domain-specific
genes. Visium spots mix ~7 cells; HD bins hold one. Tissue-identifying
metadata (a sample id and an organ name) is planted on purpose so that the
report's leakage gate has something to catch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from core.markers import load_default_markers

DEFAULT_TYPES = (
    "Epithelial cells",
    "Fibroblasts",
    "Endothelial cells",
    "Macrophages",
    "T cells",
    "B cells",
    "Smooth muscle cells",
    "Plasma cells",
)


@dataclass
class SynthSample:
    adata: object  # anndata.AnnData
    domain: np.ndarray
    dominant_type: np.ndarray
    types: list[str]


def make_sample(
    layout: str = "visium",
    n_spots: int = 1500,
    n_genes: int = 3000,
    n_domains: int = 4,
    seed: int = 0,
    types: tuple[str, ...] = DEFAULT_TYPES,
    tissue: str = "colon",
) -> SynthSample:
    """Simulate a sample; raw counts in X (CSR int32), coordinates in full-resolution pixels."""
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    table = load_default_markers()
    markers = {t: table.genes[t][:12] for t in types}
    marker_genes = list(dict.fromkeys(g for t in types for g in markers[t]))
    mito = [f"MT-{g}" for g in ("ND1", "ND2", "CO1", "CO2", "ATP6", "CO3", "ND4", "CYB")]
    filler = [f"GENE{i:05d}" for i in range(max(0, n_genes - len(marker_genes) - len(mito)))]
    genes = (marker_genes + mito + filler)[:n_genes]
    G = len(genes)
    gidx = {g: i for i, g in enumerate(genes)}
    base = rng.lognormal(-1.0, 1.6, size=G)
    for g in mito:
        if g in gidx:
            base[gidx[g]] = rng.uniform(20, 60)
    profiles = np.tile(base, (len(types), 1))
    for k, t in enumerate(types):
        for g in markers[t]:
            if g in gidx:
                profiles[k, gidx[g]] *= rng.uniform(15, 60)
    n_fixed = len(marker_genes) + len(mito)
    svg = rng.choice(np.arange(n_fixed, G), size=min(200, max(0, G - n_fixed)), replace=False)
    dom_fc = np.ones((n_domains, G))
    dom_fc[:, svg] = rng.lognormal(0, 0.6, size=(n_domains, len(svg)))

    px_per_um = 1 / 0.2737
    if layout == "visium":
        cols = int(np.ceil(np.sqrt(n_spots * 2 / np.sqrt(3))))
        r, c = np.divmod(np.arange(n_spots), cols)
        x_um, y_um = c * 100.0 + (r % 2) * 50.0, r * 100.0 * np.sqrt(3) / 2
        array_col, spot_um = c * 2 + (r % 2), 55.0
    else:
        side = int(np.ceil(np.sqrt(n_spots)))
        r, c = np.divmod(np.arange(n_spots), side)
        x_um, y_um = c * 8.0 + 4, r * 8.0 + 4
        array_col, spot_um = c, 8.0
    xy = np.stack([x_um, y_um], 1) * px_per_um
    u = (xy - xy.min(0)) / (xy.max(0) - xy.min(0) + 1)
    warp = 0.08 * np.stack(
        [np.sin(7 * u[:, 1] + rng.uniform(0, 6)), np.cos(5 * u[:, 0] + rng.uniform(0, 6))], 1
    )
    seeds = rng.uniform(0.1, 0.9, size=(n_domains, 2))
    domain = (((u + warp)[:, None, :] - seeds[None]) ** 2).sum(-1).argmin(1)
    comp = rng.dirichlet(np.full(len(types), 0.5), size=n_domains)
    if layout == "visium":
        props = np.stack([rng.dirichlet(comp[d] * 8 + 0.05) for d in domain])
        depth = rng.lognormal(np.log(4000), 0.5, size=n_spots)
        umis = rng.poisson(depth)
        per_type = np.stack([rng.multinomial(m, p) for m, p in zip(umis, props, strict=True)])
    else:
        pick = (rng.random(n_spots)[:, None] > comp.cumsum(1)[domain]).sum(1)
        props = np.eye(len(types))[np.minimum(pick, len(types) - 1)]
        umis = rng.poisson(rng.lognormal(np.log(250), 0.5, size=n_spots))
        per_type = (props * umis[:, None]).astype(np.int64)
    rows_l, cols_l = [], []
    for d in range(n_domains):
        in_d = np.flatnonzero(domain == d)
        for k in range(len(types)):
            n_k = per_type[in_d, k]
            if n_k.sum() == 0:
                continue
            w = profiles[k] * dom_fc[d]
            draws = np.searchsorted(
                np.cumsum(w / w.sum()), rng.random(int(n_k.sum())), side="right"
            )
            rows_l.append(np.repeat(in_d, n_k))
            cols_l.append(np.minimum(draws, G - 1))
    s_i, g_i = np.concatenate(rows_l), np.concatenate(cols_l)
    X = sp.csr_matrix((np.ones(len(s_i), dtype=np.int32), (s_i, g_i)), shape=(n_spots, G))
    X.sum_duplicates()

    size = 600
    span = xy.max(0) + spot_um * px_per_um
    scalef = size * 0.9 / span.max()
    img = np.full((size, size, 3), 235, dtype=np.float32)
    tint = rng.uniform([150, 60, 120], [230, 130, 200], size=(n_domains, 3))
    pts = (xy * scalef).astype(int)
    rad = max(1, int(spot_um * px_per_um * scalef))
    step = max(1, len(pts) // 8000)
    for (x, y), d in zip(pts[::step], domain[::step], strict=True):
        img[max(0, y - rad) : y + rad, max(0, x - rad) : x + rad] = tint[d]
    img = np.clip(img + rng.normal(0, 6, size=img.shape), 0, 255).astype(np.uint8)

    if layout == "visium":
        codes = rng.choice(4**16, size=n_spots, replace=False)
        barcodes = [
            "".join("ACGT"[(int(v) >> (2 * i)) & 3] for i in range(16)) + "-1" for v in codes
        ]
    else:
        barcodes = [f"s_008um_{a:05d}_{b:05d}-1" for a, b in zip(r, array_col, strict=True)]
    sample_id = f"PATIENT-{seed:04d}-{tissue.upper()}"
    obs = pd.DataFrame(
        {"in_tissue": 1, "array_row": r, "array_col": array_col, "sample_id": sample_id},
        index=pd.Index(barcodes),
    )
    a = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes)))
    a.obsm["spatial"] = xy
    lib = f"{tissue}_section_{seed}"
    a.uns["spatial"] = {
        lib: {
            "images": {"hires": img},
            "scalefactors": {
                "tissue_hires_scalef": float(scalef),
                "spot_diameter_fullres": float(spot_um * px_per_um),
            },
        }
    }
    a.uns["metadata"] = {"tissue_type": tissue, "sample_id": sample_id}
    dominant = np.asarray(types, dtype=object)[props.argmax(1)]
    return SynthSample(adata=a, domain=domain, dominant_type=dominant, types=list(types))


def write_sample(path: str | Path, **kwargs: object) -> SynthSample:
    """Simulate and write an ``.h5ad`` (plus ``<path>.truth.csv`` with domain and dominant type)."""
    import pandas as pd

    s = make_sample(**kwargs)  # type: ignore[arg-type]
    path = Path(path)
    s.adata.write_h5ad(path)  # type: ignore[attr-defined]
    pd.DataFrame(
        {
            "barcode": s.adata.obs_names,  # type: ignore[attr-defined]
            "domain": s.domain,
            "dominant_type": s.dominant_type,
        }
    ).to_csv(str(path) + ".truth.csv", index=False)
    return s
