"""The structured report (``report.json``) and the entry points of its renderings.

The model's narrative is kept apart from the computed tables. :func:`build_report` checks
every number of the narrative against the computed values (:mod:`core.report.numbers`), each
claim against the computed results (:mod:`core.report.claims`), and adds the computed
sections (:mod:`core.report.computed`). The same document is rendered as ``report.md``
(:mod:`core.report.markdown`), ``report.html`` (:mod:`core.report.html_page`) and
``report.pdf`` (:mod:`core.report.pdf`).
"""

from __future__ import annotations

from core.features import FeaturesRecord
from core.jsonable import JSONObject
from core.report.computed import (
    cell_population_table,
    computed_sections,
    qc_summary,
    split_sections,
)
from core.report.html_page import render_html
from core.report.markdown import render_markdown
from core.report.numbers import (
    check_numbers,
    collect_numbers,
    is_verified,
    numbers_doc,
    numbers_in,
    parroting_score,
)
from core.report.prompts import SECTIONS
from core.report.report_json import (
    CheckedSentence,
    NotAssessed,
    ReportDocument,
    ReportProvenance,
    Section,
)
from core.results import AnalysisRecord

DISCLAIMER = (
    "Research output, not a diagnosis. This report was produced by an automated analysis "
    "and must not be used for clinical decisions; a qualified pathologist must review "
    "the tissue itself."
)
REPORT_SCHEMA = "mgs.report/1"


def not_assessed(analysis: AnalysisRecord) -> NotAssessed:
    """What the analysis could not assess and why: its failed reliability checks
    (``analysis.json`` ``claims``) and the reader's notes on the sample."""
    notes = [*analysis.provenance.notes, *analysis.qc.notes]
    return {
        "claims": [
            {"claim": c.name, "reason": c.reason, "value": c.value, "threshold": c.threshold}
            for c in analysis.withheld_claims
        ],
        "notes": notes,
    }


def build_report(
    features: FeaturesRecord,
    analysis: AnalysisRecord,
    spots: list[dict[str, str]],
    narrative: str,
    prompt_text: str,
    image_info: JSONObject,
    provenance: ReportProvenance,
    figures: list[str],
) -> ReportDocument:
    """The structured report; adds number checks and the parroting score to ``provenance``."""
    doc = features.to_dict()  # the computed tables carry the document as written
    computed = computed_sections(doc, spots, image_info)
    if provenance.get("written_by_language_model") and not provenance.get("images_sent"):
        uncertainty = computed["uncertainty"]
        listed = uncertainty["limitations"]
        if isinstance(listed, list):
            uncertainty["limitations"] = [
                str(x).replace("aggregates and the H&E image", "aggregates, without the image")
                for x in listed
            ]
    ref = collect_numbers(numbers_doc(analysis), doc, computed)
    split = split_sections(narrative)
    sections: list[Section] = []
    n_checked = n_unverified = 0
    for sid, title in SECTIONS:
        text = split.get(sid, "")
        checks = check_numbers(text, ref)
        n_checked += len(checks)
        unverified = [c["text"] for c in checks if not c["verified"]]
        n_unverified += len(unverified)
        sections.append(
            {
                "id": sid,
                "title": title,
                "computed": computed[sid],
                "narrative": text,
                "unverified_numbers": unverified,
            }
        )
    unassigned = split.get("unassigned", "")
    un_checks = check_numbers(unassigned, ref)
    n_checked += len(un_checks)
    n_unverified += sum(not c["verified"] for c in un_checks)
    score, copied, total = parroting_score(prompt_text, narrative)
    from core.report.claims import check_claims, strike, summarise

    checked_all: list[CheckedSentence] = []
    for s in sections:
        checked = check_claims(str(s["narrative"]), features, analysis, ref)
        for c in checked:
            c["section"] = s["id"]
        checked_all += checked
        s["narrative_checked"] = strike(str(s["narrative"]), checked)
    un_checked = check_claims(unassigned, features, analysis, ref)
    for c in un_checked:
        c["section"] = "unassigned"
    checked_all += un_checked
    counts = summarise(checked_all)
    provenance.update(
        {
            "claims": counts,
            "numbers_in_narrative": n_checked,
            "unverified_numbers": n_unverified,
            "parroting": {"score": score, "prompt_numbers": total, "copied_verbatim": copied},
        }
    )
    return {
        "schema": REPORT_SCHEMA,
        "disclaimer": DISCLAIMER,
        "not_assessed": not_assessed(analysis),
        "narrative_source": {
            "backend": provenance.get("backend"),
            "model": provenance.get("model"),
            "written_by_language_model": provenance.get("written_by_language_model"),
            "label": (
                f"no narrative: {provenance['narrative_withheld']}"
                if provenance.get("narrative_withheld")
                else (
                    "written by a language model from the H&E image and tissue-blind features"
                    if provenance.get("images_sent")
                    else "written by a language model from tissue-blind features (no image)"
                )
                if provenance.get("written_by_language_model")
                else "written by a deterministic template, without a language model"
            ),
        },
        "sections": sections,
        "narrative_unassigned": {
            "text": unassigned,
            "text_checked": strike(unassigned, un_checked),
            "unverified_numbers": [c["text"] for c in un_checks if not c["verified"]],
        },
        "narrative_raw": narrative,
        "claim_check": {"counts": counts, "sentences": checked_all},
        "figures": figures,
        "provenance": provenance,
    }


__all__ = [
    "DISCLAIMER",
    "REPORT_SCHEMA",
    "build_report",
    "cell_population_table",
    "check_numbers",
    "collect_numbers",
    "computed_sections",
    "is_verified",
    "not_assessed",
    "numbers_in",
    "parroting_score",
    "qc_summary",
    "render_html",
    "render_markdown",
    "split_sections",
]
