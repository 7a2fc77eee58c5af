"""Colours that mean the same thing in every figure."""

from __future__ import annotations

from matplotlib.colors import to_rgb

from core.figures import LINEAGE_COLOURS, cell_type_colours, domain_colours


def test_domain_colours_are_stable_distinct_and_not_lineage_colours() -> None:
    assert domain_colours(4) == domain_colours(9)[:4]  # D1 keeps its colour whatever k is
    cols = domain_colours(12)
    assert len(set(cols)) == 12
    assert not set(cols) & set(LINEAGE_COLOURS.values())


def test_cell_types_are_shades_of_their_lineage() -> None:
    lineage_of = {
        "T cells": "lymphoid",
        "B cells": "lymphoid",
        "Macrophages": "myeloid",
        "Fibroblasts": "stromal",
    }
    cols = cell_type_colours(list(lineage_of), lineage_of)
    assert cols == cell_type_colours(list(reversed(lineage_of)), lineage_of)  # order-free
    assert (
        cols["B cells"] == LINEAGE_COLOURS["lymphoid"]
    )  # first of its lineage: the lineage colour
    assert cols["T cells"] != cols["B cells"]
    # a shade keeps the hue: the lineage's strongest channel stays the strongest
    base = to_rgb(LINEAGE_COLOURS["lymphoid"])
    shade = to_rgb(cols["T cells"])
    assert max(range(3), key=lambda i: shade[i]) == max(range(3), key=lambda i: base[i])
    assert cols["Macrophages"] == LINEAGE_COLOURS["myeloid"]
