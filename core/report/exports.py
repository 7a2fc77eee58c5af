"""Exports of a signed (or preliminary) report for a lab's systems: FHIR R4 and HL7 v2.5.1.

Pure: built from the stored ``report.json`` and ``features.json``, the job's identifiers
and the sign-off history. No patient data exists in this service; the HL7 PID segment
is a placeholder (or what the lab's settings put there) and the FHIR report has no
subject: the LIMS links the result to its patient through ``external_sample_id``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.jsonable import JSONObject, as_number, as_object
from core.report.report_json import ReportDocument, Section
from core.report.signoff import ReportStatus, Signoff, addenda, report_status, status_lines

LOCAL_SYSTEM = "https://medgemma-spatial.dev/fhir/CodeSystem/spatial-metrics"
SAMPLE_ID_SYSTEM = "https://medgemma-spatial.dev/fhir/NamingSystem/external-sample-id"
JOB_ID_SYSTEM = "urn:ietf:rfc:3986"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
REPORT_CODE = ("11526-1", "Pathology study")  # LOINC
HL7_STATUS = {
    ReportStatus.PRELIMINARY: "P",
    ReportStatus.FINAL: "F",
    ReportStatus.AMENDED: "C",
}
IMPRESSION_SECTIONS = ("tissue_architecture", "cell_populations", "spatial_organisation")


@dataclass(frozen=True)
class Metric:
    """One headline figure: a local code, its display text, value and UCUM unit."""

    code: str
    display: str
    value: float
    unit: str  # UCUM, e.g. "%", "{spots}"


@dataclass(frozen=True)
class JobInfo:
    """What the exports need of the job."""

    id: str
    external_sample_id: str | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Hl7Settings:
    """MSH and PID fields the lab's interface engine expects (``MGS_HL7_*``)."""

    sending_application: str = "MEDGEMMA-SPATIAL"
    sending_facility: str = "LAB"
    receiving_application: str = "LIMS"
    receiving_facility: str = "LAB"
    patient_id: str = "UNKNOWN"
    processing_id: str = "P"
    extra: dict[str, str] = field(default_factory=dict)


def _section(report: ReportDocument, sid: str) -> Section:
    for s in report.get("sections") or []:
        if s.get("id") == sid:
            return s
    return {}


def metrics(report: ReportDocument, features: JSONObject) -> list[Metric]:
    """The headline figures: units analysed, QC medians, lineage composition, domains.

    ``features``: ``features.json`` as stored (``{}`` when absent).
    """
    out: list[Metric] = []
    platform = as_object(features.get("platform"))
    unit = str(platform.get("unit") or "spot")
    qc = as_object(features.get("qc"))
    if qc.get("units_analysed") is not None:
        out.append(
            Metric(
                "units-analysed",
                f"{unit.capitalize()}s analysed",
                as_number(qc["units_analysed"]),
                f"{{{unit}s}}",
            )
        )
    medians = as_object(
        as_object(_section(report, "specimen_and_qc").get("computed")).get("qc_medians")
    )
    for key, code, display, ucum, scale in (
        ("median_total_counts", "median-total-counts", f"Median counts per {unit}", "{counts}", 1),
        ("median_n_genes", "median-genes", f"Median genes detected per {unit}", "{genes}", 1),
        ("median_pct_mito", "median-mito-percent", "Median mitochondrial fraction", "%", 100),
    ):
        if medians.get(key) is not None:
            out.append(Metric(code, display, round(as_number(medians[key]) * scale, 4), ucum))
    for lineage, frac in sorted(as_object(features.get("lineage_composition")).items()):
        out.append(
            Metric(
                f"lineage-{lineage}",
                f"Share of {unit}s, {lineage} lineage",
                round(as_number(frac) * 100, 2),
                "%",
            )
        )
    domains = features.get("domains")
    if isinstance(domains, list):
        out.append(
            Metric("n-domains", "Number of spatial domains", float(len(domains)), "{domains}")
        )
    return out


def impression(report: ReportDocument, history: Sequence[Signoff]) -> str:
    """The findings in prose (architecture, populations, organisation) plus any addenda."""
    parts = [
        str(_section(report, sid).get("narrative") or "").strip() for sid in IMPRESSION_SECTIONS
    ]
    text = " ".join(p for p in parts if p)
    for a in addenda(history):
        text += f"\n\nAddendum ({a.reviewer}, {a.signed_at.isoformat()}): {a.comment}"
    return text.strip()


def report_text(report: ReportDocument, history: Sequence[Signoff]) -> list[str]:
    """The report as text lines: status header, each section's narrative, addenda, disclaimer."""
    lines = list(status_lines(history))
    for s in report.get("sections") or []:
        if s.get("narrative"):
            lines.append(f"{s.get('title', s.get('id'))}: {str(s['narrative']).strip()}")
    if report.get("disclaimer"):
        lines.append(str(report["disclaimer"]))
    return lines


