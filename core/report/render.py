"""The report: ``report.json`` (structured), ``report.md`` and a self-contained ``report.html``.

The model's narrative is kept apart from the computed tables. Every number in the
narrative is checked against the computed values (``analysis.json``, ``features.json``
and the tables below); numbers that match nothing are marked as unverified and counted.
The parroting score is the share of the prompt's numbers copied verbatim into the
narrative.
"""

from __future__ import annotations

import base64
import bisect
import html
import math
import re
from collections.abc import Mapping
from pathlib import Path
from statistics import median
from typing import Any

from core.features import FeaturesRecord
from core.report.prompts import QUESTIONS, SECTIONS, annotation_available, not_assessed_reasons
from core.results import AnalysisRecord

DISCLAIMER = (
    "Research output, not a diagnosis. This report was produced by an automated analysis "
    "and must not be used for clinical decisions; a qualified pathologist must review "
    "the tissue itself."
)
REPORT_SCHEMA = "mgs.report/1"

# A number: optional sign, digits with optional thousands separators and decimals, optional %.
_NUM = re.compile(
    r"(?<![A-Za-z0-9_.\-])(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+)(\s?%|\s?percent)?"
    r"(?![A-Za-z0-9_]|\.\d)"
)
_ORDINAL = re.compile(r"^\s*(?:[-*]\s*)?(?:Q)?\d+[.)]\s", re.MULTILINE)


# --------------------------------------------------------------------------- numbers
def numbers_in(text: str) -> list[tuple[str, float, bool, int, int]]:
    """(as written, value, is percent, start, end) for each number in free text.

    List ordinals ("1." at the start of a line) and numbers inside words (D1, CD3) are skipped.
    """
    ordinal_spans = [(m.start(), m.end()) for m in _ORDINAL.finditer(text)]
    out = []
    for m in _NUM.finditer(text):
        if any(a <= m.start() < b for a, b in ordinal_spans):
            continue
        raw = m.group(1)
        try:
            value = float(raw.replace(",", ""))
        except ValueError:
            continue
        out.append((m.group(0).strip(), value, bool(m.group(2)), m.start(), m.end()))
    return out


def collect_numbers(*docs: Any) -> list[float]:
    """Every finite number in nested JSON-like documents, sorted."""
    vals: list[float] = []

    def walk(v: Any) -> None:
        if isinstance(v, bool):
            return
        if isinstance(v, int | float):
            if math.isfinite(v):
                vals.append(float(v))
        elif isinstance(v, Mapping):
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            try:
                f = float(v)
            except ValueError:
                return
            if math.isfinite(f):
                vals.append(f)

    for d in docs:
        walk(d)
    return sorted(set(vals))


def _decimals(written: str) -> int:
    core = re.sub(r"\s*(%|percent)$", "", written).replace(",", "")
    return len(core.split(".")[1]) if "." in core else 0


def _near(ref: list[float], v: float, tol: float) -> bool:
    i = bisect.bisect_left(ref, v - tol)
    return i < len(ref) and ref[i] <= v + tol


def is_verified(written: str, value: float, percent: bool, ref: list[float]) -> bool:
    """Whether a number as written matches a computed value, to the precision written."""
    tol = 0.5 * 10 ** (-_decimals(written)) + 1e-9
    if percent:
        return _near(ref, value / 100.0, tol / 100.0) or _near(ref, value, tol)
    if _near(ref, value, tol):
        return True
    # "0.3" for 31% style restatements, and "31" for 0.31 without a percent sign.
    return 0 < abs(value) <= 100 and _near(ref, value / 100.0, tol / 100.0)


def check_numbers(text: str, ref: list[float]) -> list[dict[str, Any]]:
    """Every number of ``text`` with its verdict."""
    return [{"text": w, "value": v, "percent": p, "start": s, "end": e,
             "verified": is_verified(w, v, p, ref)} for w, v, p, s, e in numbers_in(text)]


def _norm(written: str) -> str:
    return written.replace(",", "").replace(" ", "").replace("percent", "%")


