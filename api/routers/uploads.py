"""POST /v1/uploads: the body (raw bytes) is streamed to storage; /v1/uploads/sessions: the
same, resumable, in chunks."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Query, Request, Response, status

from api.deps import ReadSessionDep, SessionDep, SettingsDep, StoreDep, TenantDep
from api.errors import problem_responses
from api.schemas import UploadOut, UploadSessionCreate, UploadSessionOut
from core.db.models import UploadSession
from core.jobs import upload_sessions
from core.jobs.errors import UploadTimeout
from core.jobs.uploads import receive_upload

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])


async def _with_idle_timeout(chunks: AsyncIterator[bytes], idle_s: float) -> AsyncIterator[bytes]:
    """The body's chunks; a body that sends nothing for ``idle_s`` seconds is cut off (408)."""
    it = chunks.__aiter__()
    while True:
        try:
            with anyio.fail_after(idle_s):
                chunk = await it.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError as e:
            raise UploadTimeout(
                f"the upload body stalled for {idle_s:g} s (MGS_UPLOAD_IDLE_TIMEOUT_S)"
            ) from e
        yield chunk


@router.post(
    "",
    operation_id="create_upload",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadOut,
    responses=problem_responses(401, 408, 413, 415, 422, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The sample: an AnnData .h5ad, or a Space Ranger folder as .tar.gz/.tar/.zip.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def create_upload(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    tenant: TenantDep,
    filename: str = Query(
        "upload", max_length=255, description="Display name only; never used in storage."
    ),
) -> UploadOut:
    """Upload a sample (streamed; size-limited by MGS_MAX_UPLOAD_BYTES); returns id, size and sha256."""
    length = request.headers.get("content-length")
    upload = await receive_upload(
        session,
        store,
        settings,
        tenant,
        filename,
        _with_idle_timeout(request.stream(), settings.upload_idle_timeout_s),
        int(length) if length and length.isdigit() else None,
    )
    try:
        await session.commit()
    except BaseException:
        # the database did not take the row (an outage: 503): the object would be garbage
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(store.delete, upload.storage_key)
        raise
    return UploadOut.model_validate(upload, from_attributes=True)


# --- resumable uploads --------------------------------------------------------------------


def _session_out(s: UploadSession) -> UploadSessionOut:
    return UploadSessionOut(
        id=s.id,
        filename=s.filename,
        size=s.total_size,
        chunk_size=s.chunk_size,
        received=s.received,
        upload_id=s.upload_id,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


@router.post(
    "/sessions",
    operation_id="create_upload_session",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadSessionOut,
    responses=problem_responses(400, 401, 413, 422, 429),
)
async def create_upload_session(
    body: UploadSessionCreate, session: SessionDep, settings: SettingsDep, tenant: TenantDep
) -> UploadSessionOut:
    """Start a resumable upload of ``size`` bytes; send it in chunks of ``chunk_size``."""
    s = await upload_sessions.create_session(session, settings, tenant, body.filename, body.size)
    await session.commit()
    return _session_out(s)


@router.get(
    "/sessions/{session_id}",
    operation_id="get_upload_session",
    response_model=UploadSessionOut,
    responses=problem_responses(401, 404, 422, 429),
)
async def get_upload_session(
    session_id: uuid.UUID, session: ReadSessionDep, tenant: TenantDep
) -> UploadSessionOut:
    """How much of the file has arrived (``received``): resume from there."""
    return _session_out(await upload_sessions.get_session(session, tenant, session_id))


@router.put(
    "/sessions/{session_id}",
    operation_id="put_upload_chunk",
    response_model=UploadSessionOut,
    responses=problem_responses(400, 401, 404, 408, 409, 416, 422, 429),
    openapi_extra={
        "parameters": [
            {
                "name": "Content-Range",
                "in": "header",
                "required": True,
                "description": "bytes FIRST-LAST/TOTAL: the next chunk (or a received one re-sent).",
                "schema": {"type": "string", "example": "bytes 0-8388607/20000000"},
            }
        ],
        "requestBody": {
            "required": True,
            "description": "The chunk's bytes.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
    },
)
async def put_upload_chunk(
    session_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    tenant: TenantDep,
) -> UploadSessionOut:
    """Send one chunk, in order; re-sending a received chunk is harmless."""
    s = await upload_sessions.receive_chunk(
        session,
        store,
        tenant,
        session_id,
        request.headers.get("content-range"),
        _with_idle_timeout(request.stream(), settings.upload_idle_timeout_s),
    )
    out = _session_out(s)
    await session.commit()
    return out


@router.post(
    "/sessions/{session_id}/complete",
    operation_id="complete_upload_session",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadOut,
    responses={
        200: {"model": UploadOut, "description": "Completed before: the same upload."},
        **problem_responses(401, 404, 409, 413, 415, 422, 429),
    },
)
async def complete_upload_session(
    session_id: uuid.UUID,
    response: Response,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    tenant: TenantDep,
) -> UploadOut:
    """Check and store the whole file as a one-shot upload is; returns the same Upload."""
    upload, new = await upload_sessions.complete_session(
        session, store, settings, tenant, session_id
    )
    out = UploadOut.model_validate(upload, from_attributes=True)
    s = await upload_sessions.get_session(session, tenant, session_id)
    try:
        await session.commit()
    except BaseException:
        if new:
            with contextlib.suppress(Exception):
                await anyio.to_thread.run_sync(store.delete, upload.storage_key)
        raise
    if new:
        await upload_sessions.discard_parts(store, s)
    else:
        response.status_code = status.HTTP_200_OK
    return out
