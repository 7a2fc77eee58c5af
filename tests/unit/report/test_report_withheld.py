"""Withheld claims and a close domain count reach the prompt, the template and the report."""

from __future__ import annotations

from core.report.backends.template import write_template_narrative
from core.report.examples import example_features
from core.report.leakage import find_leaks
from core.report.prompts import build_prompt
from core.report.render import computed_sections, not_assessed
from tests.fixtures.report_outputs import example_analysis


def test_close_domain_count_is_said() -> None:
    f = example_features()
    f["domain_count"] = {"chosen": len(f["domains"]), "close_alternative": 2}
    prompt = build_prompt(f, "anti_parroting", n_images=1).text
    assert "a division into 2 fits the data nearly as well" in prompt
    assert find_leaks(prompt, None, f) == []
    text = write_template_narrative(f, has_image=True)
    assert "A division into 2 domains fits the data nearly as well" in text
    assert (
        computed_sections(f, [], {})["tissue_architecture"]["domain_count"]["close_alternative"]
        == 2
    )


def test_withheld_claims_are_said_not_described() -> None:
    f = example_features()
    f["domains"] = []
    f["spatial"].pop("spatially_variable_genes")
    f["not_assessed"] = [
        {
            "claim": "domains",
            "reason": "the 2 candidate domains are not separated (silhouette "
            "0.09, at least 0.15 needed)",
            "value": 0.09,
            "threshold": 0.15,
        },
        {
            "claim": "spatially_variable_genes",
            "reason": "none of the tested genes is spatially variable at FDR 0.05",
            "value": 0,
            "threshold": 1,
        },
    ]
    prompt = build_prompt(f, "anti_parroting", n_images=1).text
    assert "Not assessed" in prompt and "silhouette 0.09" in prompt
    assert find_leaks(prompt, None, f) == []
    text = write_template_narrative(f, has_image=True)
    assert "divides into" not in text
    assert "Spatial domains are not reported: the 2 candidate domains are not separated" in text
    assert "Spatially variable genes are not reported" in text
    comp = computed_sections(f, [], {})
    assert "not separated" in comp["tissue_architecture"]["domains_not_assessed"]


def test_report_lists_failed_claims_and_notes() -> None:
    from core.results import Claim

    base = example_analysis()
    analysis = base.model_copy(
        update={
            "claims": [
                Claim(
                    name="genes_kept",
                    passed=False,
                    value=34,
                    threshold=200,
                    reason="only 34 genes kept",
                ),
                Claim(name="domains", passed=True, value=0.5, threshold=0.15, reason="fine"),
            ],
            "provenance": base.provenance.model_copy(update={"notes": ["blank image"]}),
            "qc": base.qc.model_copy(update={"notes": ["shallow sample"]}),
        }
    )
    na = not_assessed(analysis)
    assert [c["claim"] for c in na["claims"]] == ["genes_kept"]
    assert na["notes"] == ["blank image", "shallow sample"]
