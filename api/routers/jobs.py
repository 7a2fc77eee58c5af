"""Jobs: submit, get, list, cancel, report, artifacts."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from api.deps import CallerDep, ReadSessionDep, SessionDep, SettingsDep, StoreDep, TenantDep
from api.errors import problem_responses
from api.longpoll import CachedStatus
from api.schemas import (
    ArtifactList,
    ArtifactOut,
    JobCreate,
    JobError,
    JobLinks,
    JobOut,
    JobPage,
    JobSort,
    NoNulStr,
    ReportHistory,
    SignoffCreate,
    SignoffOut,
)
from core.db.models import Job
from core.enums import TERMINAL_STATES, JobStage, JobState
from core.jobs import outbox, overlay, reports, service, signoff
from core.report.signoff import ReportStatus, Signoff, report_status

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
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
ReportFormat = Literal["json", "markdown", "html", "pdf", "fhir", "hl7"]


def _finished(job: Job) -> bool:
    return job.state in {s.value for s in TERMINAL_STATES}


def _report_status(job: Job) -> str | None:
    if job.report_status:
        return job.report_status
    return "preliminary" if job.state == JobState.SUCCEEDED.value else None


def job_out(job: Job) -> JobOut:
    base = f"/v1/jobs/{job.id}"
    error = JobError(code=job.error_code, detail=job.error_detail or "") if job.error_code else None
    return JobOut(
        id=job.id,
        state=JobState(job.state),
        stage=JobStage(job.stage),
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
        report=outbox.report_outcome(job),  # type: ignore[arg-type]
        report_status=_report_status(job),  # type: ignore[arg-type]
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
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
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
    state: JobState | None = None,
    report_status: Annotated[
        ReportStatus | None,
        Query(
            description="preliminary: succeeded and unsigned; final or amended: the latest "
            "sign-off's status."
        ),
    ] = None,
    external_sample_id: Annotated[NoNulStr | None, Query()] = None,
    created_after: IsoDatetime | None = None,
    created_before: IsoDatetime | None = None,
    sort: Annotated[
        JobSort, Query(description="-created_at: newest first (default); created_at: oldest first.")
    ] = "-created_at",
    cursor: Annotated[NoNulStr | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobPage:
    """Jobs, newest first (or oldest with ``sort=created_at``), filtered; follow
    ``next_cursor`` for the next page (keyset paging: pages hold while jobs arrive)."""
    jobs, nxt = await service.list_jobs(
        session,
        tenant,
        state=state.value if state else None,
        external_sample_id=external_sample_id,
        created_after=created_after,
        created_before=created_before,
        cursor=cursor,
        limit=limit,
        report_status=report_status,
        oldest_first=sort == "created_at",
    )
    return JobPage(items=[job_out(j) for j in jobs], next_cursor=nxt)


def etag_of(body: bytes) -> str:
    """A strong validator of one job representation."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


@router.get(
    "/{job_id}",
    operation_id="get_job",
    response_model=JobOut,
    responses={
        304: {"description": "Not modified: the job is as the If-None-Match ETag says."},
        **problem_responses(401, 429, 404, 422, 503),
    },
)
async def get_job(
    request: Request,
    job_id: JobId,
    session: ReadSessionDep,
    tenant: TenantDep,
    wait: Annotated[
        int,
        Query(
            ge=0,
            le=60,
            description="Long poll: hold the request up to this many seconds until the job's "
            "state or stage changes (answers at once if the If-None-Match ETag is stale or the "
            "job has finished).",
        ),
    ] = 0,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """State, stage, progress, attempts, timestamps and error of one job.

    Answers an ``ETag``; with ``If-None-Match`` of the current one, 304. With ``?wait=N``
    it returns as soon as the state or stage changes (or after N s: 304 if nothing did).
    """
    if wait:
        listener = request.app.state.job_listener
        async with listener.subscribe(str(job_id)) as changed:  # before reading: no change lost
            job = await service.get_job(session, tenant, job_id)
            body = job_out(job).model_dump_json().encode()
            seen = (job.state, job.stage, job.report_status)
            stale = if_none_match is not None and not _matches(if_none_match, etag_of(body))
            settled = stale or _finished(job)
            del job  # a waiting request keeps its ~1 KB body, not the row and its JSON columns
            deadline = anyio.current_time() + wait
            while not settled:
                await session.close()  # hold no database connection while waiting
                with anyio.move_on_after(deadline - anyio.current_time()):
                    await changed.wait()
                if anyio.current_time() >= deadline and not changed.is_set():
                    break
                changed.clear()
                await listener.start()  # reconnects if the listener lost its connection
                job = await service.get_job(session, tenant, job_id)
                body = job_out(job).model_dump_json().encode()
                settled = _finished(job) or (job.state, job.stage, job.report_status) != seen
                del job
    else:
        # the hot polling path: the body from this process's status cache (dropped by Postgres
        # NOTIFY on every change of the row, see api/longpoll.py), else read, serialised once
        # (no second validation pass by FastAPI) and kept
        listener = request.app.state.job_listener
        if not listener.connected:
            listener.start_soon()
        generation = listener.generation
        hit = listener.cached(str(job_id), tenant)
        if hit is not None:
            body, etag = hit.body, hit.etag
        else:
            job = await service.get_job(session, tenant, job_id)
            body = job_out(job).model_dump_json().encode()
            etag = etag_of(body)
            listener.store(str(job_id), CachedStatus(tenant, body, etag), generation)
        return _status_response(body, etag, if_none_match)
    return _status_response(body, etag_of(body), if_none_match)


def _status_response(body: bytes, etag: str, if_none_match: str | None) -> Response:
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.post(
    "/{job_id}/cancel",
    operation_id="cancel_job",
    response_model=JobOut,
    responses=problem_responses(401, 429, 404, 409, 422),
)
async def cancel_job(
    request: Request, job_id: JobId, session: SessionDep, tenant: TenantDep
) -> JobOut:
    """Cancel a queued or running job (a worker stops at its next stage boundary)."""
    job = await service.cancel_job(session, tenant, job_id)
    await session.commit()
    request.app.state.job_listener.forget(str(job_id))  # read-your-writes in this process
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
            "description": "The report (JSON by default), its sign-off status in the header.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/markdown": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "application/fhir+json": {"schema": {"type": "object"}},
                "x-application/hl7-v2+er7": {"schema": {"type": "string"}},
            },
        },
        **problem_responses(401, 429, 404, 409, 422),
    },
    response_class=Response,
)
async def get_report(
    job_id: JobId,
    session: ReadSessionDep,
    store: StoreDep,
    settings: SettingsDep,
    tenant: TenantDep,
    format: ReportFormat = "json",
) -> Response:
    """The report of a succeeded job: JSON, ``markdown``, ``html``, ``pdf`` (the document a lab
    attaches to a case), ``fhir`` (a FHIR R4 DiagnosticReport) or ``hl7`` (an HL7 v2.5.1
    ORU^R01 message); the text formats show the report status (preliminary, final, amended)."""
    job = await service.get_job(session, tenant, job_id)
    body = await reports.render(session, store, settings, job, format)
    headers = (
        {"Content-Disposition": f'attachment; filename="report-{job_id}.pdf"'}
        if format == "pdf"
        else None
    )
    return Response(body, media_type=reports.MEDIA_TYPES[format], headers=headers)


