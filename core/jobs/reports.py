"""The report of a succeeded job as served: with its sign-off status, or exported (FHIR, HL7)."""

from __future__ import annotations

import json
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.db.models import Job
from core.errors import BadOption
from core.jobs import service, signoff
from core.jobs.errors import NotFound
from core.report import exports
from core.report.signoff import Signoff, render_with_status
from core.storage import ObjectStore

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
    if fmt == "pdf":  # made with the report; its header says the status it was made with
        return await _read(store, job, service.REPORT_FILES[fmt])
    if fmt in service.REPORT_FILES:
        content = await _read(store, job, service.REPORT_FILES[fmt])
        history = await signoff.history(session, job)
        return render_with_status(fmt, content, history)
    report = json.loads(await _read(store, job, "report.json"))
    features_raw = await _optional(store, job, "features.json")
    features: dict[str, Any] = json.loads(features_raw) if features_raw else {}
    history = await signoff.history(session, job)
    return export(report, features, job, history, settings, fmt,
                  await _optional(store, job, "report.pdf"))


def export(
    report: dict[str, Any],
    features: dict[str, Any],
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