def parroting_score(prompt_text: str, narrative: str) -> tuple[float | None, int, int]:
    """(share, copied, total): the prompt's distinct numbers copied verbatim into the narrative."""
    prompt_nums = {_norm(w) for w, *_ in numbers_in(prompt_text)}
    narrative_nums = {_norm(w) for w, *_ in numbers_in(narrative)}
    if not prompt_nums:
        return None, 0, 0
    copied = prompt_nums & narrative_nums
    return round(len(copied) / len(prompt_nums), 4), len(copied), len(prompt_nums)


# --------------------------------------------------------------------------- sections
def split_sections(text: str) -> dict[str, str]:
    """The narrative under the report's section ids; text under no heading goes to ``unassigned``.

    Headings are the section titles (markdown or bold or "Title:") or question numbers Q1-Q6.
    """
    titles = {title.lower(): sid for sid, title in SECTIONS}
    qmap = {qid.lower(): sid for qid, sid, _ in QUESTIONS}
    title_alt = "|".join(re.escape(t) for t in sorted(titles, key=len, reverse=True))
    head = re.compile(
        rf"^[ \t]*(?:#+[ \t]*)?(?:\*\*)?[ \t]*(?:\d+[.)][ \t]*)?(?:(?P<title>{title_alt})|(?P<q>Q[1-6]))"
        r"\b[ \t]*(?:\*\*)?[ \t]*[:.\-]?[ \t]*(?:\*\*)?[ \t]*(?P<rest>.*)$",
        re.IGNORECASE | re.MULTILINE,
    )
    parts: dict[str, list[str]] = {}
    current = "unassigned"
    pos = 0
    for m in head.finditer(text):
        parts.setdefault(current, []).append(text[pos:m.start()])
        key = (m.group("title") or m.group("q") or "").lower()
        current = titles.get(key) or qmap.get(key, "unassigned")
        pos = m.start("rest")
    parts.setdefault(current, []).append(text[pos:])
    out = {k: "\n".join(s.strip() for s in v if s.strip()) for k, v in parts.items()}
    return {k: v for k, v in out.items() if v}


