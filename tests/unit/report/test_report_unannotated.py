"""Features without a cell-type annotation (no marker overlap): the prompt, the template and
the computed tables say so instead of printing nothing."""

from __future__ import annotations

import json
from pathlib import Path

from core.report import ReportOptions, write_report
from core.report.backends.template import write_template_narrative
from core.report.examples import example_features
from core.report.prompts import STRATEGIES, annotation_available, build_prompt
from core.report.render import computed_sections
from tests.fixtures.report_outputs import write_output_dir


def test_annotation_flag() -> None:
    assert annotation_available(example_features())
    assert not annotation_available(example_features(annotated=False))
    legacy = example_features()
    del legacy["annotation"]["available"]
    assert annotation_available(legacy)  # older features.json without the flag


def test_prompt_says_the_annotation_was_unavailable() -> None:
    f = example_features(annotated=False)
    for strategy in STRATEGIES:
        text = build_prompt(f, strategy).text
        assert "cell-type annotation was unavailable" in text
        assert "Lineage composition" not in text and "dominant lineage" not in text
        assert "Lineages found together" not in text and "Heterogeneity" not in text
        assert "- D1: 35% of spots; lineages not annotated; borders D2." in text
        assert "()" not in text and "unknown" not in text
    annotated = build_prompt(example_features()).text
    assert "unavailable" not in annotated and "Lineage composition" in annotated


def test_template_and_computed_tables_say_so() -> None:
    f = example_features(annotated=False)
    text = write_template_narrative(f, has_image=True)
    assert "annotation was unavailable" in text
    assert "mostly unknown" not in text and "No lineage composition" not in text
    comp = computed_sections(f, [], {})
    assert comp["cell_populations"]["annotation"] == {"available": False}
    assert "unavailable" in comp["cell_populations"]["note"]
    assert "lineage_colocalisation" not in comp["spatial_organisation"]
    assert comp["uncertainty"]["fraction_low_confidence"] is None


def test_report_writes_without_annotation(tmp_path: Path) -> None:
    d = write_output_dir(tmp_path, features=example_features(annotated=False))
    write_report(d, ReportOptions())
    md = (d / "report.md").read_text()
    assert "Cell types were not annotated" in md
    # domain confidence and diversity do not apply: n/a with the reason, never 0
    d1 = next(line for line in md.splitlines() if line.startswith("| D1 |"))
    assert "n/a (not annotated)" in d1 and "| 0.00 |" not in d1 and "| 0 |" not in d1
    report = json.loads((d / "report.json").read_text())
    assert report["narrative_source"]["backend"] == "template"
