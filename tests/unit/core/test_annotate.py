"""Annotation: coherent markers, specificity weights, broad -> organ-specific hierarchy, unassigned."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from core.analysis import annotate as ann
from core.markers import MarkerTable

GENES = np.array(
    ["A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "NOISE", "K1", "K2", "S1", "S2"]
    + [f"F{i}" for i in range(40)]
)


def _counts(labels: np.ndarray, seed: int = 0, depth: float = 300.0) -> sp.csr_matrix:
    """Spots of type A, B or K (A plus its own K1/K2), or 'none' (background only)."""
    rng = np.random.default_rng(seed)
    base = np.full(len(GENES), 1.0)
    idx = {g: i for i, g in enumerate(GENES)}
    base[idx["NOISE"]] = 20.0  # highly expressed everywhere, listed as a marker of B: incoherent
    rows = []
    for lab in labels:
        w = base.copy()
        if lab in ("A", "K"):
            w[[idx[g] for g in ("A1", "A2", "A3", "A4")]] *= 30
        if lab == "B":
            w[[idx[g] for g in ("B1", "B2", "B3", "B4")]] *= 30
        if lab == "K":
            w[[idx["K1"], idx["K2"]]] *= 30
        rows.append(rng.poisson(depth * w / w.sum()))
    return sp.csr_matrix(np.array(rows, dtype=np.float32))


def _table() -> MarkerTable:
    return MarkerTable(
        genes={
            "Macrophages": ["A1", "A2", "A3", "A4"],
            "Fibroblasts": ["B1", "B2", "B3", "B4", "NOISE"],
            "Kupffer cells": ["A1", "A2", "A3", "K1", "K2"],
            "Hepatic stellate": ["S1", "S2", "B1"],
        },
        lineage={
            "Macrophages": "myeloid",
            "Fibroblasts": "stromal",
            "Kupffer cells": "myeloid",
            "Hepatic stellate": "stromal",
        },
        source="test",
        organ_of_type={
            "Kupffer cells": "Liver",
            "Hepatic stellate": "Liver",
            "Macrophages": "Immune system",
            "Fibroblasts": "Connective tissue",
        },
    )


def test_broad_types() -> None:
    assert _table().broad_types == {"Macrophages", "Fibroblasts"}


def test_coherent_markers_drop_genes_not_coexpressed_with_their_set() -> None:
    labels = np.array(["A", "B"] * 300)
    X = _counts(labels)
    found, _, _ = ann.match_markers(GENES, _table())
    kept, dropped = ann.coherent_markers(X, found, sp.eye(X.shape[0], format="csr"))
    fib = [GENES[c] for c in kept["Fibroblasts"]]
    assert "NOISE" not in fib and {"B1", "B2", "B3", "B4"} <= set(fib)
    assert "Hepatic stellate" in dropped  # S1/S2 never expressed: not a population here


def test_specificity_weights_downweight_shared_markers() -> None:
    found = {"X": np.array([0, 1, 2]), "Y": np.array([0, 3, 4])}
    w = ann.specificity_weights(found)
    assert w["X"][0] < w["X"][1] and np.isclose(w["X"].mean(), 1.0)


def test_hierarchy_calls_broad_type_unless_own_markers_are_enriched() -> None:
    labels = np.array(["A"] * 300 + ["B"] * 300 + ["K"] * 100)
    X = _counts(labels, seed=1)
    a = ann.annotate(X, GENES, _table(), multi_cell=False)
    call = a.cell_type.astype(str)
    assert (
        np.mean(call[labels == "A"] == "Macrophages") > 0.95
    )  # not Kupffer: its own markers are silent
    assert np.mean(call[labels == "B"] == "Fibroblasts") > 0.95
    assert (
        np.mean(call[labels == "K"] == "Kupffer cells") > 0.8
    )  # K1/K2 enriched: the specific type
    assert set(a.lineage[labels == "K"]) == {"myeloid"}
    assert ((a.confidence >= 0) & (a.confidence <= 1)).all()
    assert a.confidence[labels == "A"].mean() > 0.8


def test_unassigned_where_no_set_is_enriched() -> None:
    labels = np.array(["A"] * 300 + ["B"] * 300 + ["none"] * 100)
    X = _counts(labels, seed=2)
    a = ann.annotate(X, GENES, _table(), multi_cell=False)
    call = a.cell_type.astype(str)
    assert np.mean(call[labels == "none"] == "unassigned") > 0.7
    assert np.mean(call[labels != "none"] == "unassigned") < 0.05


def test_types_marking_one_population_merge_into_the_broader_one() -> None:
    labels = np.array(["A"] * 300 + ["B"] * 300)
    X = _counts(labels, seed=3)
    found = {
        "Macrophages": np.array([0, 1]),
        "Macrophages M2": np.array([2, 3]),
        "Fibroblasts": np.array([4, 5]),
    }
    lineage = {"Macrophages": "myeloid", "Macrophages M2": "myeloid", "Fibroblasts": "stromal"}
    out, merged = ann.merge_duplicate_types(
        X,
        found,
        sp.eye(X.shape[0], format="csr"),
        lineage,
        {"Macrophages": 40, "Macrophages M2": 10, "Fibroblasts": 30},
    )
    assert merged == {"Macrophages M2": "Macrophages"}
    assert set(out["Macrophages"].tolist()) == {0, 1, 2, 3} and "Fibroblasts" in out


def _colocated_spots(
    seed: int = 0, side: int = 40, depth: float = 3000.0
) -> tuple[sp.csr_matrix, np.ndarray, sp.csr_matrix, np.ndarray]:
    """Multi-cell spots on a grid: T cells and macrophages share the left half, fibroblasts the right.

    Within the left half the T and macrophage fractions vary from spot to spot (Dirichlet), so a
    T gene and a macrophage gene rise together across the section (co-location) but not within it.
    Returns counts, gene names, the spatial graph and the true fractions (T, M, F).
    """
    from core.analysis.spatial import spatial_graph

    genes = np.array(
        [f"T{i}" for i in range(5)]
        + [f"M{i}" for i in range(5)]
        + [f"B{i}" for i in range(5)]
        + [f"F{i}" for i in range(40)]
    )
    idx = {g: i for i, g in enumerate(genes)}
    prof = np.ones((3, len(genes)))
    for k, p in enumerate("TMB"):
        prof[k, [idx[f"{p}{i}"] for i in range(5)]] *= 30
    rng = np.random.default_rng(seed)
    r, c = np.divmod(np.arange(side * side), side)
    left = c < side // 2
    frac = np.where(
        left[:, None],
        rng.dirichlet([3, 3, 0.3], side * side),
        rng.dirichlet([0.2, 0.2, 5], side * side),
    )
    mix = frac @ (prof / prof.sum(axis=1, keepdims=True))
    X = sp.csr_matrix(rng.poisson(depth * mix).astype(np.float32))
    A = spatial_graph(np.stack([c, r], 1).astype(np.float64) * 100.0, "visium")
    return X, genes, A, frac


def test_colocated_populations_do_not_make_a_mixed_set_coherent() -> None:
    """A set of one T gene and one macrophage gene (a table's 'dendritic cells' holding CCR7 and ITGAX in a
    sample where CCR7 is a T-cell gene): coherent across the section by co-location alone, not within it."""
    X, _, A, _ = _colocated_spots()
    found = {
        "T cells": np.array([0, 1, 2, 3]),
        "Macrophages": np.array([5, 6, 7, 8]),
        "Fibroblasts": np.array([10, 11, 12, 13]),
        "Dendritic cells": np.array([4, 9]),
    }
    eye = sp.eye(X.shape[0], format="csr")
    across, _ = ann.coherent_markers(X, found, eye)
    assert (
        "Dendritic cells" in across
    )  # the confound this guards against: co-location looks like co-expression
    local, dropped = ann.coherent_markers(X, found, eye, spatial_graph=A)
    assert "Dendritic cells" in dropped
    assert {"T cells", "Macrophages", "Fibroblasts"} <= set(local)
    assert all(len(local[t]) == 4 for t in ("T cells", "Macrophages", "Fibroblasts"))


def test_a_small_set_of_one_population_merges_despite_counting_noise() -> None:
    """Two marker sets of one population, one of them small and shallow: their raw correlation is capped
    by Poisson noise below the merge bound; the noise-corrected correlation is not."""
    X, _, _, _ = _colocated_spots(seed=1, depth=50.0)
    found = {
        "T cells": np.array([0, 1, 2]),
        "T cells naive": np.array([3, 4]),
        "Fibroblasts": np.array([10, 11, 12, 13, 14]),
    }
    lineage = {"T cells": "lymphoid", "T cells naive": "lymphoid", "Fibroblasts": "stromal"}
    eye = sp.eye(X.shape[0], format="csr")
    D = np.asarray(X.sum(axis=1)).ravel()
    raw = np.corrcoef(
        np.asarray(X[:, [0, 1, 2]].sum(axis=1)).ravel() / D,
        np.asarray(X[:, [3, 4]].sum(axis=1)).ravel() / D,
    )[0, 1]
    assert raw < 0.9  # what the uncorrected rule compared with min_r
    _, merged = ann.merge_duplicate_types(
        X, found, eye, lineage, {"T cells": 20, "T cells naive": 8, "Fibroblasts": 30}
    )
    assert merged == {"T cells naive": "T cells"}
    # sets of different populations stay apart whatever the noise
    found2 = {
        "T cells": np.array([0, 1, 2]),
        "Macrophages": np.array([5, 6]),
        "Fibroblasts": np.array([10, 11]),
    }
    _, merged2 = ann.merge_duplicate_types(
        X,
        found2,
        eye,
        {"T cells": "lymphoid", "Macrophages": "lymphoid", "Fibroblasts": "stromal"},
        {"T cells": 20, "Macrophages": 8, "Fibroblasts": 30},
    )
    assert merged2 == {}
