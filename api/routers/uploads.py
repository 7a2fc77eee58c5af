"""POST /v1/uploads: the body (raw bytes) is streamed to storage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Query, Request, status

from api.deps import SessionDep, SettingsDep, StoreDep, TenantDep
from api.errors import problem_responses
from api.schemas import UploadOut
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