def _iso(dt: datetime | None) -> str:
    return (dt or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")


def fhir_diagnostic_report(
    report: ReportDocument,
    features: JSONObject,
    job: JobInfo,
    history: Sequence[Signoff],
    pdf: bytes | None = None,
) -> JSONObject:
    """A FHIR R4 ``DiagnosticReport`` with its Observations contained.

    ``status`` follows the sign-off (preliminary/final/amended); ``identifier`` carries
    ``external_sample_id`` and the job id; ``conclusion`` is the impression;
    ``presentedForm`` the PDF (base64 with its SHA-1, as FHIR's Attachment.hash is) when
    given; ``resultsInterpreter`` the reviewers who signed.
    """
    status = report_status(history).value
    observations: list[dict[str, Any]] = []
    for i, m in enumerate(metrics(report, features), start=1):
        observations.append(
            {
                "resourceType": "Observation",
                "id": f"obs-{i}",
                "status": status,
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "laboratory",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [{"system": LOCAL_SYSTEM, "code": m.code, "display": m.display}],
                    "text": m.display,
                },
                "valueQuantity": {"value": m.value, "unit": m.unit, "system": UCUM, "code": m.unit},
            }
        )
    reviewers = list(dict.fromkeys(s.reviewer for s in history))
    practitioners: list[dict[str, Any]] = [
        {"resourceType": "Practitioner", "id": f"reviewer-{i}", "name": [{"text": name}]}
        for i, name in enumerate(reviewers, start=1)
    ]
    identifiers = [{"system": JOB_ID_SYSTEM, "value": f"urn:uuid:{job.id}"}]
    if job.external_sample_id:
        identifiers.insert(
            0, {"use": "official", "system": SAMPLE_ID_SYSTEM, "value": job.external_sample_id}
        )
    issued = history[-1].signed_at if history else job.finished_at
    resource: dict[str, Any] = {  # built here, returned as JSON
        "resourceType": "DiagnosticReport",
        "id": job.id,
        "contained": [*observations, *practitioners],
        "identifier": identifiers,
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                        "code": "PAT",
                        "display": "Pathology (gross & histopath, not surgical)",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": LOINC, "code": REPORT_CODE[0], "display": REPORT_CODE[1]}],
            "text": "Spatial transcriptomics pathology report (research)",
        },
        "effectiveDateTime": _iso(job.finished_at),
        "issued": _iso(issued),
        "result": [
            {"reference": f"#{o['id']}", "display": o["code"]["text"]} for o in observations
        ],
        "conclusion": impression(report, history) or None,
    }
    if practitioners:
        resource["resultsInterpreter"] = [
            {"reference": f"#{p['id']}", "display": p["name"][0]["text"]} for p in practitioners
        ]
    if pdf is not None:
        resource["presentedForm"] = [
            {
                "contentType": "application/pdf",
                "language": "en",
                "data": base64.b64encode(pdf).decode(),
                "size": len(pdf),
                "hash": base64.b64encode(
                    hashlib.sha1(pdf).digest()
                ).decode(),  # FHIR R4 Attachment.hash is SHA-1
                "title": "report.pdf",
                "creation": _iso(job.finished_at),
            }
        ]
    return {k: v for k, v in resource.items() if v not in (None, [])}  # FHIR: no empty arrays


# ---------------------------------------------------------------------------- HL7 v2
def hl7_escape(text: str) -> str:
    """Escape HL7 v2 delimiters (``| ^ ~ \\ &``) and line breaks in a field value."""
    out = (
        text.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("~", "\\R\\")
        .replace("&", "\\T\\")
    )
    return out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\.br\\")


def _ts(dt: datetime | None) -> str:
    return (dt or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def hl7_oru_r01(
    report: ReportDocument,
    features: JSONObject,
    job: JobInfo,
    history: Sequence[Signoff],
    settings: Hl7Settings | None = None,
    now: datetime | None = None,
) -> str:
    """An HL7 v2.5.1 ``ORU^R01`` message, segments separated by ``\\r``.

    MSH; PID (placeholder patient id from the lab's settings); OBR with the
    ``external_sample_id`` as placer order number and the job id as filler; one numeric
    OBX per headline figure and one text OBX per line of the report (status header,
    sections, addenda). OBX-11 and OBR-25: P, F or C for preliminary, final, amended.
    """
    cfg = settings or Hl7Settings()
    e = hl7_escape
    status = report_status(history)
    flag = HL7_STATUS[status]
    sent = _ts(now)
    changed = _ts(history[-1].signed_at if history else job.finished_at)
    sample = e(job.external_sample_id or "")
    control_id = hashlib.sha256(f"{job.id}|{len(history)}|{sent}".encode()).hexdigest()[:20]
    segments = [
        "|".join(
            [
                "MSH",
                "^~\\&",
                e(cfg.sending_application),
                e(cfg.sending_facility),
                e(cfg.receiving_application),
                e(cfg.receiving_facility),
                sent,
                "",
                "ORU^R01^ORU_R01",
                control_id,
                e(cfg.processing_id),
                "2.5.1",
            ]
        ),
        f"PID|1||{e(cfg.patient_id)}^^^{e(cfg.sending_facility)}^PI||UNKNOWN^PATIENT",
        "|".join(
            [
                "OBR",
                "1",
                sample,
                e(job.id),
                f"{REPORT_CODE[0]}^{REPORT_CODE[1]}^LN",
                "",
                "",
                _ts(job.finished_at),
                *[""] * 14,
                changed,
                "",
                "SP",
                flag,
            ]
        ),
    ]
    n = 0
    for m in metrics(report, features):
        n += 1
        segments.append(
            "|".join(
                [
                    "OBX",
                    str(n),
                    "NM",
                    f"{e(m.code)}^{e(m.display)}^L",
                    "",
                    _num(m.value),
                    f"{e(m.unit)}^^UCUM",
                    "",
                    "",
                    "",
                    "",
                    flag,
                ]
            )
        )
    for line in report_text(report, history):
        n += 1
        segments.append(
            "|".join(
                [
                    "OBX",
                    str(n),
                    "TX",
                    "REPORT^Report text^L",
                    "",
                    e(line),
                    "",
                    "",
                    "",
                    "",
                    "",
                    flag,
                ]
            )
        )
    return "\r".join(segments) + "\r"
