"""Number checks, parroting score and section splitting of a narrative."""

from __future__ import annotations

from core.report.render import (
    check_numbers,
    collect_numbers,
    numbers_in,
    parroting_score,
    split_sections,
)


def test_numbers_skip_ids_and_list_ordinals() -> None:
    text = "1. Domain D1 holds 31% of spots and CD3 is 0.72; Q2 asks 4,900 things.\n2) end -8.1"
    found = [w for w, *_ in numbers_in(text)]
    assert found == ["31%", "0.72", "4,900", "-8.1"]


def test_verification_respects_rounding_and_percent() -> None:
    ref = collect_numbers({"a": 0.3123, "b": [4900, {"c": -8.1}], "d": "0.155", "e": True})
    verdict = {
        c["text"]: c["verified"]
        for c in check_numbers("31% 0.31 4900 -8.1 15.5% 16% 42% 0.99 7777", ref)
    }
    assert verdict == {
        "31%": True,
        "0.31": True,
        "4900": True,
        "-8.1": True,
        "15.5%": True,
        "16%": True,
        "42%": False,
        "0.99": False,
        "7777": False,
    }


def test_parroting_score_counts_verbatim_copies() -> None:
    prompt = "epithelial 31%, stromal 24%; 4900 spots; confidence 0.72"
    assert parroting_score(prompt, "The epithelium (31%) dominates over 4900 spots.") == (0.5, 2, 4)
    assert parroting_score(prompt, "Mostly epithelial.") == (0.0, 0, 4)
    assert parroting_score("no numbers", "31%") == (None, 0, 0)


def test_split_by_headings_and_questions() -> None:
    text = (
        "Intro line.\n## Specimen and QC\nGood quality.\n**Cell populations:** Mixed.\n"
        "Spatial organisation: clustered immune cells\n## Suggested follow-up\nStain."
    )
    parts = split_sections(text)
    assert parts["unassigned"] == "Intro line."
    assert parts["specimen_and_qc"] == "Good quality."
    assert parts["cell_populations"] == "Mixed."
    assert parts["spatial_organisation"] == "clustered immune cells"
    assert parts["follow_up"] == "Stain."
    q = split_sections("Q1. Layered.\nQ4: Glands seen.\nQ6 - IHC.")
    assert q == {
        "tissue_architecture": "Layered.",
        "morphology": "Glands seen.",
        "follow_up": "IHC.",
    }
    assert split_sections("gibberish ixix") == {"unassigned": "gibberish ixix"}


def test_unverified_numbers_are_marked_in_markdown_and_html(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from core.features import load_features
    from core.report.examples import example_features
    from core.report.render import build_report, render_html, render_markdown
    from tests.fixtures.report_outputs import example_analysis

    features = example_features()
    analysis = example_analysis(features)
    narrative = (
        "## Cell populations\nEpithelium is 31% of spots, not 77%.\n## Suggested follow-up\nIHC."
    )
    prov: dict[str, object] = {"backend": "x", "written_by_language_model": True}
    report = build_report(
        load_features(features),
        analysis,
        [],
        narrative,
        "epithelial 31%, stromal 24%",
        {},
        prov,
        [],
    )
    cells = next(s for s in report["sections"] if s["id"] == "cell_populations")
    assert cells["unverified_numbers"] == ["77%"]
    assert prov["unverified_numbers"] == 1 and prov["numbers_in_narrative"] == 2
    assert prov["parroting"] == {"score": 0.5, "prompt_numbers": 2, "copied_verbatim": 1}
    md = render_markdown(report, analysis, load_features(features))
    assert "31% of spots, not 77% ⟨unverified⟩" in md
    html = render_html(report, analysis, load_features(features), tmp_path)
    assert "<mark class='unverified' title='matches no computed value'>77%</mark>" in html
    assert "Not a diagnosis" in html
    # the contradicted sentence is struck from the findings and kept, marked, in the appendix
    body, appendix = html.split("<section id='appendix'>")
    assert "not 77%" not in body and "<del class='removed'>" in appendix
    assert report["claim_check"]["counts"]["sentences_removed"] == 1
