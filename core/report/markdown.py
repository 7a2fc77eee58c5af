"""``report.md``: the report document rendered as Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.features import FeaturesRecord
from core.report.numbers import mark_unverified, report_numbers
from core.report.report_json import ReportDocument
from core.results import AnalysisRecord


def render_markdown(
    report: ReportDocument,
    analysis: AnalysisRecord,
    features: FeaturesRecord,
    context: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """``report.md``: the same document as the HTML and PDF, in Markdown."""
    from core.report.document import build_document

    doc = build_document(report, analysis, features, context)
    ref = report_numbers(report, analysis, features)
    out = [f"# {doc.title}", "", f"> **{doc.research_use}**", ""]
    out += [f"- **{k}:** {v}" for k, v in doc.header] + [""]
    out += ["## Impression", ""] + [f"- {x}" for x in doc.impression] + [""]
    out += ["## Findings", ""]
    for f in doc.findings:
        out += [f"### {f.title}", ""] + [p + "\n" for p in f.paragraphs]
        out += [f"- {k}: {v}" for k, v in f.facts] + ([""] if f.facts else [])
        if f.narrative:
            out += [
                f"*Narrative ({doc.narrative_label}):*",
                "",
                mark_unverified(f.narrative, ref, True),
                "",
            ]
        for fig in f.figures:
            out += [
                f"![Figure {fig.number}. {fig.title}]({fig.file})",
                "",
                f"*Figure {fig.number}. {fig.title}.* {fig.caption}",
                "",
            ]
    out += ["## Limitations", ""] + [f"- {x}" for x in doc.limitations] + [""]
    out += ["## Methods", ""] + [f"- {x}" for x in doc.methods] + [""]
    out += ["## Appendix", ""]
    for t in doc.tables:
        out += [
            f"### {t.title}",
            "",
            "| " + " | ".join(t.columns) + " |",
            "|" + "---|" * len(t.columns),
        ]
        out += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in t.rows]
        out += [""] + ([t.note, ""] if t.note else [])
    if doc.removed:
        out += ["### Sentences removed from the narrative", ""]
        for s in doc.removed:
            why = "; ".join(
                f"{c['text']}: {c['reason']}" for c in s["claims"] if c["verdict"] == "contradicted"
            )
            out += [f"- ~~{mark_unverified(s['sentence'], ref, True)}~~ (contradicted: {why})"]
        out += [""]
    extra = [f for f in doc.extra_figures if f.file]
    for fig in extra:
        out += [
            f"![Figure {fig.number}. {fig.title}]({fig.file})",
            "",
            f"*Figure {fig.number}. {fig.title}.* {fig.caption}",
            "",
        ]
    out += ["### Provenance", ""] + [f"- {k}: {v}" for k, v in doc.provenance] + [""]
    return "\n".join(out)
