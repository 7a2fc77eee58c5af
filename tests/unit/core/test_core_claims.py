"""Reliability checks: each claim is checked against its threshold and withheld with a reason."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.sparse as sp

from core.analysis import claims as cl
from core.analysis.claims import assess_claims, withheld
from core.analysis.features import not_assessed


def _res(
    n: int = 400,
    umis: float = 3000,
    genes: float = 900,
    n_genes_kept: int = 2000,
    degree: int = 6,
    sil: float | None = 0.5,
    stab: float | None = 0.95,
    unassigned: float = 0.1,
    available: bool = True,
    n_sig: int = 40,
    layout: str = "visium",
) -> Any:
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(n), degree)
    cols = (rows + np.tile(np.arange(1, degree + 1), n)) % n
    A = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    ct = np.where(rng.random(n) < unassigned, "unassigned", "T cells").astype(object)
    ct[:5] = "B cells"
    ct[5:10] = "unassigned" if unassigned >= 1 else "B cells"
    if unassigned >= 1:
        ct[:] = "unassigned"
    cands = [] if sil is None else [{"k": 4, "silhouette": sil, "stability": stab, "chosen": True}]
    fdr = np.ones(100)
    fdr[:n_sig] = 0.001
    names = sorted(set(ct.astype(str)))
    return SimpleNamespace(
        layout=layout,
        obs_names=np.arange(n).astype(str),
        qc_metrics={"total_counts": np.full(n, umis), "n_genes": np.full(n, genes)},
        gene_names=np.array([f"G{i}" for i in range(n_genes_kept)]),
        spatial_graph=A,
        domains=SimpleNamespace(k=4, candidates=cands),
        annotation=SimpleNamespace(
            cell_type=ct,
            available=available,
            unavailable_reason=None if available else "no overlap (table.tsv)",
        ),
        nhood_celltype=(np.zeros((len(names), len(names))), names),
        moran={"pval_norm_fdr_bh": fdr},
    )


def _by(res: Any) -> dict[str, Any]:
    return {c.name: c for c in assess_claims(res)}


def test_every_check_is_recorded_with_value_threshold_and_reason() -> None:
    claims = assess_claims(_res())
    names = [c.name for c in claims]
    assert names == [
        "depth_per_unit",
        "genes_per_unit",
        "genes_kept",
        "spatial_graph_degree",
        "domains",
        "annotation",
        "neighbourhood_enrichment",
        "spatially_variable_genes",
    ]
    assert all(c.passed for c in claims), [c for c in claims if not c.passed]
    for c in claims:
        d = c.as_dict()
        assert set(d) == {"name", "passed", "value", "threshold", "reason"} and d["reason"]
    assert withheld(claims) == {}


def test_no_domain_statement_at_low_silhouette() -> None:
    c = _by(_res(sil=0.09))["domains"]
    assert not c.passed and c.value == 0.09 and c.threshold == cl.MIN_DOMAIN_SILHOUETTE
    assert "silhouette 0.09" in c.reason
    assert _by(_res(sil=cl.MIN_DOMAIN_SILHOUETTE + 0.01))["domains"].passed


def test_unstable_domains_are_withheld() -> None:
    c = _by(_res(stab=0.3))["domains"]
    assert not c.passed and "stability 0.30" in c.reason


def test_shallow_sparse_sample_withholds_everything_with_reasons() -> None:
    """The real Space Ranger subset: 9 UMIs, 7 genes per spot, 34 genes kept, degree 0.68."""
    res = _res(
        n=100, umis=9, genes=7, n_genes_kept=34, degree=0, sil=0.09, n_sig=0, available=False
    )
    by = _by(res)
    for name in ("depth_per_unit", "genes_per_unit", "genes_kept", "spatial_graph_degree"):
        assert not by[name].passed, name
    assert by["depth_per_unit"].value == 9 and by["genes_kept"].value == 34
    held = withheld(list(by.values()))
    assert set(held) == {
        "domains",
        "annotation",
        "neighbourhood_enrichment",
        "spatially_variable_genes",
    }
    assert "depth per unit" in held["domains"] and "spatial graph degree" in held["domains"]
    # features carry the failed checks, the annotation reason without the table's file name
    na = not_assessed(list(by.values()), annotation_available=False)
    assert {x["claim"] for x in na} >= set(held)
    ann = next(x for x in na if x["claim"] == "annotation")
    assert "table.tsv" not in ann["reason"]


def test_all_unassigned_annotation_is_withheld() -> None:
    c = _by(_res(unassigned=1.0))["annotation"]
    assert not c.passed and c.value == 0.0 and c.threshold == cl.MIN_ANNOTATION_COVERAGE


def test_no_significant_svgs_withholds_the_figure_claim() -> None:
    c = _by(_res(n_sig=0))["spatially_variable_genes"]
    assert not c.passed and "none of the" in c.reason
    assert _by(_res(n_sig=1))["spatially_variable_genes"].passed


def test_thresholds_follow_the_layout() -> None:
    """An HD bin holds one cell: 60 UMIs is fine for a bin, far too few for a Visium spot."""
    assert _by(_res(umis=60, genes=40, layout="visium_hd"))["depth_per_unit"].passed
    assert not _by(_res(umis=60, genes=40, layout="visium"))["depth_per_unit"].passed
