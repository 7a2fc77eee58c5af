"""The report's status after sign-off, as a reader sees it: the PDF (read back with pypdf) and
the HTML/Markdown header rendered again from the worker's files with the sign-off history."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.report import ReportOptions, write_report
from core.report.document import STATUS
from core.report.examples import example_features
from core.report.leakage import LeakageContext
from core.report.signoff import Signoff, header_status, render_with_status
from core.results import read_analysis
from tests.fixtures.report_outputs import write_output_dir

pytest.importorskip("fpdf")
pypdf = pytest.importorskip("pypdf")

FINAL = Signoff(
    1,
    "Dr Ada Lovelace",
    "k1",
    "final",
    "agree",
    "0" * 64,
    datetime(2026, 3, 2, 9, 15, 30, tzinfo=UTC),
)
AMENDED = Signoff(
    2,
    "Dr Grace Hopper",
    "k2",
    "amended",
    "Domain D2 re-read: confirmed",
    "0" * 64,
    datetime(2026, 3, 3, 16, 5, 0, tzinfo=UTC),
)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = write_output_dir(
        tmp_path_factory.mktemp("signed"),
        features=example_features(),
        context={"sample_ids": ["LAB-2026-0042"]},
    )
    write_report(d, ReportOptions())
    return d


def _pdf_bytes(d: Path, history: list[Signoff]) -> bytes:
    from core.features import read_features
    from core.report.pdf import render_pdf

    def load(name: str) -> dict[str, Any]:
        return dict(json.loads((d / name).read_text()))

    return render_pdf(
        load("report.json"),
        read_analysis(d),
        read_features(d),
        d,
        None,
        asdict(LeakageContext.load(d)),
        history,
    )


def _pdf_text(data: bytes) -> str:
    import io

    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(p.extract_text() or "" for p in reader.pages)


def _squash(text: str) -> str:
    return " ".join(text.split())


def _render(d: Path, history: list[Signoff]) -> str:
    return _squash(_pdf_text(_pdf_bytes(d, history)))


def test_worker_pdf_is_preliminary(report_dir: Path) -> None:
    text = _squash(_pdf_text((report_dir / "report.pdf").read_bytes()))
    assert _squash(STATUS) in text and "FINAL" not in text


def test_signed_pdf_shows_status_reviewer_time_and_addenda(report_dir: Path) -> None:
    final = _render(report_dir, [FINAL])
    assert "Report status: FINAL" in final
    assert "Signed final by Dr Ada Lovelace at 2026-03-02T09:15:30+00:00: agree" in final
    assert "Final: signed by Dr Ada Lovelace, 2026-03-02 09:15:30 UTC" in final  # header row
    assert _squash(STATUS) not in final and "Addendum" not in final
    amended = _render(report_dir, [FINAL, AMENDED])
    assert "Report status: AMENDED" in amended
    assert (
        "Addendum by Dr Grace Hopper at 2026-03-03T16:05:00+00:00: "
        "Domain D2 re-read: confirmed" in amended
    )
    assert "Amended: 1 addendum, latest by Dr Grace Hopper, 2026-03-03 16:05:00 UTC" in amended
    # every page's running header names the status too
    import io

    pages = pypdf.PdfReader(io.BytesIO(_pdf_bytes(report_dir, [FINAL, AMENDED]))).pages
    assert len(pages) > 1
    assert all("Report status: AMENDED" in _squash(p.extract_text()) for p in pages)


def test_html_and_markdown_header_rows_say_the_status(report_dir: Path) -> None:
    md = (report_dir / "report.md").read_bytes()
    page = (report_dir / "report.html").read_bytes()
    assert f"- **Report status:** {STATUS}" in md.decode()  # as the worker wrote it
    hist = [FINAL, AMENDED]
    md2 = render_with_status("markdown", md, hist).decode()
    page2 = render_with_status("html", page, hist).decode()
    assert STATUS not in md2 and STATUS not in page2
    assert f"- **Report status:** {header_status(hist)}" in md2
    assert f"<dt>Report status</dt><dd>{header_status(hist)}</dd>" in page2
    assert "Addendum by Dr Grace Hopper" in md2 and "Addendum by Dr Grace Hopper" in page2
    # unsigned: the header still says preliminary
    assert STATUS in render_with_status("markdown", md, []).decode()
