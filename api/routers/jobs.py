"""Jobs: submit, get, list, cancel, report, artifacts."""

from __future__ import annotations

import mimetypes
import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from api.deps import ReadSessionDep, SessionDep, SettingsDep, StoreDep, TenantDep
from api.errors import problem_responses
from api.schemas import (
    ArtifactList,
    ArtifactOut,
    JobCreate,
    JobError,
    JobLinks,
    JobOut,
    JobPage,
    JobStateName,
)
from core.db.models import Job
from core.jobs import service

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _canonical_uuid(v: object) -> object:
    """Only the hyphenated form the schema declares (not 32 bare hex digits, braces, urn:)."""
    if isinstance(v, str) and not _UUID_RE.match(v):
        raise ValueError("must be a UUID in its hyphenated form")
    return v


def _iso_datetime(v: object) -> object:
    """An RFC 3339 date-time as the schema declares, not a bare number read as a Unix time."""
    if isinstance(v, str) and not _ISO_RE.match(v):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z")
    return v


JobId = Annotated[uuid.UUID, BeforeValidator(_canonical_uuid)]
IsoDatetime = Annotated[datetime, BeforeValidator(_iso_datetime)]
REPORT_TYPES = {
    "json": "application/json",
    "markdown": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}


def job_out(job: Job) -> JobOut:
    base = f"/v1/jobs/{job.id}"
    error = JobError(code=job.error_code, detail=job.error_detail or "") if job.error_code else None
    return JobOut(
        id=job.id,
        state=job.state,  # type: ignore[arg-type]
        stage=job.stage,  # type: ignore[arg-type]
        progress=job.progress,
        attempts=job.attempts,
        external_sample_id=job.external_sample_id,
        upload_id=job.upload_id,
        options=job.options,
        callback_url=job.callback_url,
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=error,
        provenance=job.summary or {},
        links=JobLinks(
            self=base,
            report=f"{base}/report",
            artifacts=f"{base}/artifacts",
            cancel=f"{base}/cancel",
        ),
    )


@router.post(
    "",
    operation_id="create_job",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses=problem_responses(400, 401, 429, 404, 409, 422),
)
async def create_job(
    body: JobCreate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    tenant: TenantDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> JobOut:
    """Submit a job for an upload. The same Idempotency-Key and body return the same job."""
    req = service.SubmitRequest(
        upload_id=body.upload_id,
        external_sample_id=body.external_sample_id,
        options=body.options.model_dump(mode="json"),
        callback_url=body.callback_url,
    )
    job, _created = await service.submit_job(session, settings, tenant, req, idempotency_key)
    await session.commit()
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_out(job)


@router.get(
    "", operation_id="list_jobs", response_model=JobPage, responses=problem_responses(401, 429, 422)
)
async def list_jobs(
    session: ReadSessionDep,
    tenant: TenantDep,
    state: JobStateName | None = None,
    external_sample_id: str | None = None,
    created_after: IsoDatetime | None = None,
    created_before: IsoDatetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobPage:
    """Jobs, newest first, filtered; follow ``next_cursor`` for the next page."""
    jobs, nxt = await service.list_jobs(
        session,
        tenant,
        state=state,
        external_sample_id=external_sample_id,
        created_after=created_after,
        created_before=created_before,
        cursor=cursor,
        limit=limit,
    )
    return JobPage(items=[job_out(j) for j in jobs], next_cursor=nxt)


@router.get(
    "/{job_id}",
    operation_id="get_job",
    response_model=JobOut,
    responses=problem_responses(401, 429, 404, 422),
)
async def get_job(job_id: JobId, session: ReadSessionDep, tenant: TenantDep) -> Response:
    """State, stage, progress, attempts, timestamps and error of one job."""
    job = await service.get_job(session, tenant, job_id)
    # the hot polling path: serialise once, skip FastAPI's second validation pass
    return Response(job_out(job).model_dump_json(), media_type="application/json")


@router.post(
    "/{job_id}/cancel",
    operation_id="cancel_job",
    response_model=JobOut,
    responses=problem_responses(401, 429, 404, 409, 422),
)
async def cancel_job(job_id: JobId, session: SessionDep, tenant: TenantDep) -> JobOut:
    """Cancel a queued or running job (a worker stops at its next stage boundary)."""
    job = await service.cancel_job(session, tenant, job_id)
    await session.commit()
    return job_out(job)


def _stream(
    store: StoreDep, key: str, media_type: str, filename: str | None = None
) -> StreamingResponse:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if filename else None
    return StreamingResponse(store.iter_bytes(key), media_type=media_type, headers=headers)


@router.get(
    "/{job_id}/report",
    operation_id="get_report",
    responses={
        200: {
            "description": "The report (JSON by default).",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/markdown": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **problem_responses(401, 429, 404, 409, 422),
    },
    response_class=StreamingResponse,
)
async def get_report(
    job_id: JobId,
    session: ReadSessionDep,
    store: StoreDep,
    tenant: TenantDep,
    format: Literal["json", "markdown", "html", "pdf"] = "json",
) -> StreamingResponse:
    """The report of a succeeded job: JSON, or ``?format=markdown`` / ``html`` / ``pdf``."""
    job = await service.get_job(session, tenant, job_id)
    key = await service.report_key(store, job, format)
    filename = f"report-{job_id}.pdf" if format == "pdf" else None
    return _stream(store, key, REPORT_TYPES[format], filename)


@router.get(
    "/{job_id}/artifacts",
    operation_id="list_artifacts",
    response_model=ArtifactList,
    responses=problem_responses(401, 429, 404, 409, 422),
)
async def list_artifacts(
    job_id: JobId, session: ReadSessionDep, store: StoreDep, tenant: TenantDep
) -> ArtifactList:
    """Result files of a succeeded job (spots.csv, features.json, analysis.json, figures, h5ad, report)."""
    job = await service.get_job(session, tenant, job_id)
    items = await service.list_artifacts(store, job)
    return ArtifactList(
        items=[
            ArtifactOut(name=n, size=s, url=f"/v1/jobs/{job_id}/artifacts/{n}") for n, s in items
        ]
    )


@router.get(
    "/{job_id}/artifacts/{name:path}",
    operation_id="get_artifact",
    responses={
        200: {
            "description": "The file, streamed.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        **problem_responses(401, 429, 404, 409, 422),
    },
    response_class=StreamingResponse,
)
async def get_artifact(
    job_id: JobId, name: str, session: ReadSessionDep, store: StoreDep, tenant: TenantDep
) -> StreamingResponse:
    """One result file, streamed."""
    job = await service.get_job(session, tenant, job_id)
    key = await service.artifact_key(store, job, name)
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return _stream(store, key, media, name.rsplit("/", 1)[-1])