def _history_out(job_id: uuid.UUID, history: list[Signoff]) -> ReportHistory:
    return ReportHistory(
        job_id=job_id,
        report_status=report_status(history).value,
        signoffs=[SignoffOut.model_validate(s.as_dict()) for s in history],
    )


@router.post(
    "/{job_id}/report/sign",
    operation_id="sign_report",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportHistory,
    responses=problem_responses(401, 403, 429, 404, 409, 422),
)
async def sign_report(
    job_id: JobId,
    body: SignoffCreate,
    session: SessionDep,
    store: StoreDep,
    caller: CallerDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> ReportHistory:
    """Sign the report (reviewer keys only): ``final`` once, then ``amended`` with a comment
    (the addendum). Each sign-off is an immutable record; a webhook ``report.signed`` fires.
    A retry (same ``Idempotency-Key`` and body, or without a key the same sign-off again
    within ``MGS_SIGNOFF_REPEAT_WINDOW_S``) adds nothing and answers the same history with
    ``Idempotent-Replayed: true``."""
    _record, _status, replayed = await signoff.sign_report(
        session,
        store,
        caller,
        job_id,
        reviewer=body.reviewer,
        status=body.status,
        comment=body.comment,
        idempotency_key=idempotency_key,
        repeat_window_s=settings.signoff_repeat_window_s,
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    job = await service.get_job(session, caller.tenant_id, job_id)
    history = await signoff.history(session, job)
    await session.commit()
    return _history_out(job_id, history)


@router.get(
    "/{job_id}/report/history",
    operation_id="get_report_history",
    response_model=ReportHistory,
    responses=problem_responses(401, 429, 404, 422),
)
async def get_report_history(
    job_id: JobId, session: ReadSessionDep, tenant: TenantDep
) -> ReportHistory:
    """The report's status and its sign-offs, oldest first (reviewer, key id, time, status,
    comment, sha256 of the signed report.json)."""
    job = await service.get_job(session, tenant, job_id)
    return _history_out(job_id, await signoff.history(session, job))


@router.get(
    "/{job_id}/overlay",
    operation_id="get_overlay",
    responses={
        200: {
            "description": "Spot positions on the job's H&E image and per-spot layers (domain, "
            "cell type, lineage, QC), with each domain's composition: what the lab console "
            "draws over the image. Schema ``mgs.overlay/1`` (docs/console.md).",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **problem_responses(401, 429, 404, 409, 422),
    },
    response_class=Response,
)
async def get_overlay(
    job_id: JobId, session: ReadSessionDep, store: StoreDep, tenant: TenantDep
) -> Response:
    """Overlay data of a succeeded job, read from its artifacts (``analysis.json``,
    ``features.json``, ``spots.csv``); 404 ``overlay_unavailable`` when it has no spots."""
    job = await service.get_job(session, tenant, job_id)
    await session.close()  # reading the artifacts holds no database connection
    doc = await overlay.overlay(store, job)
    body = await anyio.to_thread.run_sync(lambda: json.dumps(doc, separators=(",", ":")).encode())
    return Response(
        body, media_type="application/json", headers={"Cache-Control": "private, no-cache"}
    )


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
