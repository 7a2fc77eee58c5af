"""analysis.json and features.json: the published JSON Schemas match the models; versions are
read as documented; features.json is written back byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InputError
from core.features import json_schema as features_schema
from core.features import load_features, read_features
from core.report.examples import example_features
from core.results import SCHEMA_VERSION, json_schema, load_analysis, read_analysis
from tests.fixtures.report_outputs import example_analysis


@pytest.mark.parametrize("document", ["analysis", "features"])
def test_published_schema_is_current(document: str) -> None:
    from scripts.analysis_schema import SCHEMAS, schema_text

    path, module = SCHEMAS[document]
    assert json.loads(path.read_text()) == json.loads(schema_text(document)), (
        f"{module} changed: run python scripts/analysis_schema.py and commit docs/{path.name}"
    )


def test_written_document_validates_against_the_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    record = example_analysis()
    record.write(tmp_path / "analysis.json")
    doc = json.loads((tmp_path / "analysis.json").read_text())
    assert list(doc)[:2] == ["schema_version", "schema"]
    assert doc["schema_version"] == SCHEMA_VERSION and "unit" not in doc and "cells" not in doc
    jsonschema.validate(doc, json_schema())
    assert read_analysis(tmp_path) == record


def test_file_without_version_reads_as_version_1() -> None:
    doc = example_analysis().to_dict()
    del doc["schema_version"]
    assert load_analysis(doc).schema_version == 1
    del doc["schema"]
    assert load_analysis(doc).schema_version == 1


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("schema_version", 2, "schema_version 2 is not supported"),
        ("schema_version", "1", "schema_version '1' is not supported"),
        ("schema", "mgs.analysis/2", "has schema 'mgs.analysis/2'"),
    ],
)
def test_unknown_version_is_refused(key: str, value: object, says: str) -> None:
    doc = example_analysis().to_dict()
    if key == "schema":
        del doc["schema_version"]
    doc[key] = value
    with pytest.raises(InputError, match=says):
        load_analysis(doc)


def test_a_document_off_the_model_is_refused(tmp_path: Path) -> None:
    doc = example_analysis().to_dict()
    del doc["annotation"]
    (tmp_path / "analysis.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="does not match schema_version 1: annotation"):
        read_analysis(tmp_path / "analysis.json")
    with pytest.raises(InputError, match="run the analysis first"):
        read_analysis(tmp_path / "nowhere")


# features.json ---------------------------------------------------------------------------


def _withheld_features() -> dict[str, object]:
    """The shape the analysis writes when annotation and the spatially variable genes were
    withheld: sections left out, an empty domain count."""
    doc = example_features()
    doc["annotation"] = {"available": False}
    for d in doc["domains"]:
        d.update({"dominant_lineage": "unknown", "lineage_composition": {}})
        d.pop("mean_confidence")
    doc["spatial"].pop("heterogeneity", None)
    doc["spatial"].pop("spatially_variable_genes", None)
    # after the domains, where the analysis writes it
    doc = {
        k: v
        for key, value in doc.items()
        for k, v in ([(key, value), ("domain_count", {})] if key == "domains" else [(key, value)])
    }
    doc["not_assessed"] = [
        {"claim": "annotation", "reason": "too few marker genes", "value": 3, "threshold": 0.5}
    ]
    return doc


@pytest.mark.parametrize("make", [example_features, _withheld_features])
def test_features_are_written_back_byte_for_byte(make: object, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = make()  # type: ignore[operator]
    text = json.dumps(doc, indent=2)
    (tmp_path / "features.json").write_text(text)
    record = read_features(tmp_path)
    assert record.to_json() == text
    assert record.to_dict() == doc
    jsonschema.validate(doc, features_schema())
    record.write(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text


def test_cell_platform_keeps_its_order() -> None:
    doc = example_features()
    doc["platform"] = {
        "layout": "visium_hd",
        "unit": "cell",
        "bin_size_um": None,
        "n_cells": 10,
        "cells_made_by": "nuclei",
        "unit_description": "cells",
    }
    assert json.dumps(load_features(doc).to_dict()) == json.dumps(doc)
    assert load_features(doc).unit == "cell"


def test_features_typed_access() -> None:
    record = load_features(example_features())
    assert record.annotated and record.domains[0].id == "D1"
    assert record.domains[0].lineage_composition["epithelial"] == 0.6
    assert isinstance(record.qc.units_analysed, int)
    withheld = load_features(_withheld_features())
    assert not withheld.annotated and withheld.domains[0].mean_confidence is None
    assert withheld.spatial.heterogeneity is None and withheld.domain_count.chosen is None


def test_features_without_schema_or_available_flag_read_as_version_1() -> None:
    doc = example_features()
    del doc["schema"], doc["annotation"]["available"]
    record = load_features(doc)
    assert record.schema_name == "mgs.features/1" and record.annotated
    assert "available" not in record.to_dict()["annotation"]  # type: ignore[operator]


def test_features_off_the_contract_are_refused(tmp_path: Path) -> None:
    doc = example_features()
    with pytest.raises(InputError, match=r"has schema 'mgs\.features/2'"):
        load_features({**doc, "schema": "mgs.features/2"})
    with pytest.raises(InputError, match=r"does not match mgs\.features/1: sample_id"):
        load_features({**doc, "sample_id": "S-1"})
    del doc["qc"]
    with pytest.raises(InputError, match=r"does not match mgs\.features/1: qc"):
        load_features(doc)
    with pytest.raises(InputError, match="run the analysis first"):
        read_features(tmp_path)