# --------------------------------------------------------------------------- tables
def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def cell_population_table(spots: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Per cell type: lineage, units, share and mean confidence (from ``spots.csv``)."""
    groups: dict[str, list[dict[str, str]]] = {}
    for r in spots:
        groups.setdefault(r.get("cell_type") or "unassigned", []).append(r)
    n = len(spots) or 1
    rows = []
    for t, rs in groups.items():
        conf = [c for c in (_f(r.get("confidence")) for r in rs) if c is not None]
        rows.append({"cell_type": t, "lineage": rs[0].get("lineage", ""), "units": len(rs),
                     "fraction": round(len(rs) / n, 4),
                     "mean_confidence": round(sum(conf) / len(conf), 4) if conf else None})
    return sorted(rows, key=lambda r: (-r["units"], r["cell_type"]))


def qc_summary(spots: list[dict[str, str]]) -> dict[str, Any]:
    """Medians of the QC columns of ``spots.csv``."""
    out: dict[str, Any] = {"units": len(spots)}
    for col in ("total_counts", "n_genes", "pct_mito", "pct_ribo"):
        vals = [v for v in (_f(r.get(col)) for r in spots) if v is not None]
        if vals:
            out[f"median_{col}"] = round(median(vals), 4)
    return out


_LINEAGE_STATS = ("heterogeneity", "lineage_colocalisation", "lineage_segregation")


def computed_sections(features: Mapping[str, Any], spots: list[dict[str, str]],
                      image_info: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The computed tables of each section (never written by a model)."""
    spatial = features.get("spatial") or {}
    annotated = annotation_available(features)
    held = not_assessed_reasons(features)
    return {
        "specimen_and_qc": {"platform": features.get("platform") or {},
                            "qc": features.get("qc") or {}, "qc_medians": qc_summary(spots)},
        "tissue_architecture": {"n_clusters": (features.get("clusters") or {}).get("n_clusters"),
                                "domains": features.get("domains") or [],
                                **({"domain_count": features["domain_count"]}
                                   if features.get("domain_count") else {}),
                                **({"domains_not_assessed": held["domains"]}
                                   if "domains" in held else {})},
        "cell_populations": ({"annotation": features.get("annotation") or {},
                              "lineage_composition": features.get("lineage_composition") or {},
                              "populations": cell_population_table(spots)} if annotated else
                             {"annotation": {"available": False},
                              "note": held.get("annotation") or
                              "cell-type annotation was unavailable (too few marker "
                              "genes of the marker table in this sample); no cell "
                              "populations or lineage composition were computed"}),
        "spatial_organisation": dict(spatial) if annotated else {
            k: v for k, v in spatial.items() if k not in _LINEAGE_STATS},
        "morphology": {"image": dict(image_info)},
        "uncertainty": {
            "fraction_low_confidence": (features.get("annotation") or {}).get(
                "fraction_low_confidence") if annotated else None,
            "limitations": [
                "Each measurement unit can hold several cells; cell populations are estimates.",
                "Annotation depends on the marker table; unlisted cell types are not found.",
                "The model saw only tissue-blind aggregates and the H&E image; it was not told "
                "the organ of origin.",
            ],
        },
        "follow_up": {},
    }


# --------------------------------------------------------------------------- render
def not_assessed(analysis: AnalysisRecord) -> dict[str, Any]:
    """What the analysis could not assess and why: its failed reliability checks
    (``analysis.json`` ``claims``) and the reader's notes on the sample."""
    notes = [*analysis.provenance.notes, *analysis.qc.notes]
    return {"claims": [{"claim": c.name, "reason": c.reason, "value": c.value,
                        "threshold": c.threshold} for c in analysis.withheld_claims],
            "notes": notes}


def _numbers_doc(analysis: AnalysisRecord) -> dict[str, Any]:
    """The analysis as a JSON document for :func:`collect_numbers` (its version left out)."""
    return analysis.model_dump(mode="json", exclude={"schema_version"})


def build_report(features: FeaturesRecord, analysis: AnalysisRecord,
                 spots: list[dict[str, str]], narrative: str, prompt_text: str,
                 image_info: Mapping[str, Any], provenance: dict[str, Any],
                 figures: list[str]) -> dict[str, Any]:
    """The structured report; adds number checks and the parroting score to ``provenance``."""
    doc = features.to_dict()  # the computed tables carry the document as written
    computed = computed_sections(doc, spots, image_info)
    if provenance.get("written_by_language_model") and not provenance.get("images_sent"):
        computed["uncertainty"]["limitations"] = [
            x.replace("aggregates and the H&E image", "aggregates, without the image")
            for x in computed["uncertainty"]["limitations"]]
    ref = collect_numbers(_numbers_doc(analysis), doc, computed)
    split = split_sections(narrative)
    sections = []
    n_checked = n_unverified = 0
    for sid, title in SECTIONS:
        text = split.get(sid, "")
        checks = check_numbers(text, ref)
        n_checked += len(checks)
        unverified = [c["text"] for c in checks if not c["verified"]]
        n_unverified += len(unverified)
        sections.append({"id": sid, "title": title, "computed": computed[sid],
                         "narrative": text, "unverified_numbers": unverified})
    unassigned = split.get("unassigned", "")
    un_checks = check_numbers(unassigned, ref)
    n_checked += len(un_checks)
    n_unverified += sum(not c["verified"] for c in un_checks)
    score, copied, total = parroting_score(prompt_text, narrative)
    from core.report.claims import check_claims, strike, summarise

    checked_all: list[dict[str, Any]] = []
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
    provenance.update({
        "claims": counts,
        "numbers_in_narrative": n_checked,
        "unverified_numbers": n_unverified,
        "parroting": {"score": score, "prompt_numbers": total, "copied_verbatim": copied},
    })
    return {
        "schema": REPORT_SCHEMA,
        "disclaimer": DISCLAIMER,
        "not_assessed": not_assessed(analysis),
        "narrative_source": {
            "backend": provenance.get("backend"),
            "model": provenance.get("model"),
            "written_by_language_model": provenance.get("written_by_language_model"),
            "label": (f"no narrative: {provenance['narrative_withheld']}"
                      if provenance.get("narrative_withheld") else
                      ("written by a language model from the H&E image and tissue-blind features"
                       if provenance.get("images_sent") else
                       "written by a language model from tissue-blind features (no image)")
                      if provenance.get("written_by_language_model")
                      else "written by a deterministic template, without a language model"),
        },
        "sections": sections,
        "narrative_unassigned": {"text": unassigned,
                                 "text_checked": strike(unassigned, un_checked),
                                 "unverified_numbers": [c["text"] for c in un_checks
                                                        if not c["verified"]]},
        "narrative_raw": narrative,
        "claim_check": {"counts": counts, "sentences": checked_all},
        "figures": figures,
        "provenance": provenance,
    }


def _marked(text: str, ref_checks: list[dict[str, Any]], wrap: tuple[str, str],
            esc: bool) -> str:
    out, pos = [], 0
    for c in ref_checks:
        seg = text[pos:c["start"]]
        num = text[c["start"]:c["end"]]
        out.append(html.escape(seg) if esc else seg)
        num_s = html.escape(num) if esc else num
        out.append(num_s if c["verified"] else f"{wrap[0]}{num_s}{wrap[1]}")
        pos = c["end"]
    tail = text[pos:]
    out.append(html.escape(tail) if esc else tail)
    return "".join(out)



def _ref(report: Mapping[str, Any], analysis: AnalysisRecord,
         features: FeaturesRecord) -> list[float]:
    computed = {s["id"]: s["computed"] for s in report["sections"]}
    return collect_numbers(_numbers_doc(analysis), features.to_dict(), computed)


def _mark(text: str, ref: list[float], md: bool) -> str:
    wrap = ("", " ⟨unverified⟩") if md else (
        "<mark class='unverified' title='matches no computed value'>", "</mark>")
    return _marked(text, check_numbers(text, ref), wrap, not md)


# --------------------------------------------------------------------------- markdown
def render_markdown(report: Mapping[str, Any], analysis: AnalysisRecord,
                    features: FeaturesRecord, context: Mapping[str, Any] | None = None) -> str:
    """``report.md``: the same document as the HTML and PDF, in Markdown."""
    from core.report.document import build_document

    doc = build_document(report, analysis, features, context)
    ref = _ref(report, analysis, features)
    out = [f"# {doc.title}", "", f"> **{doc.research_use}**", ""]
    out += [f"- **{k}:** {v}" for k, v in doc.header] + [""]
    out += ["## Impression", ""] + [f"- {x}" for x in doc.impression] + [""]
    out += ["## Findings", ""]
    for f in doc.findings:
        out += [f"### {f.title}", ""] + [p + "\n" for p in f.paragraphs]
        out += [f"- {k}: {v}" for k, v in f.facts] + ([""] if f.facts else [])
        if f.narrative:
            out += [f"*Narrative ({doc.narrative_label}):*", "", _mark(f.narrative, ref, True), ""]
        for fig in f.figures:
            out += [f"![Figure {fig.number}. {fig.title}]({fig.file})", "",
                    f"*Figure {fig.number}. {fig.title}.* {fig.caption}", ""]
    out += ["## Limitations", ""] + [f"- {x}" for x in doc.limitations] + [""]
    out += ["## Methods", ""] + [f"- {x}" for x in doc.methods] + [""]
    out += ["## Appendix", ""]
    for t in doc.tables:
        out += [f"### {t.title}", "", "| " + " | ".join(t.columns) + " |",
                "|" + "---|" * len(t.columns)]
        out += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in t.rows]
        out += [""] + ([t.note, ""] if t.note else [])
    if doc.removed:
        out += ["### Sentences removed from the narrative", ""]
        for s in doc.removed:
            why = "; ".join(f"{c['text']}: {c['reason']}" for c in s["claims"]
                            if c["verdict"] == "contradicted")
            out += [f"- ~~{_mark(s['sentence'], ref, True)}~~ (contradicted: {why})"]
        out += [""]
    extra = [f for f in doc.extra_figures if f.file]
    for fig in extra:
        out += [f"![Figure {fig.number}. {fig.title}]({fig.file})", "",
                f"*Figure {fig.number}. {fig.title}.* {fig.caption}", ""]
    out += ["### Provenance", ""] + [f"- {k}: {v}" for k, v in doc.provenance] + [""]
    return "\n".join(out)


