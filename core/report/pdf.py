"""``report.pdf``: the same document as ``report.html``, laid out for A4 with fpdf2.

fpdf2 is pure Python (one wheel, no system libraries); the text font is DejaVu Sans,
which matplotlib already ships, so units (µm) and symbols render. The research-use
statement is in the footer of every page.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.features import FeaturesRecord
from core.report.document import Document, Figure, build_document
from core.report.report_json import ReportDocument
from core.results import AnalysisRecord

if TYPE_CHECKING:
    from core.report.signoff import Signoff

PDF_FILE = "report.pdf"


# Debian's fonts-dejavu-core: the API image has it (it renders signed PDFs without matplotlib)
SYSTEM_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def _fonts() -> dict[str, Path]:
    try:
        import matplotlib

        base = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    except ImportError:
        base = SYSTEM_DEJAVU
    return {
        "": base / "DejaVuSans.ttf",
        "B": base / "DejaVuSans-Bold.ttf",
        "I": base / "DejaVuSans-Oblique.ttf",
        "BI": base / "DejaVuSans-BoldOblique.ttf",
    }


def pdf_available() -> bool:
    try:
        import fpdf  # noqa: F401
    except ImportError:
        return False
    return True


def render_pdf_document(doc: Document) -> bytes:
    """The PDF bytes of a :class:`Document`."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    class _PDF(FPDF):
        def header(self) -> None:
            self.set_font("dejavu", "", 7.5)
            self.set_text_color(110, 110, 110)
            status = f" · {doc.status_lines[0]}" if doc.status_lines else ""
            self.cell(
                0,
                4,
                f"{doc.title} · {dict(doc.header).get('Specimen', '')}{status}",
                new_x="LMARGIN",
                new_y="NEXT",
            )
            self.ln(2)
            self.set_text_color(0, 0, 0)

        def footer(self) -> None:
            self.set_y(-14)
            self.set_font("dejavu", "B", 7.5)
            self.set_text_color(150, 0, 0)
            self.multi_cell(0, 3.5, doc.research_use, align="C")
            self.set_font("dejavu", "", 7.5)
            self.set_text_color(90, 90, 90)
            self.cell(0, 3.5, f"Page {self.page_no()} of {{nb}}", align="C")
            self.set_text_color(0, 0, 0)

    pdf = _PDF(format="A4", unit="mm")
    pdf.set_title(doc.title)
    pdf.set_subject("Research use only")
    pdf.set_creator("MedGemma Spatial")
    for style, path in _fonts().items():
        pdf.add_font("dejavu", style, str(path))
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_margins(15, 12, 15)
    pdf.alias_nb_pages()
    pdf.add_page()
    width = pdf.epw

    def h1(text: str) -> None:
        pdf.set_font("dejavu", "B", 15)
        pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    def h2(text: str) -> None:
        if pdf.get_y() > pdf.h - 45:
            pdf.add_page()
        pdf.ln(2)
        pdf.set_font("dejavu", "B", 12)
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
        y = pdf.get_y()
        pdf.set_draw_color(190, 190, 190)
        pdf.line(pdf.l_margin, y, pdf.l_margin + width, y)
        pdf.ln(1.5)

    def h3(text: str) -> None:
        if pdf.get_y() > pdf.h - 40:
            pdf.add_page()
        pdf.ln(1)
        pdf.set_font("dejavu", "B", 10.5)
        pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")

    def para(text: str, size: float = 9.5, style: str = "") -> None:
        pdf.set_font("dejavu", style, size)
        pdf.multi_cell(0, 4.6, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(0.8)

    def bullets(items: list[str]) -> None:
        pdf.set_font("dejavu", "", 9.5)
        for x in items:
            pdf.set_x(pdf.l_margin)
            pdf.cell(4, 4.6, "•")
            pdf.multi_cell(width - 4, 4.6, x, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(0.8)

    def figure(fig: Figure) -> None:
        if fig.data is None:
            return
        from PIL import Image

        im = Image.open(io.BytesIO(fig.data))
        w_mm = width
        h_mm = w_mm * im.height / max(im.width, 1)
        if h_mm > 120:
            h_mm, w_mm = 120, 120 * im.width / max(im.height, 1)
        if pdf.get_y() + h_mm + 18 > pdf.h - 20:
            pdf.add_page()
        pdf.image(io.BytesIO(fig.data), x=pdf.l_margin + (width - w_mm) / 2, w=w_mm, h=h_mm)
        pdf.ln(1)
        pdf.set_font("dejavu", "B", 8.5)
        pdf.write(4, f"Figure {fig.number}. {fig.title}. ")
        pdf.set_font("dejavu", "", 8.5)
        pdf.write(4, fig.caption)
        pdf.ln(6)

    def table(columns: list[str], rows: list[list[str]]) -> None:
        pdf.set_font("dejavu", "", 7.5)
        with pdf.table(
            headings_style=FontFace(emphasis="BOLD", fill_color=(235, 238, 242)),
            line_height=3.8,
            text_align="LEFT",
            width=width,
        ) as t:
            r = t.row()
            for c in columns:
                r.cell(c)
            for row in rows:
                r = t.row()
                for c in row:
                    r.cell(c)
        pdf.ln(2)

    pdf.set_fill_color(255, 240, 240)
    pdf.set_draw_color(180, 0, 0)
    pdf.set_font("dejavu", "B", 9)
    pdf.multi_cell(
        0,
        4.6,
        doc.research_use,
        border=1,
        fill=True,
        padding=1.5,  # type: ignore[arg-type]
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    h1(doc.title)
    if doc.status_lines:  # signed: the sign-off block under the title, before anything else
        pdf.set_fill_color(238, 243, 250)
        pdf.set_draw_color(51, 68, 85)
        pdf.set_font("dejavu", "B", 10)
        pdf.multi_cell(
            0,
            5,
            doc.status_lines[0],
            border="LTR",
            fill=True,
            padding=1.5,  # type: ignore[arg-type]
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.set_font("dejavu", "", 9)
        pdf.multi_cell(
            0,
            4.6,
            "\n".join(doc.status_lines[1:]),
            border="LBR",
            fill=True,
            padding=1.5,  # type: ignore[arg-type]
            new_x="LMARGIN",
            new_y="NEXT",
        )  # type: ignore[arg-type]
        pdf.ln(2)
    table(["Field", "Value"], [list(kv) for kv in doc.header])
    h2("Impression")
    bullets(doc.impression)
    h2("Findings")
    for f in doc.findings:
        h3(f.title)
        for x in f.paragraphs:
            para(x)
        if f.facts:
            table(["Measure", "Value"], [list(kv) for kv in f.facts])
        if f.narrative:
            para(f"Narrative, {doc.narrative_label}:", 8.5, "I")
            para(f.narrative, 9)
        for fig in f.figures:
            figure(fig)
    h2("Limitations")
    bullets(doc.limitations)
    h2("Methods")
    bullets(doc.methods)
    h2("Appendix")
    for t in doc.tables:
        h3(t.title)
        table(t.columns, t.rows)
        if t.note:
            para(t.note, 8)
    if doc.removed:
        h3(f"Sentences removed from the narrative ({len(doc.removed)})")
        bullets(
            [
                f"[removed] {s['sentence']} (contradicted: "
                + "; ".join(
                    f"{c['text']}: {c['reason']}"
                    for c in s["claims"]
                    if c["verdict"] == "contradicted"
                )
                + ")"
                for s in doc.removed
            ]
        )
    for fig in doc.extra_figures:
        figure(fig)
    h3("Provenance")
    table(["Item", "Value"], [list(kv) for kv in doc.provenance])
    return bytes(pdf.output())


def render_pdf(
    report: ReportDocument,
    analysis: AnalysisRecord,
    features: FeaturesRecord,
    out_dir: Path,
    extra_images: list[tuple[str, bytes]] | None = None,
    context: Mapping[str, Sequence[str]] | None = None,
    history: Sequence[Signoff] | None = None,
) -> bytes:
    """``report.pdf`` from the same document as ``report.html``.

    ``history``: the report's sign-offs; given, the PDF shows the report's status (who signed
    it final and when, each addendum) under the title, in its header table and on every page.
    """
    return render_pdf_document(
        build_document(report, analysis, features, context, out_dir, extra_images, history)
    )
