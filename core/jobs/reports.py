"""The report of a succeeded job as served: with its sign-off status, or exported (FHIR, HL7)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.db.models import Job
from core.errors import BadOption
from core.jobs import service, signoff
from core.jobs.errors import NotFound
from core.jsonable import JSONObject, as_object
from core.report import exports
from core.report.report_json import ReportDocument, parse_report
from core.report.signoff import Signoff, render_with_status
from core.storage import ObjectStore

SIGNED_PDF_DIR = "signed"
# what the worker rendered report.pdf from (figures are named by report.json)
SIGNED_PDF_INPUTS = (
    "report.json",
    "analysis.json",
    "features.json",
    "leakage_context.json",
    "he_model_input.png",
)

MEDIA_TYPES = {
    "json": "application/json",
    "markdown": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "fhir": "application/fhir+json",
    "hl7": "x-application/hl7-v2+er7; charset=utf-8",
}


async def _read(store: ObjectStore, job: Job, name: str) -> bytes:
    key = await service.artifact_key(store, job, name)
    return await anyio.to_thread.run_sync(signoff.read_all, store, key)


async def _optional(store: ObjectStore, job: Job, name: str) -> bytes | None:
    try:
        return await _read(store, job, name)
    except NotFound:
        return None


def job_info(job: Job) -> exports.JobInfo:
    return exports.JobInfo(
        id=str(job.id), external_sample_id=job.external_sample_id, finished_at=job.finished_at
    )


def hl7_settings(settings: Settings) -> exports.Hl7Settings:
    return exports.Hl7Settings(
        sending_application=settings.hl7_sending_application,
        sending_facility=settings.hl7_sending_facility,
        receiving_application=settings.hl7_receiving_application,
        receiving_facility=settings.hl7_receiving_facility,
        patient_id=settings.hl7_patient_id,
    )


async def render(
    session: AsyncSession, store: ObjectStore, settings: Settings, job: Job, fmt: str
) -> bytes:
    """The report in ``fmt`` (json, markdown, html, fhir, hl7), its status header included."""
    if fmt not in MEDIA_TYPES:
        raise BadOption(f"format must be one of {', '.join(MEDIA_TYPES)}")
    if fmt == "pdf":
        return await report_pdf(session, store, job)
    if fmt in service.REPORT_FILES:
        content = await _read(store, job, service.REPORT_FILES[fmt])
        history = await signoff.history(session, job)
        return render_with_status(fmt, content, history)
    report = parse_report(await _read(store, job, "report.json"))
    features_raw = await _optional(store, job, "features.json")
    features = as_object(json.loads(features_raw)) if features_raw else {}
    history = await signoff.history(session, job)
    pdf = (
        await report_pdf(session, store, job, history)
        if await _optional_key(store, job, "report.pdf")
        else None
    )
    return export(report, features, job, history, settings, fmt, pdf)


async def _optional_key(store: ObjectStore, job: Job, name: str) -> str | None:
    try:
        return await service.artifact_key(store, job, name)
    except NotFound:
        return None


def signed_pdf_key(job: Job, history: list[Signoff]) -> str:
    """Where the PDF showing the status after sign-off ``len(history)`` is kept (made once)."""
    return f"{(job.report_prefix or '').rstrip('/')}/{SIGNED_PDF_DIR}/report-{len(history)}.pdf"


async def report_pdf(
    session: AsyncSession, store: ObjectStore, job: Job, history: list[Signoff] | None = None
) -> bytes:
    """``report.pdf`` as it stands: the worker's PDF (status preliminary) until a reviewer
    signs; after each sign-off, the same document rendered again with the status block (who
    signed it final and when, each addendum), made on first request and kept beside it.
    """
    stored_key = await service.artifact_key(store, job, service.REPORT_FILES["pdf"])
    if history is None:
        history = await signoff.history(session, job)
    if not history:
        return await anyio.to_thread.run_sync(signoff.read_all, store, stored_key)
    key = signed_pdf_key(job, history)
    if await anyio.to_thread.run_sync(store.size, key) is not None:
        return await anyio.to_thread.run_sync(signoff.read_all, store, key)
    names = {n: await _optional_key(store, job, n) for n in SIGNED_PDF_INPUTS}
    report = parse_report(await _read(store, job, "report.json"))
    for fig in report.get("figures") or []:
        names[str(fig)] = await _optional_key(store, job, str(fig))
    found = {n: k for n, k in names.items() if k is not None}
    return await anyio.to_thread.run_sync(_render_signed_pdf, store, found, history, key)


def _render_signed_pdf(
    store: ObjectStore, keys: dict[str, str], history: list[Signoff], dest: str
) -> bytes:
    """Blocking: fetch the document's inputs, render the PDF with its status, store it."""
    from core.features import read_features
    from core.report.leakage import LeakageContext
    from core.report.pdf import render_pdf
    from core.results import read_analysis

    with tempfile.TemporaryDirectory(prefix="mgs-signed-pdf-") as tmp:
        out = Path(tmp)
        for name, key in keys.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            store.get_file(key, out / name)

        p = out / "report.json"
        report = parse_report(p.read_text(encoding="utf-8")) if p.is_file() else {}
        model_input = out / "he_model_input.png"
        extra = (
            [("H&E image as sent to the model", model_input.read_bytes())]
            if model_input.is_file() and (report.get("provenance") or {}).get("backend")
            else []
        )
        pdf = render_pdf(
            report,
            read_analysis(out),
            read_features(out),
            out,
            extra,
            asdict(LeakageContext.load(out)),
            history,
        )
        (out / "signed.pdf").write_bytes(pdf)
        store.put_file(dest, out / "signed.pdf")
    return pdf


def export(
    report: ReportDocument,
    features: JSONObject,
    job: Job,
    history: list[Signoff],
    settings: Settings,
    fmt: str,
    pdf: bytes | None,
) -> bytes:
    if fmt == "fhir":
        resource = exports.fhir_diagnostic_report(report, features, job_info(job), history, pdf)
        return json.dumps(resource).encode()
    return exports.hl7_oru_r01(
        report, features, job_info(job), history, hl7_settings(settings)
    ).encode()
