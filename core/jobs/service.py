"""The API's use cases over jobs (async session; the request boundary commits)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import anyio
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings, allowed_report_backends, allowed_report_models
from core.db import repositories as repo
from core.db.models import Job, JobKind, JobState
from core.errors import BadOption
from core.jobs import lifecycle, outbox, webhooks
from core.jobs.errors import CallbackRefused, Conflict, NotFound, TooManyRequests
from core.jsonable import JSONObject, JSONValue
from core.markers import marker_table_path
from core.storage import ObjectStore

CALLBACK_RESOLVE_TIMEOUT_S = 5.0
REPORT_FILES = {
    "json": "report.json",
    "markdown": "report.md",
    "html": "report.html",
    "pdf": "report.pdf",
}


@dataclass
class SubmitRequest:
    upload_id: uuid.UUID
    external_sample_id: str | None
    options: JSONObject
    callback_url: str | None
    kind: str = JobKind.SPATIAL.value


def request_hash(req: SubmitRequest) -> str:
    body = {
        "upload_id": str(req.upload_id),
        "external_sample_id": req.external_sample_id,
        "options": req.options,
        "callback_url": req.callback_url,
        "kind": req.kind,
    }
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


async def submit_job(
    session: AsyncSession,
    settings: Settings,
    tenant_id: str,
    req: SubmitRequest,
    idempotency_key: str | None,
) -> tuple[Job, bool]:
    """Create the job and its outbox message in the caller's transaction.

    Returns ``(job, created)``; with an ``Idempotency-Key`` seen before, the
    earlier job (same body) or :class:`Conflict` (other body).
    """
    digest = request_hash(req)
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 255:
            raise BadOption("Idempotency-Key must be 1 to 255 characters")
        existing = await _by_key(session, tenant_id, idempotency_key, digest)
        if existing is not None:
            return existing, False
    if req.kind not in outbox.known_kinds():  # test-only kinds exist only where tests load them
        raise BadOption("unknown job kind")
    check_report_choice(req.options, settings)
    if settings.max_concurrent_jobs_per_tenant > 0:
        await session.execute(repo.lock_tenant_submits(tenant_id))
        active = (await session.execute(repo.active_jobs_of_tenant(tenant_id))).scalar_one()
        if active >= settings.max_concurrent_jobs_per_tenant:
            raise TooManyRequests(
                f"{active} jobs of this tenant are queued or running, the limit is "
                f"{settings.max_concurrent_jobs_per_tenant} (MGS_MAX_CONCURRENT_JOBS_PER_TENANT); "
                "submit again when one has finished",
                retry_after=30,
                code="too_many_jobs",
            )
    upload = (
        await session.execute(repo.upload_of_tenant(req.upload_id, tenant_id))
    ).scalar_one_or_none()
    if upload is None:
        raise NotFound(f"upload {req.upload_id} not found", code="upload_not_found")
    if req.kind == JobKind.SPATIAL.value:
        # what a worker would refuse is refused here: the options' bounds (the request model)
        # and a marker table this server has
        markers = req.options.get("markers")
        marker_table_path(markers if isinstance(markers, str) else None, settings.marker_tables_dir)
    if req.callback_url:
        # a host whose DNS does not answer must not hold the submit (and the LIMS) for minutes
        with anyio.move_on_after(CALLBACK_RESOLVE_TIMEOUT_S) as scope:
            await anyio.to_thread.run_sync(
                webhooks.check_callback_url,
                req.callback_url,
                settings.webhook_allow_private,
                abandon_on_cancel=True,
            )
        if scope.cancelled_caught:
            raise CallbackRefused(
                f"callback_url host did not resolve within {CALLBACK_RESOLVE_TIMEOUT_S:.0f} s; "
                "give a callback URL whose host resolves, or none (poll with ?wait=30)"
            )
    job = Job(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        upload_id=upload.id,
        kind=req.kind,
        external_sample_id=req.external_sample_id,
        options=req.options,
        callback_url=req.callback_url,
        idempotency_key=idempotency_key,
        request_hash=digest,
        state=JobState.QUEUED.value,
        stage="validating",
        progress=0.0,
        attempts=0,
        stage_attempts=0,
        max_attempts=settings.job_max_attempts,
        timings={},
        summary={},
    )
    try:
        async with session.begin_nested():
            session.add(job)
            await session.flush()
            outbox.add_task(session, job)
            await session.flush()
    except IntegrityError:
        if idempotency_key is None:
            raise
        existing = await _by_key(session, tenant_id, idempotency_key, digest)
        if existing is None:
            raise
        return existing, False
    await session.refresh(job)
    return job, True


def check_report_choice(options: Mapping[str, JSONValue], settings: Settings) -> None:
    """Refuse a report backend or model the operator has not allowed (one tenant must not make
    the shared report worker fetch or load arbitrary models). Raises ``backend_not_allowed`` or
    ``model_not_allowed`` (422)."""
    backend = options.get("backend")
    if backend is not None:
        allowed = allowed_report_backends(settings)
        if backend not in allowed:
            raise BadOption(
                f"report backend {str(backend)[:40]!r} is not allowed on this server; allowed: "
                f"{', '.join(allowed)} (MGS_REPORT_BACKENDS_ALLOWED)",
                code="backend_not_allowed",
            )
    model = options.get("model")
    if model is not None:
        models = allowed_report_models(settings)
        if model not in models:
            raise BadOption(
                "this model is not allowed on this server; allowed: "
                f"{', '.join(models)} (MGS_REPORT_MODELS_ALLOWED)",
                code="model_not_allowed",
            )


async def _by_key(session: AsyncSession, tenant_id: str, key: str, digest: str) -> Job | None:
    job: Job | None = (
        await session.execute(repo.job_by_idempotency_key(tenant_id, key))
    ).scalar_one_or_none()
    if job is not None and job.request_hash != digest:
        raise Conflict(
            "this Idempotency-Key was used with a different request body",
            code="idempotency_conflict",
        )
    return job


async def get_job(session: AsyncSession, tenant_id: str, job_id: uuid.UUID) -> Job:
    job: Job | None = (
        await session.execute(*repo.job_of_tenant(job_id, tenant_id))
    ).scalar_one_or_none()
    if job is None:
        raise NotFound(f"job {job_id} not found", code="job_not_found")
    return job


def encode_cursor(job: Job) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at.isoformat()}|{job.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        ts, jid = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(ts), uuid.UUID(jid)
    except Exception as e:
        raise BadOption("invalid cursor", code="invalid_cursor") from e


async def list_jobs(
    session: AsyncSession,
    tenant_id: str,
    *,
    state: str | None = None,
    external_sample_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
    report_status: str | None = None,
    oldest_first: bool = False,
) -> tuple[list[Job], str | None]:
    """One page, newest (or oldest) first, and the cursor of the next page (``None`` at the end).

    The cursor carries the last job's ``(created_at, id)``: a page holds however many jobs
    arrive meanwhile (keyset paging), and costs the same on page 1 and page 1,000.
    """
    q = repo.list_jobs(
        tenant_id,
        state=state,
        external_sample_id=external_sample_id,
        created_after=created_after,
        created_before=created_before,
        cursor=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
        report_status=report_status,
        oldest_first=oldest_first,
    )
    jobs = list((await session.execute(q)).scalars().all())
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return jobs, (encode_cursor(jobs[-1]) if more and jobs else None)


async def cancel_job(session: AsyncSession, tenant_id: str, job_id: uuid.UUID) -> Job:
    """Cancel a queued or running job; a worker stops at its next stage boundary."""
    job = await lifecycle.cancel(session, tenant_id, job_id)
    if job is None:
        job = await get_job(session, tenant_id, job_id)
        if job.state == JobState.CANCELED.value:
            return job
        raise Conflict(f"job {job_id} already {job.state}", code="job_finished")
    await session.flush()
    return job


def _finished(job: Job) -> None:
    if job.state != JobState.SUCCEEDED.value:
        raise Conflict(
            f"job {job.id} is {job.state}; results exist once it has succeeded",
            code="job_not_succeeded",
        )


async def list_artifacts(store: ObjectStore, job: Job) -> list[tuple[str, int]]:
    """``(name, size)`` of every result file (analysis artifacts, then the report)."""
    _finished(job)
    out: dict[str, int] = {}
    for prefix in (job.analysis_prefix, job.report_prefix):
        if not prefix:
            continue
        for key in await anyio.to_thread.run_sync(store.list, prefix):
            name = key[len(prefix.rstrip("/")) + 1 :]
            size = await anyio.to_thread.run_sync(store.size, key)
            out[name] = size or 0
    return sorted(out.items())


async def artifact_key(store: ObjectStore, job: Job, name: str) -> str:
    """The storage key of result file ``name`` (report files win over analysis files)."""
    _finished(job)
    parts = name.split("/")
    if (
        not name
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in name
        or "\x00" in name
        or len(name.encode()) > 1000  # object keys are at most 1024 bytes with the prefix
        or any(len(p.encode()) > 255 for p in parts)  # no file system takes a longer name
    ):
        raise NotFound(f"artifact {name[:100]!r} not found", code="artifact_not_found")
    for prefix in (job.report_prefix, job.analysis_prefix):
        if prefix:
            key = f"{prefix.rstrip('/')}/{name}"
            if await anyio.to_thread.run_sync(store.size, key) is not None:
                return key
    raise NotFound(f"artifact {name[:100]!r} not found", code="artifact_not_found")
