"""POST /v1/uploads: the body (raw bytes) is streamed to storage."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status

from api.deps import SessionDep, SettingsDep, StoreDep, TenantDep
from api.errors import problem_responses
from api.schemas import UploadOut
from core.jobs.uploads import receive_upload

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])


@router.post(
    "",
    operation_id="create_upload",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadOut,
    responses=problem_responses(401, 413, 415, 422),
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
        request.stream(),
        int(length) if length and length.isdigit() else None,
    )
    await session.commit()
    return UploadOut.model_validate(upload, from_attributes=True)
