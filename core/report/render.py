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
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from statistics import median
from typing import Any

from core.report.prompts import QUESTIONS, SECTIONS, annotation_available, not_assessed_reasons

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
                "Numbers in the narrative that match no computed value are marked unverified.",
            ],
        },
        "follow_up": {},
    }


# --------------------------------------------------------------------------- render
def not_assessed(analysis: Mapping[str, Any]) -> dict[str, Any]:
    """What the analysis could not assess and why: its failed reliability checks
    (``analysis.json`` ``claims``) and the reader's notes on the sample."""
    claims = [c for c in analysis.get("claims") or []
              if isinstance(c, Mapping) and c.get("passed") is False]
    prov = analysis.get("provenance") or {}
    qc = analysis.get("qc") or {}
    notes = [str(n) for n in [*(prov.get("notes") or []), *(qc.get("notes") or [])]]
    return {"claims": [{"claim": c.get("name"), "reason": c.get("reason"),
                        "value": c.get("value"), "threshold": c.get("threshold")} for c in claims],
            "notes": notes}


def _not_assessed_lines(report: Mapping[str, Any]) -> list[str]:
    na = report.get("not_assessed") or {}
    return [f"{c['claim'].replace('_', ' ')}: {c['reason']}" for c in na.get("claims") or []] \
        + [f"note: {n}" for n in na.get("notes") or []]


def build_report(features: Mapping[str, Any], analysis: Mapping[str, Any],
                 spots: list[dict[str, str]], narrative: str, prompt_text: str,
                 image_info: Mapping[str, Any], provenance: dict[str, Any],
                 figures: list[str]) -> dict[str, Any]:
    """The structured report; adds number checks and the parroting score to ``provenance``."""
    computed = computed_sections(features, spots, image_info)
    ref = collect_numbers(analysis, features, computed)
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
    provenance.update({
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
                      if provenance.get("narrative_withheld")
                      else "written by a language model from the H&E image and tissue-blind features"
                      if provenance.get("written_by_language_model")
                      else "written by a deterministic template, without a language model"),
        },
        "sections": sections,
        "narrative_unassigned": {"text": unassigned,
                                 "unverified_numbers": [c["text"] for c in un_checks
                                                        if not c["verified"]]},
        "narrative_raw": narrative,
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


def _ref(report: Mapping[str, Any], analysis: Mapping[str, Any],
         features: Mapping[str, Any]) -> list[float]:
    computed = {s["id"]: s["computed"] for s in report["sections"]}
    return collect_numbers(analysis, features, computed)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, Mapping):
        return "; ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return "" if v is None else str(v)


def _md_table(rows: list[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)).replace("|", "/") for c in cols) + " |"
              for r in rows]
    return "\n".join(lines)


def _computed_md(computed: Mapping[str, Any]) -> str:
    parts = []
    for k, v in computed.items():
        if isinstance(v, list) and v and isinstance(v[0], Mapping):
            parts.append(f"*{k}*\n\n{_md_table(v)}")
        elif isinstance(v, Mapping):
            inner = [(kk, vv) for kk, vv in v.items() if not (isinstance(vv, list) and vv
                                                               and isinstance(vv[0], Mapping))]
            tables = [(kk, vv) for kk, vv in v.items() if (kk, vv) not in inner]
            if inner:
                parts.append(f"*{k}*: " + "; ".join(f"{kk} = {_fmt(vv)}" for kk, vv in inner))
            for kk, vv in tables:
                parts.append(f"*{k}.{kk}*\n\n{_md_table(vv)}")
        elif isinstance(v, list):
            parts.append(f"*{k}*:\n" + "\n".join(f"- {_fmt(x)}" for x in v))
        elif v is not None:
            parts.append(f"*{k}*: {_fmt(v)}")
    return "\n\n".join(parts)