# --------------------------------------------------------------------------- html
_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:72rem;margin:0 auto;
 padding:1rem 1.5rem 3rem;color:#1d1d1f;line-height:1.45;font-size:15px}
h1{font-size:1.5rem;margin:.6rem 0} h2{font-size:1.2rem;border-bottom:2px solid #ddd;
 padding-bottom:.2rem;margin-top:1.8rem} h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
.ruo{border:2px solid #b00;background:#fff3f3;padding:.5rem .8rem;font-weight:600}
.ruo-footer{display:none}
dl.header{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.8rem 0;
 padding:.6rem .8rem;background:#f5f7fa;border:1px solid #dde3ea}
dl.header dt{font-weight:600} dl.header dd{margin:0;overflow-wrap:anywhere}
.impression{border-left:4px solid #2a6;padding:.2rem 1rem;background:#f3fbf6}
.finding{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.15fr);gap:1.2rem;
 align-items:start;margin-bottom:1rem}
.finding.nofig{grid-template-columns:minmax(0,1fr)}
.narrative{background:#f6f8fa;border-left:4px solid #6a8;padding:.4rem .8rem;
 white-space:pre-wrap;overflow-wrap:anywhere}
.narrative .label{display:block;font-size:.8rem;color:#555;white-space:normal}
figure{margin:0 0 1rem} figure img{width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#333} figcaption b{color:#000}
.tablewrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.4rem 0;width:100%}
td,th{border:1px solid #ccc;padding:.25rem .45rem;font-size:.85rem;text-align:left;
 vertical-align:top;overflow-wrap:anywhere}
th{background:#f0f2f5} ul.facts{list-style:none;padding:0;margin:.3rem 0}
ul.facts li{padding:.1rem 0;border-bottom:1px dotted #ddd}
ul.facts span.v{float:right;font-variant-numeric:tabular-nums}
details{margin:.6rem 0;border:1px solid #ddd;padding:.4rem .8rem}
summary{cursor:pointer;font-weight:600}
del.removed{color:#8a1f1f} mark.unverified{background:#ffd27f}
@media (max-width:900px){.finding{grid-template-columns:minmax(0,1fr)}}
@page{size:A4;margin:16mm 14mm 20mm}
@media print{body{max-width:none;padding:0;font-size:10.5pt}
 .finding{grid-template-columns:minmax(0,1fr)} figure{break-inside:avoid}
 figure img{max-height:120mm;width:auto;max-width:100%}
 details{border:none;padding:0} details>*{display:block}
 .ruo-footer{display:block;position:fixed;bottom:0;left:0;right:0;font-size:8pt;color:#600;
 text-align:center;border-top:1px solid #b00;background:#fff}}
"""


def _img_tag(data: bytes | None, alt: str) -> str:
    if data is None:
        return ""
    b64 = base64.b64encode(data).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{b64}'>"


def _figure_html(fig: Any) -> str:
    esc = html.escape
    return (f"<figure id='fig{fig.number}'>{_img_tag(fig.data, fig.title)}<figcaption>"
            f"<b>Figure {fig.number}. {esc(fig.title)}.</b> {esc(fig.caption)}</figcaption>"
            "</figure>")


def _table_html(t: Any) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in t.rows)
    note = f"<p class='note'>{esc(t.note)}</p>" if t.note else ""
    return (f"<h3>{esc(t.title)}</h3><div class='tablewrap'><table><thead><tr>{head}</tr>"
            f"</thead><tbody>{body}</tbody></table></div>{note}")


def render_html(report: Mapping[str, Any], analysis: AnalysisRecord,
                features: FeaturesRecord, out_dir: Path,
                extra_images: list[tuple[str, bytes]] | None = None,
                context: Mapping[str, Any] | None = None) -> str:
    """``report.html``: self-contained (figures embedded), laid out as a pathology report."""
    from core.report.document import build_document

    doc = build_document(report, analysis, features, context, out_dir, extra_images)
    ref = _ref(report, analysis, features)
    esc = html.escape
    p = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
         "<meta name='viewport' content='width=device-width,initial-scale=1'>"
         f"<title>{esc(doc.title)} (research use only)</title><style>{_CSS}</style></head><body>",
         f"<p class='ruo'>{esc(doc.research_use)}</p>",
         f"<div class='ruo-footer'>{esc(doc.research_use)}</div>",
         f"<h1>{esc(doc.title)}</h1>", "<dl class='header'>"]
    p += [f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in doc.header]
    p += ["</dl>", "<section id='impression'><h2>Impression</h2><div class='impression'><ul>"]
    p += [f"<li>{esc(x)}</li>" for x in doc.impression]
    p += ["</ul></div></section>", "<section id='findings'><h2>Findings</h2>"]
    for f in doc.findings:
        text = [f"<h3>{esc(f.title)}</h3>"] + [f"<p>{esc(x)}</p>" for x in f.paragraphs]
        if f.facts:
            text.append("<ul class='facts'>" + "".join(
                f"<li>{esc(k)} <span class='v'>{esc(v)}</span></li>" for k, v in f.facts)
                + "</ul>")
        if f.narrative:
            text.append(f"<div class='narrative'><span class='label'>Narrative, "
                        f"{esc(doc.narrative_label)}:</span>{_mark(f.narrative, ref, False)}</div>")
        figs = "".join(_figure_html(x) for x in f.figures)
        wide = any(x.file.endswith("domains.png") for x in f.figures)  # map + bars: full width
        cls = "finding" if figs and not wide else "finding nofig"
        p.append(f"<div class='{cls}' id='finding-{f.id}'><div>{''.join(text)}</div>"
                 + (f"<div>{figs}</div>" if figs else "") + "</div>")
    p.append("</section>")
    p += ["<section id='limitations'><h2>Limitations</h2><ul>"]
    p += [f"<li>{esc(x)}</li>" for x in doc.limitations] + ["</ul></section>"]
    p += ["<section id='methods'><h2>Methods</h2><ul>"]
    p += [f"<li>{esc(x)}</li>" for x in doc.methods] + ["</ul></section>"]
    p += ["<section id='appendix'><h2>Appendix</h2>",
          "<details><summary>Full tables</summary>"]
    p += [_table_html(t) for t in doc.tables] + ["</details>"]
    if doc.removed:
        p.append(f"<details><summary>Sentences removed from the narrative "
                 f"({len(doc.removed)})</summary><ul>")
        for s in doc.removed:
            why = "; ".join(f"{c['text']}: {c['reason']}" for c in s["claims"]
                            if c["verdict"] == "contradicted")
            p.append(f"<li><del class='removed'>{_mark(s['sentence'], ref, False)}</del> "
                     f"(contradicted: {esc(why)})</li>")
        p.append("</ul></details>")
    if doc.extra_figures:
        p.append("<details><summary>Other figures</summary>"
                 + "".join(_figure_html(x) for x in doc.extra_figures if x.data) + "</details>")
    p.append("<details><summary>Provenance</summary><div class='tablewrap'><table><tbody>"
             + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in doc.provenance)
             + "</tbody></table></div></details></section>")
    p.append(f"<p class='ruo'>{esc(doc.research_use)}</p></body></html>")
    return "\n".join(p)
