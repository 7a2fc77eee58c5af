"""Report status from its sign-off history, and the status header every rendering shows.

Pure (no database): the service reads the history, these functions turn it into the
report's status (``preliminary`` until a reviewer signs it ``final``; ``amended`` after
an addendum) and into the header block of the JSON, Markdown, HTML (and PDF) renderings.
"""

from __future__ import annotations

import enum
import hashlib
import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from core.report.document import STATUS
from core.report.report_json import ReportDocument, SignoffEntry


class ReportStatus(enum.StrEnum):
    """The status of a report: preliminary until a reviewer signs it final, then amended."""

    PRELIMINARY = "preliminary"
    FINAL = "final"
    AMENDED = "amended"


@dataclass(frozen=True)
class Signoff:
    """One immutable sign-off record (as stored, in order)."""

    seq: int
    reviewer: str
    key_id: str
    status: str  # "final" | "amended"
    comment: str | None
    content_sha256: str
    signed_at: datetime

    def as_dict(self) -> SignoffEntry:
        return {
            "seq": self.seq,
            "reviewer": self.reviewer,
            "key_id": self.key_id,
            "status": self.status,
            "comment": self.comment,
            "content_sha256": self.content_sha256,
            "signed_at": self.signed_at.isoformat(),
        }


def content_sha256(report_json: bytes) -> str:
    """The hash a sign-off records: sha256 of the ``report.json`` artifact's bytes."""
    return hashlib.sha256(report_json).hexdigest()


def report_status(history: Sequence[Signoff]) -> ReportStatus:
    """``preliminary`` with no sign-off, else the status of the latest one."""
    if not history:
        return ReportStatus.PRELIMINARY
    return ReportStatus(history[-1].status)


def addenda(history: Sequence[Signoff]) -> list[Signoff]:
    """The amendments (each carries its comment as the addendum text)."""
    return [s for s in history if s.status == ReportStatus.AMENDED.value]


def status_lines(history: Sequence[Signoff]) -> list[str]:
    """Plain-text header lines: the status, who signed it and when, then each addendum.

    The PDF renderer and every export use these same lines.
    """
    status = report_status(history)
    if status == ReportStatus.PRELIMINARY:
        return ["Report status: PRELIMINARY (not yet reviewed and signed by a pathologist)"]
    first = history[0]
    lines = [
        f"Report status: {status.value.upper()}",
        f"Signed final by {first.reviewer} at {first.signed_at.isoformat()}"
        + (f": {first.comment}" if first.comment else ""),
    ]
    for a in addenda(history):
        lines.append(f"Addendum by {a.reviewer} at {a.signed_at.isoformat()}: {a.comment}")
    return lines


def _when(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if t.tzinfo else t.isoformat()


def header_status(history: Sequence[Signoff]) -> str:
    """The value of the report header's "Report status" row (what the HTML, Markdown and PDF
    header tables show): preliminary until signed, then who signed it final and when, and for an
    amended report how many addenda and the latest one's reviewer and time."""
    status = report_status(history)
    if status == ReportStatus.PRELIMINARY:
        return STATUS
    first = history[0]
    text = f"Final: signed by {first.reviewer}, {_when(first.signed_at)}"
    extra = addenda(history)
    if extra:
        last = extra[-1]
        n = len(extra)
        text = (
            f"Amended: {n} addend{'um' if n == 1 else 'a'}, latest by {last.reviewer}, "
            f"{_when(last.signed_at)} ({text[0].lower()}{text[1:]})"
        )
    return f"{text} (research use only, not for diagnosis)"


def _header_row_markdown(value: str) -> str:
    return f"- **Report status:** {value}"


def _header_row_html(value: str) -> str:
    return f"<dt>Report status</dt><dd>{html.escape(value)}</dd>"


def with_status_json(report: ReportDocument, history: Sequence[Signoff]) -> ReportDocument:
    """``report.json`` with ``report_status`` and ``signoffs`` added in front."""
    return {
        "report_status": report_status(history).value,
        "signoffs": [s.as_dict() for s in history],
        **report,
    }


def _with_header_row(text: str, history: Sequence[Signoff], row: Callable[[str], str]) -> str:
    """``text`` with its header table's "Report status" row (written preliminary when the
    report was made) saying the status now."""
    return text.replace(row(STATUS), row(header_status(history)), 1)


def with_status_markdown(markdown: str, history: Sequence[Signoff]) -> str:
    """``report.md`` with the status block after its title line."""
    block = "\n".join(f"> {line}  " for line in status_lines(history))
    markdown = _with_header_row(markdown, history, _header_row_markdown)
    head, sep, rest = markdown.partition("\n")
    if head.startswith("# "):
        return f"{head}\n\n{block}\n{sep}{rest}"
    return f"{block}\n\n{markdown}"


def with_status_html(page: str, history: Sequence[Signoff]) -> str:
    """``report.html`` with the status block after its ``<h1>`` (or at the top of the body)."""
    status = report_status(history).value
    page = _with_header_row(page, history, _header_row_html)
    items = "".join(f"<div>{html.escape(line)}</div>" for line in status_lines(history))
    block = (
        f"<div class='report-status report-status-{status}' data-report-status='{status}' "
        f"style='border:2px solid #345;padding:.5rem;margin:.5rem 0'>{items}</div>"
    )
    for anchor in ("</h1>", "<body>"):
        if anchor in page:
            return page.replace(anchor, anchor + block, 1)
    return block + page


def render_with_status(fmt: str, content: bytes, history: Sequence[Signoff]) -> bytes:
    """A stored rendering (``json``, ``markdown`` or ``html``) with the status header added."""
    if fmt == "json":
        return json.dumps(with_status_json(json.loads(content), history)).encode()
    if fmt == "markdown":
        return with_status_markdown(content.decode(), history).encode()
    if fmt == "html":
        return with_status_html(content.decode(), history).encode()
    raise ValueError(f"no status header for format {fmt!r}")
