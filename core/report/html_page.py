"""``report.html``: the report document as one self-contained HTML page (figures embedded)."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.features import FeaturesRecord
from core.report.numbers import mark_unverified, report_numbers
from core.report.report_json import ReportDocument
from core.results import AnalysisRecord

if TYPE_CHECKING:
    from core.report.document import Figure, Table

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


def _figure_html(fig: Figure) -> str:
    esc = html.escape
    return (
        f"<figure id='fig{fig.number}'>{_img_tag(fig.data, fig.title)}<figcaption>"
        f"<b>Figure {fig.number}. {esc(fig.title)}.</b> {esc(fig.caption)}</figcaption>"
        "</figure>"
    )


def _table_html(t: Table) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in t.rows)
    note = f"<p class='note'>{esc(t.note)}</p>" if t.note else ""
    return (
        f"<h3>{esc(t.title)}</h3><div class='tablewrap'><table><thead><tr>{head}</tr>"
        f"</thead><tbody>{body}</tbody></table></div>{note}"
    )


def render_html(
    report: ReportDocument,
    analysis: AnalysisRecord,
    features: FeaturesRecord,
    out_dir: Path,
    extra_images: list[tuple[str, bytes]] | None = None,
    context: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """``report.html``: self-contained (figures embedded), laid out as a pathology report."""
    from core.report.document import build_document

    doc = build_document(report, analysis, features, context, out_dir, extra_images)
    ref = report_numbers(report, analysis, features)
    esc = html.escape
    p = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{esc(doc.title)} (research use only)</title><style>{_CSS}</style></head><body>",
        f"<p class='ruo'>{esc(doc.research_use)}</p>",
        f"<div class='ruo-footer'>{esc(doc.research_use)}</div>",
        f"<h1>{esc(doc.title)}</h1>",
        "<dl class='header'>",
    ]
    p += [f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in doc.header]
    p += ["</dl>", "<section id='impression'><h2>Impression</h2><div class='impression'><ul>"]
    p += [f"<li>{esc(x)}</li>" for x in doc.impression]
    p += ["</ul></div></section>", "<section id='findings'><h2>Findings</h2>"]
    for f in doc.findings:
        text = [f"<h3>{esc(f.title)}</h3>"] + [f"<p>{esc(x)}</p>" for x in f.paragraphs]
        if f.facts:
            text.append(
                "<ul class='facts'>"
                + "".join(f"<li>{esc(k)} <span class='v'>{esc(v)}</span></li>" for k, v in f.facts)
                + "</ul>"
            )
        if f.narrative:
            text.append(
                f"<div class='narrative'><span class='label'>Narrative, "
                f"{esc(doc.narrative_label)}:</span>{mark_unverified(f.narrative, ref, False)}</div>"
            )
        figs = "".join(_figure_html(x) for x in f.figures)
        wide = any(x.file.endswith("domains.png") for x in f.figures)  # map + bars: full width
        cls = "finding" if figs and not wide else "finding nofig"
        p.append(
            f"<div class='{cls}' id='finding-{f.id}'><div>{''.join(text)}</div>"
            + (f"<div>{figs}</div>" if figs else "")
            + "</div>"
        )
    p.append("</section>")
    p += ["<section id='limitations'><h2>Limitations</h2><ul>"]
    p += [f"<li>{esc(x)}</li>" for x in doc.limitations] + ["</ul></section>"]
    p += ["<section id='methods'><h2>Methods</h2><ul>"]
    p += [f"<li>{esc(x)}</li>" for x in doc.methods] + ["</ul></section>"]
    p += ["<section id='appendix'><h2>Appendix</h2>", "<details><summary>Full tables</summary>"]
    p += [_table_html(t) for t in doc.tables] + ["</details>"]
    if doc.removed:
        p.append(
            f"<details><summary>Sentences removed from the narrative "
            f"({len(doc.removed)})</summary><ul>"
        )
        for s in doc.removed:
            why = "; ".join(
                f"{c['text']}: {c['reason']}" for c in s["claims"] if c["verdict"] == "contradicted"
            )
            p.append(
                f"<li><del class='removed'>{mark_unverified(s['sentence'], ref, False)}</del> "
                f"(contradicted: {esc(why)})</li>"
            )
        p.append("</ul></details>")
    if doc.extra_figures:
        p.append(
            "<details><summary>Other figures</summary>"
            + "".join(_figure_html(x) for x in doc.extra_figures if x.data)
            + "</details>"
        )
    p.append(
        "<details><summary>Provenance</summary><div class='tablewrap'><table><tbody>"
        + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in doc.provenance)
        + "</tbody></table></div></details></section>"
    )
    p.append(f"<p class='ruo'>{esc(doc.research_use)}</p></body></html>")
    return "\n".join(p)
