"""GET /v1/me: who the key is (tenant, role) and the limits it uploads under.

The lab console reads it once at sign-in: a reviewer key sees the sign button, a submitter
key does not; a file over ``max_upload_bytes`` is refused before a byte is sent.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CallerDep, SettingsDep
from api.errors import problem_responses
from api.schemas import CallerLimits, CallerOut

router = APIRouter(prefix="/v1/me", tags=["keys"])


@router.get(
    "", operation_id="get_me", response_model=CallerOut, responses=problem_responses(401, 429)
)
async def get_me(caller: CallerDep, settings: SettingsDep) -> CallerOut:
    """The calling key's tenant, id and role (``submitter`` or ``reviewer``) and upload limits."""
    return CallerOut(
        tenant_id=caller.tenant_id,
        key_id=caller.key_id,
        role=caller.role,  # type: ignore[arg-type]
        limits=CallerLimits(
            max_upload_bytes=settings.max_upload_bytes,
            upload_idle_timeout_s=settings.upload_idle_timeout_s,
            upload_chunk_bytes=settings.upload_chunk_bytes,
        ),
    )
