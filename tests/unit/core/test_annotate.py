"""Annotation: coherent markers, specificity weights, broad -> organ-specific hierarchy, unassigned."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from core.analysis import annotate as ann
from core.markers import MarkerTable

GENES = np.array(["A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "NOISE", "K1", "K2", "S1", "S2"]
                 + [f"F{i}" for i in range(40)])


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
        genes={"Macrophages": ["A1", "A2", "A3", "A4"], "Fibroblasts": ["B1", "B2", "B3", "B4", "NOISE"],
               "Kupffer cells": ["A1", "A2", "A3", "K1", "K2"], "Hepatic stellate": ["S1", "S2", "B1"]},
        lineage={"Macrophages": "myeloid", "Fibroblasts": "stromal", "Kupffer cells": "myeloid",
                 "Hepatic stellate": "stromal"},
        source="test", organ_of_type={"Kupffer cells": "Liver", "Hepatic stellate": "Liver",
                                      "Macrophages": "Immune system", "Fibroblasts": "Connective tissue"})


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
    assert np.mean(call[labels == "A"] == "Macrophages") > 0.95  # not Kupffer: its own markers are silent
    assert np.mean(call[labels == "B"] == "Fibroblasts") > 0.95
    assert np.mean(call[labels == "K"] == "Kupffer cells") > 0.8  # K1/K2 enriched: the specific type
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
    found = {"Macrophages": np.array([0, 1]), "Macrophages M2": np.array([2, 3]), "Fibroblasts": np.array([4, 5])}
    lineage = {"Macrophages": "myeloid", "Macrophages M2": "myeloid", "Fibroblasts": "stromal"}
    out, merged = ann.merge_duplicate_types(X, found, sp.eye(X.shape[0], format="csr"), lineage,
                                            {"Macrophages": 40, "Macrophages M2": 10, "Fibroblasts": 30})
    assert merged == {"Macrophages M2": "Macrophages"}
    assert set(out["Macrophages"].tolist()) == {0, 1, 2, 3} and "Fibroblasts" in out
