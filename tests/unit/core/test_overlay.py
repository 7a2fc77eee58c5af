"""The overlay document built from a job's artifacts (pure: no store, no database)."""

from __future__ import annotations

from core.jobs.overlay import _lines, build_overlay

SPOTS = (
    "barcode,x,y,cluster,domain,cell_type,lineage,confidence,total_counts,n_genes,pct_mito\n"
    "A,100,200,0,D1,T cells,lymphoid,0.9,1000,500,0.01\n"
    "B,300,400,1,D2,Fibroblasts,stromal,0.5,10,8,\n"
    "C,nan,5,1,D2,Fibroblasts,stromal,0.5,10,8,0.2\n"
)


def _chunks(text: str, size: int) -> list[bytes]:
    raw = text.encode()
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def test_lines_rejoin_rows_split_across_chunks() -> None:
    for size in (1, 7, 64, 10_000):
        assert "".join(_lines(iter(_chunks(SPOTS, size)))) == SPOTS


def test_positions_scale_to_the_image_and_layers_index_categories() -> None:
    analysis = {
        "image": {"file": "he_image.png", "scalef": 0.5, "spot_diameter_px": 20},
        "domains": {
            "domains": [
                {"id": "D1", "n": 1, "cell_types": {"T cells": 1.0}},
                {"id": "D2", "n": 1, "cell_types": {"Fibroblasts": 1.0}},
            ]
        },
        "claims": [
            {"name": "domains", "passed": False, "reason": "silhouette too low"},
            {"name": "annotation", "passed": True, "reason": "ok"},
        ],
    }
    features = {
        "domains": [
            {
                "id": "D2",
                "dominant_lineage": "stromal",
                "adjacent_domains": ["D1"],
                "lineage_composition": {"stromal": 1.0},
            }
        ]
    }
    doc = build_overlay(analysis, features, _lines(iter(_chunks(SPOTS, 5))))
    assert doc["unit"] == "image_px" and doc["image"]["artifact"] == "he_image.png"
    assert doc["n_spots"] == 2  # the row without a position is left out
    assert doc["x"] == [50.0, 150.0] and doc["y"] == [100.0, 200.0]
    assert doc["spot_radius"] == 5.0
    assert doc["layers"]["domain"]["categories"] == ["D1", "D2"]
    assert doc["layers"]["domain"]["codes"] == [0, 1]
    assert doc["layers"]["domain"]["withheld"] == "silhouette too low"
    assert doc["layers"]["lineage"]["withheld"] is None
    assert doc["layers"]["pct_mito"]["values"] == [0.01, None]  # an empty cell is no value
    assert (
        doc["layers"]["total_counts"]["min"] == 10 and doc["layers"]["total_counts"]["max"] == 1000
    )
    d2 = next(d for d in doc["domains"] if d["id"] == "D2")
    assert d2["dominant_lineage"] == "stromal" and d2["adjacent_domains"] == ["D1"]


def test_without_an_image_positions_stay_in_sample_units() -> None:
    doc = build_overlay(
        {"image": {"file": None, "scalef": None}}, None, _lines(iter(_chunks(SPOTS, 64)))
    )
    assert doc["unit"] == "sample" and doc["image"]["artifact"] is None
    assert doc["x"] == [100.0, 300.0] and doc["spot_radius"] is None
