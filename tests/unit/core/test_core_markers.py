from __future__ import annotations

from pathlib import Path

import pytest

from core import errors
from core.markers import LINEAGES, lineage_of, load_default_markers, load_markers, load_panglao


def test_default_table_is_complete() -> None:
    t = load_default_markers()
    assert len(t.cell_types) >= 15
    assert set(t.lineage.values()) <= set(LINEAGES)
    assert {"epithelial", "stromal", "endothelial", "lymphoid", "myeloid", "neural/glial"} <= set(
        t.lineage.values()
    )
    assert all(len(g) >= 5 for g in t.genes.values())


def test_lineage_keywords() -> None:
    assert lineage_of("Goblet cells") == "epithelial"
    assert lineage_of("Microglia") == "myeloid"
    assert lineage_of("Oligodendrocytes") == "neural/glial"
    assert lineage_of("T cells") == "lymphoid" and lineage_of("B cells") == "lymphoid"
    assert lineage_of("Endothelial cells (aorta)") == "endothelial"


def test_panglao_species_and_organ_filters(shared_data: Path) -> None:
    p = shared_data / "PanglaoDB_markers_27_Mar_2020.tsv"
    hs = load_panglao(p, species="Hs")
    brain = load_panglao(p, species="Mm", organs=["Brain"])
    assert len(hs.cell_types) > 100
    assert 0 < len(brain.cell_types) < len(hs.cell_types)
    assert all(g.isupper() for genes in brain.genes.values() for g in genes)
    assert "Hepatocytes" not in brain.genes
    assert hs.organ_of_gene  # for the leakage gate
    assert load_markers(p).source.startswith("panglao:")


def test_bad_tables(tmp_path: Path) -> None:
    p = tmp_path / "m.tsv"
    p.write_text("foo\tbar\n1\t2\n")
    with pytest.raises(errors.BadMarkerTable):
        load_markers(p)
    with pytest.raises(errors.BadMarkerTable, match="does not exist"):
        load_markers(tmp_path / "missing.tsv")
    p.write_text("cell_type\tlineage\tgenes\nA\tepithelial\tX,Y\nB\tnotalineage\tZ\n")
    with pytest.raises(errors.BadMarkerTable, match="lineage"):
        load_markers(p)
