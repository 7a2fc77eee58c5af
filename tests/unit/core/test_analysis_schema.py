"""analysis.json: the published JSON Schema matches the model; versions are read as documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InputError
from core.results import SCHEMA_VERSION, json_schema, load_analysis, read_analysis
from tests.fixtures.report_outputs import example_analysis


def test_published_schema_is_current() -> None:
    from scripts.analysis_schema import SCHEMA_FILE, schema_text

    assert json.loads(SCHEMA_FILE.read_text()) == json.loads(schema_text()), (
        "core/results.py changed: run python scripts/analysis_schema.py and commit "
        "docs/analysis.schema.json"
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


@pytest.mark.parametrize(("key", "value", "says"), [
    ("schema_version", 2, "schema_version 2 is not supported"),
    ("schema_version", "1", "schema_version '1' is not supported"),
    ("schema", "mgs.analysis/2", "has schema 'mgs.analysis/2'"),
])
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
