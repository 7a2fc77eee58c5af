"""The lab exports as pure functions: FHIR presentedForm with a PDF, HL7 escaping, status."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from core.report import exports
from core.report.signoff import Signoff, render_with_status, report_status, status_lines

fhir_dr = pytest.importorskip("fhir.resources.R4B.diagnosticreport")
hl7 = pytest.importorskip("hl7")

REPORT = {
    "disclaimer": "Research use only.",
    "sections": [
        {
            "id": "specimen_and_qc",
            "title": "Specimen and QC",
            "narrative": "600 spots passed.",
            "computed": {
                "qc_medians": {
                    "median_total_counts": 4169.0,
                    "median_n_genes": 1161.5,
                    "median_pct_mito": 0.0723,
                }
            },
        },
        {"id": "tissue_architecture", "title": "Tissue architecture", "narrative": "Four domains."},
        {"id": "cell_populations", "title": "Cell populations", "narrative": "Mostly lymphoid."},
    ],
}
FEATURES = {
    "platform": {"unit": "bin"},
    "qc": {"units_analysed": 600},
    "lineage_composition": {"lymphoid": 0.53, "stromal": 0.47},
    "domains": [{"id": "D1"}, {"id": "D2"}, {"id": "D3"}],
}
JOB = exports.JobInfo(
    "3f2b1c9e-0000-4000-8000-000000000001", "S-1", datetime(2026, 1, 31, 10, tzinfo=UTC)
)


def _signoff(seq: int, status: str, comment: str | None) -> Signoff:
    return Signoff(
        seq,
        f"Dr {seq}",
        "k",
        status,
        comment,
        "0" * 64,
        datetime(2026, 1, 31, 10 + seq, tzinfo=UTC),
    )


def test_status_follows_the_latest_signoff() -> None:
    assert report_status([]).value == "preliminary"
    hist = [_signoff(1, "final", None), _signoff(2, "amended", "late finding")]
    assert report_status(hist[:1]).value == "final"
    assert report_status(hist).value == "amended"
    lines = status_lines(hist)
    assert lines[0] == "Report status: AMENDED" and "late finding" in lines[-1]
    md = render_with_status("markdown", b"# Title\n\nbody", hist).decode()
    assert md.startswith("# Title\n\n> Report status: AMENDED")


def test_fhir_presented_form_carries_the_pdf_and_its_sha1() -> None:
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 4
    doc = exports.fhir_diagnostic_report(REPORT, FEATURES, JOB, [_signoff(1, "final", "ok")], pdf)
    dr = fhir_dr.DiagnosticReport.model_validate(doc)
    form = dr.presentedForm[0]
    assert form.contentType == "application/pdf" and form.size == len(pdf)
    assert form.data == pdf and form.hash == hashlib.sha1(pdf).digest()  # decoded by the model
    raw = doc["presentedForm"][0]
    assert base64.b64decode(raw["data"], validate=True) == pdf
    assert base64.b64decode(raw["hash"], validate=True) == hashlib.sha1(pdf).digest()
    assert dr.status == "final" and dr.conclusion == "Four domains. Mostly lymphoid."
    codes = {
        o.code.coding[0].code: o.valueQuantity
        for o in dr.contained
        if o.get_resource_type() == "Observation"
    }
    assert codes["units-analysed"].unit == "{bins}" and codes["n-domains"].value == 3
    assert float(codes["median-mito-percent"].value) == pytest.approx(7.23)
    assert float(codes["lineage-lymphoid"].value) == pytest.approx(53.0)


def test_fhir_without_pdf_or_sample_id_is_still_valid() -> None:
    job = exports.JobInfo(JOB.id, None, None)
    doc = exports.fhir_diagnostic_report(REPORT, {}, job, [])
    dr = fhir_dr.DiagnosticReport.model_validate(doc)
    assert dr.status == "preliminary" and dr.presentedForm is None and len(dr.result) == 3
    bare = exports.fhir_diagnostic_report({}, {}, job, [])
    assert "result" not in bare and "contained" not in bare and "conclusion" not in bare
    fhir_dr.DiagnosticReport.model_validate(bare)
    assert [i.value for i in dr.identifier] == [f"urn:uuid:{JOB.id}"]


def test_hl7_escapes_every_delimiter_and_line_break() -> None:
    nasty = "a|b^c~d\\e&f\r\ng"
    hist = [_signoff(1, "final", None), _signoff(2, "amended", nasty)]
    job = exports.JobInfo(JOB.id, "S|1^x", JOB.finished_at)
    text = exports.hl7_oru_r01(REPORT, FEATURES, job, hist)
    msg = hl7.parse(text)
    assert len(msg) == 3 + len(exports.metrics(REPORT, FEATURES)) + len(
        exports.report_text(REPORT, hist)
    )
    assert str(msg.segment("OBR")[2]) == "S\\F\\1\\S\\x" and str(msg.segment("OBR")[25]) == "C"
    (addendum,) = [str(s[5]) for s in msg if str(s[5]).startswith("Addendum by Dr 2")]
    assert msg.unescape(addendum).endswith("a|b^c~d\\e&f\rg")  # the library undoes it
    assert addendum.endswith("a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f\\.br\\g")
    assert all(str(s[11]) == "C" for s in msg if str(s[0]) == "OBX")
