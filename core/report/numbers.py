"""Numbers in a narrative, checked against the computed values.

Every number the narrative writes is looked up among the computed values (``analysis.json``,
``features.json`` and the report's tables) to the precision written; a number that matches
nothing is marked unverified. The parroting score is the share of the prompt's numbers copied
verbatim into the narrative.
"""

from __future__ import annotations

import bisect
import html
import math
import re
from collections.abc import Mapping

from core.features import FeaturesRecord
from core.jsonable import JSONObject
from core.report.report_json import NumberCheck, ReportDocument
from core.results import AnalysisRecord

# A number: optional sign, digits with optional thousands separators and decimals, optional %.
_NUM = re.compile(
    r"(?<![A-Za-z0-9_.\-])(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+)(\s?%|\s?percent)?"
    r"(?![A-Za-z0-9_]|\.\d)"
)
_ORDINAL = re.compile(r"^\s*(?:[-*]\s*)?(?:Q)?\d+[.)]\s", re.MULTILINE)


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


def collect_numbers(*docs: object) -> list[float]:
    """Every finite number in nested JSON-like documents, sorted."""
    vals: list[float] = []

    def walk(v: object) -> None:
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


def check_numbers(text: str, ref: list[float]) -> list[NumberCheck]:
    """Every number of ``text`` with its verdict."""
    return [
        {
            "text": w,
            "value": v,
            "percent": p,
            "start": s,
            "end": e,
            "verified": is_verified(w, v, p, ref),
        }
        for w, v, p, s, e in numbers_in(text)
    ]


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


def numbers_doc(analysis: AnalysisRecord) -> JSONObject:
    """The analysis as a JSON document for :func:`collect_numbers` (its version left out)."""
    return analysis.model_dump(mode="json", exclude={"schema_version"})


def _marked(text: str, ref_checks: list[NumberCheck], wrap: tuple[str, str], esc: bool) -> str:
    out, pos = [], 0
    for c in ref_checks:
        seg = text[pos : c["start"]]
        num = text[c["start"] : c["end"]]
        out.append(html.escape(seg) if esc else seg)
        num_s = html.escape(num) if esc else num
        out.append(num_s if c["verified"] else f"{wrap[0]}{num_s}{wrap[1]}")
        pos = c["end"]
    tail = text[pos:]
    out.append(html.escape(tail) if esc else tail)
    return "".join(out)


def report_numbers(
    report: ReportDocument, analysis: AnalysisRecord, features: FeaturesRecord
) -> list[float]:
    computed = {s["id"]: s["computed"] for s in report["sections"]}
    return collect_numbers(numbers_doc(analysis), features.to_dict(), computed)


def mark_unverified(text: str, ref: list[float], md: bool) -> str:
    wrap = (
        ("", " ⟨unverified⟩")
        if md
        else ("<mark class='unverified' title='matches no computed value'>", "</mark>")
    )
    return _marked(text, check_numbers(text, ref), wrap, not md)