def render_markdown(report: Mapping[str, Any], analysis: Mapping[str, Any],
                    features: Mapping[str, Any]) -> str:
    """``report.md``: computed tables and narrative per section; unverified numbers marked."""
    ref = _ref(report, analysis, features)
    prov = report["provenance"]
    src = report["narrative_source"]
    out = ["# Spatial transcriptomics pathology report (research)", "",
           f"> **{report['disclaimer']}**", "",
           f"Narrative: {src['label']} (backend `{src['backend']}`"
           + (f", model `{src['model']}`" if src.get("model") else "") + "). "
           "Numbers marked ⟨unverified⟩ match no computed value.", ""]
    lines = _not_assessed_lines(report)
    if lines:
        out += ["## What could not be assessed", "",
                "The data cannot carry these claims, so they are not reported:", ""]
        out += [f"- {x}" for x in lines] + [""]
    for s in report["sections"]:
        out += [f"## {s['title']}", "", "### Computed", "", _computed_md(s["computed"]) or "_none_",
                "", "### Narrative", ""]
        text = s["narrative"]
        out.append(_marked(text, check_numbers(text, ref), ("", " ⟨unverified⟩"), False)
                   if text else "_The narrative has nothing under this heading._")
        out.append("")
    un = report["narrative_unassigned"]["text"]
    if un:
        out += ["## Narrative outside the report headings", "",
                _marked(un, check_numbers(un, ref), ("", " ⟨unverified⟩"), False), ""]
    if report["figures"]:
        out += ["## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in report["figures"]] + [""]
    out += ["## Provenance", "", "```json", json.dumps(prov, indent=2, default=str), "```", ""]
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
.disclaimer{border:2px solid #b00;background:#fff3f3;padding:.8rem;font-weight:600}
.narrative{background:#f6f8fa;border-left:4px solid #6a8;padding:.6rem 1rem;white-space:pre-wrap}
.computed{border-left:4px solid #68a;padding:.2rem 1rem}
mark.unverified{background:#ffd27f} table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ccc;padding:.2rem .5rem;font-size:.9rem} img{max-width:100%}
pre{background:#f4f4f4;padding:.6rem;overflow-x:auto;font-size:.8rem}
"""


def _html_value(v: Any) -> str:
    if isinstance(v, list) and v and isinstance(v[0], Mapping):
        cols = list(v[0])
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols)
                       + "</tr>" for r in v)
        return f"<table><tr>{head}</tr>{body}</table>"
    if isinstance(v, Mapping):
        return "<ul>" + "".join(f"<li><b>{html.escape(str(k))}</b>: {_html_value(x)}</li>"
                                for k, x in v.items()) + "</ul>"
    if isinstance(v, list):
        return html.escape(", ".join(_fmt(x) for x in v))
    return html.escape(_fmt(v))


def render_html(report: Mapping[str, Any], analysis: Mapping[str, Any],
                features: Mapping[str, Any], out_dir: Path,
                extra_images: list[tuple[str, bytes]] | None = None) -> str:
    """``report.html``: self-contained, with the figures embedded as base64 PNG."""
    ref = _ref(report, analysis, features)
    src = report["narrative_source"]
    esc = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>Spatial pathology report (research)</title><style>{_CSS}</style></head><body>",
             "<h1>Spatial transcriptomics pathology report (research)</h1>",
             f"<p class='disclaimer'>{esc(report['disclaimer'])}</p>",
             f"<p>Narrative: {esc(src['label'])} (backend <code>{esc(str(src['backend']))}</code>"
             + (f", model <code>{esc(str(src['model']))}</code>" if src.get("model") else "")
             + "). Highlighted numbers match no computed value (unverified).</p>"]
    lines = _not_assessed_lines(report)
    if lines:
        parts.append("<h2>What could not be assessed</h2><p>The data cannot carry these claims, "
                     "so they are not reported:</p><ul>"
                     + "".join(f"<li>{esc(x)}</li>" for x in lines) + "</ul>")
    for s in report["sections"]:
        parts.append(f"<h2>{esc(s['title'])}</h2>")
        parts.append(f"<div class='computed'><h3>Computed</h3>{_html_value(s['computed'])}</div>")
        text = s["narrative"]
        body = (_marked(text, check_numbers(text, ref),
                        ("<mark class='unverified' title='matches no computed value'>", "</mark>"),
                        True) if text else "<i>The narrative has nothing under this heading.</i>")
        parts.append(f"<h3>Narrative</h3><div class='narrative'>{body}</div>")
    un = report["narrative_unassigned"]["text"]
    if un:
        marked = _marked(un, check_numbers(un, ref),
                         ("<mark class='unverified' title='matches no computed value'>", "</mark>"),
                         True)
        parts.append("<h2>Narrative outside the report headings</h2>"
                     f"<div class='narrative'>{marked}</div>")
    images: list[tuple[str, bytes]] = list(extra_images or [])
    for f in report["figures"]:
        p = out_dir / f
        if p.is_file():
            images.append((Path(f).stem, p.read_bytes()))
    if images:
        parts.append("<h2>Figures</h2>")
        for name, data in images:
            b64 = base64.b64encode(data).decode("ascii")
            parts.append(f"<figure><img alt='{esc(name)}' src='data:image/png;base64,{b64}'>"
                         f"<figcaption>{esc(name)}</figcaption></figure>")
    parts.append("<h2>Provenance</h2><pre>"
                 + esc(json.dumps(report["provenance"], indent=2, default=str)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
